"""What the energy rules' findings say: which PUE was read (metered or design), with what fuels, against which bound.

PUE = E_DC / E_IT over a year (ISO/IEC 30134-2 §6), E_DC counting on-site fuels at their energy content. The PUE a
finding shows is worked out here from the design's own kWh, never imported from aidc.standards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.standards.findings import Spec, findings

CN = "gb200-nvl72-china.yaml"  # Yangtze-Delta hub node, new build: 8,900,000 kWh facility, 7,800,000 kWh IT
LAB = "lab-two-servers.yaml"  # Germany, one rack, no energy section


def energy(**fields: Any) -> Callable[[Spec], None]:
    def edit(spec: Spec) -> None:
        spec["energy"] = fields

    return edit


def racks(n: int) -> Callable[[Spec], None]:
    """``n`` racks in all: the example's, then empty 5 kW ones in a hall of their own."""

    def edit(spec: Spec) -> None:
        have = sum(len(h["racks"]) for h in spec["halls"])
        spare = [{"name": f"spare-{i}", "power_budget_kw": 5} for i in range(n - have)]
        spec["halls"].append({"name": "spare-hall", "racks": spare})

    return edit


def test_the_pue_shown_is_the_metered_year_else_the_design_figure_else_not_given() -> None:
    """KPI-PUE-TARGET (the spec's pue_target 1.2): the metered year first (8,900,000 / 7,800,000 = 1.141), the design
    PUE without facility kWh (1.15), and a finding asking for one when there is neither."""
    [metered] = findings("KPI-PUE-TARGET", CN)
    assert (metered.status, metered.measured, metered.expected) == ("pass", "1.141 (measured)", "≤ 1.2")

    [design] = findings("KPI-PUE-TARGET", CN, energy(design_pue=1.15, it_kwh=7_800_000))
    assert (design.status, design.measured, design.expected) == ("pass", "1.150 (design)", "≤ 1.2")

    [missing] = findings("KPI-PUE-TARGET", CN, energy())
    assert (missing.status, missing.measured, missing.expected, missing.path, missing.note) == (
        "fail",
        "not given",
        "≤ 1.2",
        ("energy",),
        "give energy.design_pue or metered kWh",
    )


def test_fuels_burnt_on_site_count_in_the_facility_energy() -> None:
    """10,000 L of diesel and 10,000 m³ of gas on top of 8,900,000 kWh metered, over 7,800,000 kWh of IT. Their energy
    content is not exact: diesel 9.905 kWh/L (lower heating value) to 10.531 kWh/L (higher), and pipeline gas
    "roughly ~10–11 kWh/m³" (universal-converter.org, /fuels/diesel on the UK DESNZ basis and
    /learn/natural-gas-m3-to-kwh). Any figure in those bands puts the PUE between 1.167 and 1.169 (1.141 without the fuels)."""
    lo = (8_900_000 + 10_000 * 9.905 + 10_000 * 10) / 7_800_000
    hi = (8_900_000 + 10_000 * 10.531 + 10_000 * 11) / 7_800_000
    fuelled = energy(facility_kwh=8_900_000, it_kwh=7_800_000, diesel_l=10_000, gas_m3=10_000, period_days=365)
    [finding] = findings("KPI-PUE-TARGET", CN, fuelled)
    value, kind = finding.measured.split()
    assert kind == "(measured)"
    assert round(lo, 3) <= float(value) <= round(hi, 3), finding.measured


def test_a_strict_bound_reads_less_than_and_a_limit_at_most() -> None:
    """At a PUE of exactly 1.25 the hub-node target (NDRC 2021: PUE < 1.25) is missed and the Yangtze-Delta limit
    (PUE ≤ 1.25) is met; each finding prints its own sign."""
    at = energy(design_pue=1.25)
    hub = {f.subject: f for f in findings("KPI-CN-HUB", CN, at)}
    assert [(f.status, f.measured, f.expected) for f in hub.values() if f.subject != "green power"] == [
        ("fail", "1.250 (design)", "< 1.25")
    ]
    [region] = findings("KPI-CN-REGION", CN, at)
    assert (region.status, region.measured, region.expected) == ("pass", "1.250 (design)", "≤ 1.25")
    # each points at what makes it apply: the hub-node flag, the region
    assert [f.path for f in hub.values() if f.subject != "green power"] == [("site", "hub_node")]
    assert region.path == ("site", "region")


def test_the_new_large_data_center_pue_applies_only_to_large_new_builds_in_china() -> None:
    """MIIT/NDRC (2021): new large data centers (≥ 3000 racks, inf) PUE < 1.3. The China example as shipped is a new
    build of a few racks: no finding; 3000 racks in Germany: none either; 3000 in China: a finding."""
    assert findings("KPI-CN-NEWLARGE", CN) == []
    assert findings("KPI-CN-NEWLARGE", LAB, lambda s: (racks(3000)(s), energy(design_pue=1.2)(s))) == []
    [large] = findings("KPI-CN-NEWLARGE", CN, racks(3000))
    assert (large.status, large.measured, large.expected) == ("pass", "1.141 (measured)", "< 1.3")
