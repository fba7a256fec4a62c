"""What a physical finding tells its reader, at the clause's own numbers: the seismic design category a site falls
in (ASCE 7-22 Table 11.6-1) and whether a rack must be anchored for it (§13.1.3–13.1.4), and what one single-phase
cord carries continuously (NEC §210.19(A)(1)/§210.20(A): the load at most 80 % of the rating), a rack's bearing
pressure exactly at its floor's rating, and the derating a one-line's UPS and generators must declare above 1000 m
(IEC 62040-3 §4.2 / ISO 8528-1 §7).

Expected values are worked out here from the clauses, never imported from the rules.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from aidc.facility.loader import facility_from_source
from aidc.specfile import SpecSource
from aidc.standards import builtin_rules
from aidc.standards.checker import run_check
from aidc.standards.rule import Finding

LAB = Path(__file__).parents[2] / "examples" / "facilities" / "lab-two-servers.yaml"
RULES = {r.id: r for r in builtin_rules()}


def lab() -> dict[str, Any]:
    """The lab: one rack, `lab-rack`, with 6 kW in it (two 2.8 kW servers and a 0.4 kW switch)."""
    spec: dict[str, Any] = copy.deepcopy(yaml.safe_load(LAB.read_text()))
    spec.pop("checks")
    return spec


def only(rule: str, spec: dict[str, Any]) -> Finding:
    [finding] = run_check(facility_from_source(SpecSource(spec, {}, "lab")), rules=[RULES[rule]]).findings
    return finding


# ASCE 7-22 Table 11.6-1, S_DS (g) → SDC for risk categories I–III and IV:
#   S_DS < 0.167: A, A;  0.167 ≤ S_DS < 0.33: B, C;  0.33 ≤ S_DS < 0.50: C, D;  0.50 ≤ S_DS: D, D.
# §13.1.3: Ip = 1.5 for what a risk-category-IV facility needs to keep running, else 1.0. §13.1.4 exempts SDC A
# and B, SDC C with Ip = 1, and (Ip = 1) equipment of 400 lb or less; the lab's rack here weighs 900 kg.
SEISMIC = [
    ("II", 0.166, "A", None),
    ("II", 0.167, "B", None),
    ("II", 0.329, "B", None),
    ("II", 0.33, "C", None),
    ("II", 0.499, "C", None),
    ("II", 0.50, "D", "Ip 1, 900 kg"),
    ("IV", 0.166, "A", None),
    ("IV", 0.167, "C", "Ip 1.5, 900 kg"),
    ("IV", 0.329, "C", "Ip 1.5, 900 kg"),
    ("IV", 0.33, "D", "Ip 1.5, 900 kg"),
    ("IV", 0.499, "D", "Ip 1.5, 900 kg"),
    ("IV", 0.50, "D", "Ip 1.5, 900 kg"),
]


@pytest.mark.parametrize(
    ("risk", "sds", "sdc", "needs"), SEISMIC, ids=[f"risk {r} at {s:g} g" for r, s, _, _ in SEISMIC]
)
def test_a_seismic_finding_names_the_design_category_of_table_11_6_1(
    risk: str, sds: float, sdc: str, needs: str | None
) -> None:
    spec = lab()
    spec["site"].update(seismic_sds_g=sds, risk_category=risk)
    spec["halls"][0]["racks"][0]["weight_kg"] = 900
    f = only("PHYS-SEISMIC", spec)
    ip = "1.5" if risk == "IV" else "1"
    if needs is None:  # exempt: an unanchored rack passes, and the finding says why
        assert (f.status, f.measured, f.expected) == (
            "pass",
            f"not anchored (SDC {sdc}, Ip {ip}: exempt)",
            "anchorage not required",
        )
    else:
        assert (f.status, f.measured, f.expected) == ("fail", f"not anchored (SDC {sdc}, {needs})", "anchored")
    assert (f.subject, f.path) == ("lab-rack", ("halls", 0, "racks", 0, "anchored"))


# One single-phase cord carrying the lab's 6 kW alone: 230 V × A × 0.8 (continuous) × 0.95 (power factor) must
# reach 6 kW, so A ≥ 6000 / (230 × 0.8 × 0.95) = 34.325 A.
@pytest.mark.parametrize(
    ("amps", "status", "limit"),
    [(16, "fail", "2.8"), (34.32, "fail", "6.0"), (34.33, "pass", "6.0"), (32, "fail", "5.6")],
)
def test_a_single_phase_cord_carries_volts_times_amps_at_80_percent(amps: float, status: str, limit: str) -> None:
    spec = lab()
    spec["halls"][0]["racks"][0].update(cord_amps=amps, cord_volts=230, cord_phases=1)
    f = only("PHYS-CORD", spec)
    assert (f.status, f.measured, f.expected) == (status, "6.0 kW", f"≤ {limit} kW (1-phase 230 V {amps:g} A)")
    assert (f.subject, f.path) == ("lab-rack", ("halls", 0, "racks", 0, "cord_amps"))


@pytest.mark.parametrize(
    ("server_kw", "status", "measured"), [(1.7, "pass", "3.8 kW"), (1.71, "fail", "3.8 kW")], ids=["at", "above"]
)
def test_a_rack_drawing_exactly_what_its_cord_carries_continuously_passes(
    server_kw: float, status: str, measured: str
) -> None:
    """200 V × 25 A × 0.8 × 0.95 = 3.8 kW; two servers at 1.7 kW and the 0.4 kW switch draw exactly that (≤ passes);
    at 1.71 kW each they draw 3.82 kW."""
    spec = lab()
    spec["nodes"][0].update(nominal_kw=server_kw, max_kw=server_kw)
    spec["halls"][0]["racks"][0].update(cord_amps=25, cord_volts=200, cord_phases=1)
    f = only("PHYS-CORD", spec)
    assert (f.status, f.measured, f.expected) == (status, measured, "≤ 3.8 kW (1-phase 200 V 25 A)")


# 1,000 kg on 1 m² bears 1000 × 9.80665 N / 1 m² = 9.80665 kPa (standard gravity).
@pytest.mark.parametrize(("rating", "status"), [(9.80665, "pass"), (9.8, "fail")], ids=["at", "below"])
def test_a_rack_bearing_exactly_the_floor_rating_passes(rating: float, status: str) -> None:
    spec = lab()
    spec["halls"][0]["floor_rating_kpa"] = rating
    spec["halls"][0]["racks"][0].update(weight_kg=1000, footprint_m2=1.0)
    f = only("PHYS-FLOOR-RACK", spec)
    assert (f.status, f.measured, f.expected) == (status, "9.8 kPa (1000 kg on 1 m²)", f"≤ {rating:g} kPa")
    assert (f.subject, f.path) == ("lab-rack", ("halls", 0, "racks", 0, "weight_kg"))


ONELINE = LAB.parent / "nvl72-tier4-oneline.yaml"  # UPS and generators as one-line components, none derated


@pytest.mark.parametrize(("altitude", "warns"), [(1000, False), (1001, True)])
def test_one_line_ups_and_generators_above_1000_m_must_declare_a_derating(altitude: float, warns: bool) -> None:
    """IEC 62040-3 §4.2 rates a UPS up to 1000 m, and ISO 8528-1 §7 has a set's output declared at reference
    conditions: above 1000 m each UPS and generator component must carry the maker's derating."""
    spec: dict[str, Any] = yaml.safe_load(ONELINE.read_text())
    spec.pop("checks", None)
    spec["site"]["altitude_m"] = altitude
    found = run_check(facility_from_source(SpecSource(spec, {}, "oneline")), rules=[RULES["PHYS-ALT-DERATE"]]).findings
    if not warns:
        assert found == []
        return
    names = [c["name"] for c in spec["power"]["components"] if c["kind"] in ("ups", "generator")]
    assert sorted(f.subject for f in found) == sorted(names)
    for f in found:
        assert (f.status, f.measured, f.expected) == ("warn", "derate 1 at 1001 m", "< 1 above 1000 m")
        i = next(i for i, c in enumerate(spec["power"]["components"]) if c["name"] == f.subject)
        assert f.path == ("power", "components", i, "derate")
