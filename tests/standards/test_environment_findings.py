"""What the environment rules' findings say: each cooling stage's capacity against the heat it carries, and where the
GB 50174 ranges apply.

ENV-COOL-CAP (Uptime Tier Standard §2.1, Tier I: N cooling capacity for the design heat load) checks each series
stage — terminal units, pumps, chillers, heat rejection — on its own, since a room is cooled only as far as its
weakest stage allows: air-only units plus shared ones against the air heat, liquid likewise, and where a stage has
shared units, all of it against both. The figures below are worked out from the design, never imported from
aidc.standards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.standards.findings import Spec, findings

LAB = "lab-two-servers.yaml"  # one rack in Germany, ASHRAE A2, no GB 50174 target


def lab_heat(liquid_fraction: float | None, units: list[dict[str, Any]] | None = None) -> Callable[[Spec], None]:
    """The lab at 10 kW of IT (two servers at 5 kW, the switch taken out); a direct-liquid rack sending
    ``liquid_fraction`` of it to liquid (None: the rack stays air-cooled); ``units`` replacing its cooling units."""

    def edit(spec: Spec) -> None:
        spec["nodes"] = [n for n in spec["nodes"] if n["name"] != "switch"]
        spec["nodes"][0].update(max_kw=5.0, nominal_kw=2.2)
        if liquid_fraction is not None:
            spec["halls"][0]["racks"][0].update(cooling="direct_liquid", liquid_fraction=liquid_fraction)
        if units is not None:
            spec["cooling"]["units"] = units

    return edit


def test_every_stage_short_of_its_heat_is_named_with_what_it_has_and_needs() -> None:
    """10 kW, 40 % to liquid: 6 kW of air heat and 4 kW of liquid heat. Every stage is short, so each check is a
    finding of its own (passes would be folded into one line):

    - terminal: CRAHs 2 × 2 + an in-row 1 kW for air (5 of 6), a 1 kW CDU for liquid (1 of 4); no shared unit, so
      no combined check;
    - pumps, shared (2 × 1.5 kW): 3 kW against the air 6, the liquid 4 and both together 10;
    - chillers, liquid only (3 × 1 kW): 3 of 4 — the air side has no chillers and is not checked there;
    - heat rejection: a 2 kW tower for air plus a 1 kW shared dry cooler: air 3 of 6, liquid 1 of 4, both 3 of 10.
    """
    units = [
        {"name": "crah", "kind": "crah", "capacity_kw": 2, "count": 2, "serves": "air"},
        {"name": "inrow", "kind": "inrow", "capacity_kw": 1, "serves": "air"},
        {"name": "cdu", "kind": "cdu", "capacity_kw": 1, "serves": "liquid"},
        {"name": "pump", "kind": "pump", "capacity_kw": 1.5, "count": 2, "serves": "all"},
        {"name": "chiller", "kind": "chiller", "capacity_kw": 1, "count": 3, "serves": "liquid"},
        {"name": "dry", "kind": "dry_cooler", "capacity_kw": 1, "serves": "all"},
        {"name": "tower", "kind": "cooling_tower", "capacity_kw": 2, "serves": "air"},
    ]
    found = findings("ENV-COOL-CAP", LAB, lab_heat(0.4, units))
    assert [(f.subject, f.status, f.measured, f.expected) for f in found] == [
        ("terminal, air heat", "fail", "5 kW", "≥ 6 kW"),
        ("terminal, liquid heat", "fail", "1 kW", "≥ 4 kW"),
        ("pumps, air heat", "fail", "3 kW", "≥ 6 kW"),
        ("pumps, liquid heat", "fail", "3 kW", "≥ 4 kW"),
        ("pumps, air + liquid heat", "fail", "3 kW", "≥ 10 kW"),
        ("chillers, liquid heat", "fail", "3 kW", "≥ 4 kW"),
        ("heat rejection, air heat", "fail", "3 kW", "≥ 6 kW"),
        ("heat rejection, liquid heat", "fail", "1 kW", "≥ 4 kW"),
        ("heat rejection, air + liquid heat", "fail", "3 kW", "≥ 10 kW"),
    ]
    assert {f.path for f in found} == {("cooling", "units")}


@pytest.mark.parametrize(
    ("liquid_fraction", "subject", "need"),
    [
        (None, "terminal, air heat", "≥ 10 kW"),  # an air rack: only air heat to carry
        (0.1, "all 3 checked", "≥ 9 kW"),  # 9 kW air, 1 kW liquid: air, liquid and both
        (0.9, "all 3 checked", "≥ 1 kW"),  # 1 kW air, 9 kW liquid
        (1.0, "terminal, liquid heat", "≥ 10 kW"),  # all of it to liquid: no air heat to check
    ],
    ids=["air-rack", "10pct-liquid", "90pct-liquid", "all-liquid"],
)
def test_a_shared_stage_checks_each_heat_there_is_however_small_and_no_other(
    liquid_fraction: float | None, subject: str, need: str
) -> None:
    """The lab's two 8 kW in-row units serve air and liquid alike (16 kW): each heat the rack gives off is a check,
    down to 1 kW, and a heat of zero is none — the report's one pass line says how many were checked."""
    [finding] = findings("ENV-COOL-CAP", LAB, lab_heat(liquid_fraction))
    assert (finding.status, finding.subject, finding.measured, finding.expected) == ("pass", subject, "16 kW", need)


def test_gb_50174_ranges_apply_wherever_the_design_targets_the_standard() -> None:
    """The lab is in Germany: no GB 50174 range applies until it targets a GB 50174 class; then its cold aisle is
    read against Annex A's 18–27 °C."""
    assert findings("ENV-GB-TEMP", LAB) == []

    def class_a(spec: Spec) -> None:
        spec["targets"]["gb50174"] = "A"

    [finding] = findings("ENV-GB-TEMP", LAB, class_a)
    assert (finding.status, finding.measured, finding.expected, finding.subject) == (
        "pass",
        "18–27 °C",
        "18–27 °C",
        "cold aisle",
    )


def test_a_stage_with_air_units_only_is_not_held_against_the_liquid_heat() -> None:
    """10 kW, 40 % to liquid, through two shared 8 kW in-row units (terminal: air 6, liquid 4, both 10 — all within
    16 kW) and an air-only 20 kW cooling tower. The liquid heat leaves by another route, so the tower is read
    against the 6 kW of air heat alone: four checks, all met — not a fifth failing at 0 of 4 kW."""
    units = [
        {"name": "inrow", "kind": "inrow", "capacity_kw": 8, "count": 2, "serves": "all"},
        {"name": "tower", "kind": "cooling_tower", "capacity_kw": 20, "serves": "air"},
    ]
    [finding] = findings("ENV-COOL-CAP", LAB, lab_heat(0.4, units))
    assert (finding.status, finding.subject) == ("pass", "all 4 checked")
