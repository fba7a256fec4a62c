"""What an availability finding tells its reader: the redundancy the design has, the level the clause asks for,
and which system and spec field it is about.

The required levels are the clauses' own (Uptime Tier Standard: Topology §2.1–2.4: Tier II–III N+1 capacity
components, Tier IV fault tolerant, i.e. 2N UPS), never imported from the rules. The lab example carries 6 kW of IT
(two 2.8 kW servers and a 0.4 kW switch) on one 10 kW UPS module.
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


def lab(uptime: str, ups_modules: int) -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(yaml.safe_load(LAB.read_text()))
    spec.pop("checks")
    spec["targets"]["uptime"] = uptime
    spec["power"]["ups"][0]["modules"] = ups_modules
    return spec


def only(rule: str, spec: dict[str, Any]) -> Finding:
    [finding] = run_check(facility_from_source(SpecSource(spec, {}, "lab")), rules=[RULES[rule]]).findings
    return finding


@pytest.mark.parametrize(
    ("uptime", "modules", "status", "measured", "expected"),
    [
        # two 10 kW modules for 6 kW: either can be lost — N+1, what Tier II asks
        ("II", 2, "pass", "N+1 (2 units, 20 kW for 6 kW)", "N+1"),
        # one module: nothing to spare
        ("II", 1, "fail", "N (1 units, 10 kW for 6 kW)", "N+1"),
        # N+1 modules on one path are not the two independent systems Tier IV asks for
        ("IV", 2, "fail", "N+1 (2 units, 20 kW for 6 kW)", "2N"),
    ],
    ids=["tier II, two modules", "tier II, one module", "tier IV, two modules"],
)
def test_a_ups_finding_names_the_ups_its_redundancy_and_the_tiers_level(
    uptime: str, modules: int, status: str, measured: str, expected: str
) -> None:
    f = only("AV-UT-UPS", lab(uptime, modules))
    assert (f.status, f.measured, f.expected) == (status, measured, expected)
    assert f.subject == "ups"
    assert f.path == ("power", "ups") and f.to_dict()["field"] == "power.ups"
    assert f.message.startswith(f"ups: measured {measured}, required {expected}")


def test_a_cooling_finding_names_the_cooling_system_it_judged() -> None:
    """Two 8 kW in-row units for 6 kW of IT: losing one leaves 8 kW, so N+1 — Tier II's level; a third of the load
    more (10 kW of IT, the servers at 4.8 kW) and losing one unit no longer carries it: N."""
    spec = lab("II", 2)
    f = only("AV-UT-COOL", spec)
    assert (f.status, f.measured, f.expected) == ("pass", "N+1 (2 units, 16 kW for 6 kW)", "N+1")
    assert (f.subject, f.path) == ("cooling.inrow", ("cooling", "units"))
    spec["nodes"][0]["max_kw"] = 4.8
    f = only("AV-UT-COOL", spec)
    assert (f.status, f.measured, f.expected) == ("fail", "N (2 units, 16 kW for 10 kW)", "N+1")
    assert (f.subject, f.path) == ("cooling.inrow", ("cooling", "units"))


def test_a_site_without_generators_is_told_it_has_none_against_n_plus_1() -> None:
    """Tier II asks N+1 engine generators (§2.1–2.4); the lab has none (the load they would carry, the facility's,
    is the power rules' business)."""
    f = only("AV-UT-GEN", lab("II", 2))
    assert (f.status, f.expected, f.subject, f.path) == ("fail", "N+1", "generators", ("power", "generators"))
    assert f.measured.startswith("none (0 units, 0 kW for ")
