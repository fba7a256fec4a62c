"""What an availability finding tells its reader: the redundancy the design has, the level the clause asks for,
and which system and spec field it is about.

The required levels are the clauses' own (Uptime Tier Standard: Topology §2.1–2.4: Tier II–III N+1 capacity
components, Tier IV fault tolerant, i.e. 2N UPS; GB 50174-2017 Annex A: class A UPS 2N or M(N+1)), never imported
from the rules. The lab example carries 6 kW of IT
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
        ("II", 1, "fail", "N (1 unit, 10 kW for 6 kW)", "N+1"),
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


CN = LAB.parent / "gb200-nvl72-china.yaml"  # Uptime Tier III target, power paths A and B both active


def china(**targets: Any) -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(yaml.safe_load(CN.read_text()))
    spec.pop("checks", None)
    spec["targets"].update(targets)
    return spec


@pytest.mark.parametrize(
    ("uptime", "b_active", "status", "expected"),
    [
        # §2.3: Tier III needs one active and one alternate path
        ("III", False, "pass", "2 paths, ≥ 1 active"),
        # §2.4: Tier IV needs both paths active at once
        ("IV", False, "fail", "2 paths, ≥ 2 active"),
        ("IV", True, "pass", "2 paths, ≥ 2 active"),
    ],
    ids=["tier III, B alternate", "tier IV, B alternate", "tier IV, both active"],
)
def test_power_paths_active_as_the_tier_asks(uptime: str, b_active: bool, status: str, expected: str) -> None:
    spec = china(uptime=uptime)
    spec["power"]["paths"][1]["active"] = b_active
    f = only("AV-UT-PATHS", spec)
    active = 2 if b_active else 1
    assert (f.status, f.measured, f.expected, f.path) == (
        status,
        f"2 paths, {active} active",
        expected,
        ("power", "paths"),
    )


@pytest.mark.parametrize(("uptime", "status"), [("II", "pass"), ("III", "fail"), ("IV", "fail")])
def test_standby_generators_are_refused_from_tier_iii(uptime: str, status: str) -> None:
    """§3.1: Tier III and IV engine generators carry no runtime limit at N load; a standby rating has one. Tier II
    asks only for N+1 sets, which the China example's four 500 kW sets are."""
    spec = china(uptime=uptime)
    spec["power"]["generators"][0]["rating"] = "standby"
    f = only("AV-UT-GEN", spec)
    assert (f.status, f.subject, f.path) == (status, "generators", ("power", "generators"))
    if status == "fail":
        assert (f.measured, f.expected, f.note) == (
            "standby rating",
            "prime, continuous or data_center rating",
            "standby sets have a runtime limit",
        )
    else:
        assert (f.expected, f.measured.split(" for ")[0]) == ("N+1", "N+1 (4 units, 2,000 kW")


def distributed_redundant(ups_kw: float, gb50174: str) -> dict[str, Any]:
    """Three UPS systems on three racks of 300 kW, each rack corded to two of them (1+2, 2+3, 3+1): losing one
    system leaves two to carry 900 kW, so each needs 450 kW — the M(N+1) "distributed redundant" scheme."""
    components: list[dict[str, Any]] = []
    for s in "123":
        components += [
            {"name": f"U-{s}", "kind": "utility", "kw": 10000},
            {"name": f"UPS-{s}", "kind": "ups", "kw": ups_kw, "units": 1, "fed_by": [f"U-{s}"]},
            {"name": f"PDU-{s}", "kind": "pdu", "kw": 5000, "fed_by": [f"UPS-{s}"]},
        ]
    racks = {"r12": ["PDU-1", "PDU-2"], "r23": ["PDU-2", "PDU-3"], "r31": ["PDU-3", "PDU-1"]}
    return {
        "name": "distributed",
        "site": {"name": "t", "country": "CN"},
        "targets": {"gb50174": gb50174},
        "halls": [{"name": "h", "racks": [{"name": r, "power_budget_kw": 300, "feeds": f} for r, f in racks.items()]}],
        "nodes": [{"name": f"n-{r}", "model": "box", "rack": r, "nominal_kw": 300, "max_kw": 300} for r in racks],
        "power": {"components": components},
    }


def test_class_a_takes_distributed_redundant_ups_as_its_m_n_plus_1() -> None:
    """GB 50174 Annex A: class A UPS 2N or M(N+1); the finding says which groups stand in for each other."""
    f = only("AV-GB-UPS", distributed_redundant(450, "A"))
    assert (f.status, f.measured, f.expected) == ("pass", "M(N+1) (3 groups covering for each other)", "2N")
    assert (f.subject, f.path) == ("ups", ("power", "ups"))
    # class B (N+X) is met by the same UPS, and described by its plain scheme
    f = only("AV-GB-UPS", distributed_redundant(450, "B"))
    assert (f.status, f.measured, f.expected) == ("pass", "distributed redundant (3 units, 1,350 kW for 900 kW)", "N+1")


def test_a_class_a_ups_short_of_m_n_plus_1_says_which_loss_drops_which_rack() -> None:
    """At 449 kW a system's loss leaves the other two 2 kW short of the 900 kW: the failure analysis names it."""
    f = only("AV-GB-UPS", distributed_redundant(449, "A"))
    assert (f.status, f.measured, f.expected) == ("fail", "N (3 units, 1,347 kW for 900 kW)", "2N")
    assert f.note.startswith("with UPS-1 out: 1 rack(s) short (r31)")


def test_a_class_a_one_line_without_any_ups_fails_without_a_loss_analysis_note() -> None:
    """A one-line drawn with no UPS in it (utility straight to the PDUs): GB 50174 class A's 2N UPS is missing, and
    there is no UPS loss to describe."""
    spec = distributed_redundant(450, "A")
    spec["power"]["components"] = [
        c | {"fed_by": [c["fed_by"][0].replace("UPS", "U")]} if c["kind"] == "pdu" else c
        for c in spec["power"]["components"]
        if c["kind"] != "ups"
    ]
    f = only("AV-GB-UPS", spec)
    assert (f.status, f.measured, f.expected, f.note) == ("fail", "none (0 units, 0 kW for 900 kW)", "2N", "")


@pytest.mark.parametrize(
    ("gb50174", "same_substation", "status", "measured", "expected"),
    [
        # class A and B: dual sources from independent substations (双重电源); two feeds of one substation are one
        ("A", False, "pass", "2 independent substations", "≥ 2 independent substations"),
        ("A", True, "fail", "1 independent substation", "≥ 2 independent substations"),
        ("B", True, "fail", "1 independent substation", "≥ 2 independent substations"),
        # class C: two circuits, wherever they come from
        ("C", True, "pass", "2 circuits", "≥ 2 circuits"),
    ],
)
def test_utility_feeds_are_counted_as_the_gb_class_asks(
    gb50174: str, same_substation: bool, status: str, measured: str, expected: str
) -> None:
    """GB 50174 Annex A, utility supply: A and B count independent substations, C counts circuits."""
    spec = china(gb50174=gb50174)
    if same_substation:
        for feed in spec["power"]["utility_feeds"]:
            feed["substation"] = "Wuhu-220kV-East"
    f = only("AV-GB-FEED", spec)
    assert (f.status, f.measured, f.expected) == (status, measured, expected)
