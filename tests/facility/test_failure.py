"""Failure analysis on textbook one-lines with known ratings: N, N+1, 2N, 2(N+1), distributed redundant, catcher.

Each topology is written in the one-line form (power.components, racks corded by `feeds`); the verdicts are
what a design engineer works out by hand: which element's loss drops which racks.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from aidc.errors import InvalidSpec
from aidc.facility import derive, parse_facility
from aidc.facility.failure import PowerAnalysis
from aidc.standards.checker import Report, run_check


def spec(components: list[dict[str, Any]], racks: dict[str, tuple[float, list[str]]], **targets: Any) -> str:
    """A hall whose racks (name → (kW, feeds)) each hold one server drawing that kW."""
    data = {
        "name": "one-line",
        "site": {"name": "test", "country": "US"},
        "targets": targets,
        "halls": [
            {
                "name": "h",
                "racks": [{"name": r, "power_budget_kw": kw, "feeds": feeds} for r, (kw, feeds) in racks.items()],
            }
        ],
        "nodes": [
            {"name": f"n-{r}", "model": "box", "rack": r, "nominal_kw": kw, "max_kw": kw}
            for r, (kw, _) in racks.items()
        ],
        "power": {"components": components},
    }
    return yaml.safe_dump(data, sort_keys=False)


def analysis(text: str) -> PowerAnalysis:
    a = derive(parse_facility(text)).power
    assert a is not None
    return a


def scheme(text: str) -> str:
    return derive(parse_facility(text)).systems["ups"].scheme


def ups_chain(side: str, module_kw: float, modules: int, utility: str | None = None) -> list[dict[str, Any]]:
    """utility → UPS system (modules on one output) → PDU, one side of a design."""
    out: list[dict[str, Any]] = []
    if utility is None:
        utility = f"U-{side}"
        out.append({"name": utility, "kind": "utility", "kw": 10000})
    out += [
        {"name": f"UPS-{side}", "kind": "ups", "kw": module_kw, "units": modules, "fed_by": [utility]},
        {"name": f"PDU-{side}", "kind": "pdu", "kw": 5000, "fed_by": [f"UPS-{side}"]},
    ]
    return out


def four_racks(feeds: list[str], kw: float = 250.0) -> dict[str, tuple[float, list[str]]]:
    return {f"r{i}": (kw, feeds) for i in range(1, 5)}


# ---------------------------------------------------------------- N, N+1


def test_n_carries_the_load_but_any_loss_drops_every_rack() -> None:
    text = spec(ups_chain("A", 1000, 1), four_racks(["PDU-A"]))
    a = analysis(text)
    assert a.normal == [] and scheme(text) == "N"
    lost = {s.element: s for s in a.maintenance}
    assert set(lost) == {"U-A", "UPS-A", "PDU-A"}
    assert lost["UPS-A"].racks == ("r1", "r2", "r3", "r4") and lost["UPS-A"].dead == ("r1", "r2", "r3", "r4")


@pytest.mark.parametrize("module_kw,expected", [(499.0, "N"), (500.0, "N+1"), (501.0, "N+1")])
def test_n_plus_1_needs_the_load_carried_with_one_module_out(module_kw: float, expected: str) -> None:
    # 3 modules for 1000 kW: N+1 from 500 kW per module (2 × 500 = 1000), not below.
    assert scheme(spec(ups_chain("A", module_kw, 3), four_racks(["PDU-A"]))) == expected


def test_n_plus_1_on_one_bus_is_not_concurrently_maintainable() -> None:
    a = analysis(spec(ups_chain("A", 500, 3), four_racks(["PDU-A"])))
    assert not a.concurrently_maintainable
    assert "UPS-A" in {s.element for s in a.maintenance}


# ---------------------------------------------------------------- 2N and 2(N+1)


def two_sided(module_kw: float, modules: int) -> str:
    return spec(ups_chain("A", module_kw, modules) + ups_chain("B", module_kw, modules), four_racks(["PDU-A", "PDU-B"]))


@pytest.mark.parametrize("module_kw,expected", [(999.0, "N"), (1000.0, "2N"), (1001.0, "2N")])
def test_2n_needs_each_side_to_carry_the_whole_load(module_kw: float, expected: str) -> None:
    text = two_sided(module_kw, 1)
    assert scheme(text) == expected
    assert analysis(text).fault_tolerant == (expected == "2N")


def test_2n_whose_each_side_is_too_small_fails_class_a_and_the_capacity_rule() -> None:
    # The case: A and B each 3 × 250 kW = 750 kW for a 1000 kW hall. Pooled, 1500 kW looked like
    # N+2 on two paths (passed as M(N+1)); the one-line shows losing UPS-A leaves 750 kW for 1000 kW.
    # Two modules can go (anywhere) and 1000 kW is still carried: N+2 is true, fault tolerance is not.
    text = two_sided(250, 3)
    assert scheme(text) == "N+2" and not analysis(text).fault_tolerant
    report: Report = run_check(parse_facility(text), targets={"gb50174": "A"})
    by_id = {f.rule.id: f for f in report.findings}
    assert by_id["AV-GB-UPS"].status == "fail" and "UPS-A" in by_id["AV-GB-UPS"].note
    assert by_id["PWR-UPS-CAP"].status == "fail"
    assert "UPS-A out" in str(by_id["PWR-UPS-CAP"].measured) and "r1" in by_id["PWR-UPS-CAP"].note


@pytest.mark.parametrize("module_kw,expected", [(499.0, "2N"), (500.0, "2(N+1)")])
def test_2_n_plus_1_survives_a_side_and_a_module(module_kw: float, expected: str) -> None:
    # Each side 3 modules; with a side gone and one module of the other out, 2 × 500 kW carry 1000 kW.
    assert scheme(two_sided(module_kw, 3)) == expected


# ---------------------------------------------------------------- distributed redundant and catcher


def distributed(ups_kw: float) -> str:
    components: list[dict[str, Any]] = []
    for side in ("1", "2", "3"):
        components += ups_chain(side, ups_kw, 1)
    racks = {"r12": (300.0, ["PDU-1", "PDU-2"]), "r23": (300.0, ["PDU-2", "PDU-3"]), "r31": (300.0, ["PDU-3", "PDU-1"])}
    return spec(components, racks)


@pytest.mark.parametrize("ups_kw,tolerant", [(449.0, False), (450.0, True), (451.0, True)])
def test_distributed_redundant_three_systems_each_two_thirds(ups_kw: float, tolerant: bool) -> None:
    # 900 kW on three UPS pairs: losing one system leaves two to carry 900 kW, so each needs 450 kW.
    a = analysis(distributed(ups_kw))
    assert a.normal == []
    assert a.fault_tolerant == tolerant
    assert (scheme(distributed(ups_kw)) == "distributed redundant") == tolerant
    if not tolerant:
        lost = a.faults[0]
        assert lost.element in ("UPS-1", "U-1", "UPS-2", "U-2", "UPS-3", "U-3") and lost.short_kw == pytest.approx(2)


def catcher(reserve_kw: float) -> str:
    components: list[dict[str, Any]] = [{"name": "U", "kind": "utility", "kw": 10000}]
    components.append({"name": "UPS-R", "kind": "ups", "kw": reserve_kw, "fed_by": ["U"]})
    racks = {}
    for k in ("1", "2", "3"):
        components += [
            {"name": f"UPS-{k}", "kind": "ups", "kw": 500, "fed_by": ["U"]},
            {"name": f"STS-{k}", "kind": "sts", "kw": 600, "fed_by": [f"UPS-{k}", "UPS-R"]},
            {"name": f"PDU-{k}", "kind": "pdu", "kw": 600, "fed_by": [f"STS-{k}"]},
        ]
        racks[f"r{k}"] = (500.0, [f"PDU-{k}"])
    return spec(components, racks)


def test_catcher_reserve_takes_any_one_ups_through_its_sts() -> None:
    a = analysis(catcher(500))
    assert a.normal == []
    faults = {s.element: s for s in a.faults}
    assert not {"UPS-1", "UPS-2", "UPS-3", "UPS-R"} & set(faults)
    # The STS and PDU of each block and the shared utility are still single points: named, with their racks.
    assert faults["STS-2"].racks == ("r2",) and faults["PDU-3"].racks == ("r3",)
    assert set(faults["U"].racks) == {"r1", "r2", "r3"}


def test_catcher_reserve_too_small_for_a_block_fails_when_that_ups_is_lost() -> None:
    # The STS moves the whole block to the reserve; it does not split 500 kW between two UPS.
    faults = {s.element: s for s in analysis(catcher(499)).faults}
    assert faults["UPS-1"].racks == ("r1",) and faults["UPS-1"].short_kw == pytest.approx(1)


# ---------------------------------------------------------------- sources, alternates, ratings


def test_fault_tolerance_is_judged_on_generators_and_maintenance_may_use_the_utility() -> None:
    components = [
        {"name": "U", "kind": "utility", "kw": 5000},
        {"name": "G", "kind": "generator", "kw": 600, "units": 2},  # one paralleled plant: a single element
        {"name": "ATS", "kind": "ats", "kw": 2000, "fed_by": ["U", "G"]},
        *ups_chain("A", 1000, 1, utility="ATS"),
        *ups_chain("B", 1000, 1, utility="ATS"),
    ]
    a = analysis(spec(components, four_racks(["PDU-A", "PDU-B"])))
    assert a.normal == []
    faults = {s.element for s in a.faults}
    assert {"G", "ATS"} <= faults and "U" not in faults  # on generators the utility's loss is the premise
    assert "G" not in {s.element for s in a.maintenance}  # maintain the plant while on utility


def test_an_alternate_path_counts_for_maintenance_not_for_faults() -> None:
    components = ups_chain("A", 1000, 1) + [
        {"name": "U-B", "kind": "utility", "kw": 10000},
        {"name": "PDU-B", "kind": "pdu", "kw": 1000, "fed_by": ["U-B"], "alternate": True},
    ]
    a = analysis(spec(components, four_racks(["PDU-A", "PDU-B"])))
    assert a.concurrently_maintainable
    assert "UPS-A" in {s.element for s in a.faults}


@pytest.mark.parametrize("kva,pf,derate,ok", [(1250, 0.8, 1.0, True), (1250, 0.8, 0.99, False), (1000, 0.9, 1, False)])
def test_kva_power_factor_and_derating_set_the_rating(kva: float, pf: float, derate: float, ok: bool) -> None:
    components = [
        {"name": "U", "kind": "utility", "kw": 10000},
        {"name": "UPS", "kind": "ups", "kva": kva, "power_factor": pf, "derate": derate, "fed_by": ["U"]},
    ]
    assert (analysis(spec(components, four_racks(["UPS"]))).normal == []) == ok


def test_one_line_mistakes_are_located_spec_errors() -> None:
    components = [
        {"name": "U", "kind": "utility", "kw": 100},
        {"name": "UPS", "kind": "ups", "kw": 100, "fed_by": ["UU"]},
        {"name": "UPS", "kind": "pdu", "kw": 100, "fed_by": ["U"]},
    ]
    text = spec(components, {"r1": (10.0, ["PDU"]), "r2": (10.0, [])})
    with pytest.raises(InvalidSpec) as err:
        parse_facility(text)
    msg = str(err.value)
    assert "power.components[1].fed_by[0]: no" in msg and "did you mean 'U'" in msg
    assert "power component name 'UPS' is used 2 times" in msg
    assert "halls[0].racks[0].feeds[0]" in msg and "rack 'r2' has no feeds" in msg


def test_per_path_shorthand_expands_to_the_same_verdicts() -> None:
    # The shorthand's 2N: UPS A and B each 2 × 250 kW for 357.5 kW (the Tier III example).
    from pathlib import Path

    from aidc.facility import load_facility

    example = Path(__file__).parents[2] / "examples" / "facilities" / "dgx-h100-tier3.yaml"
    d = derive(load_facility(example))
    assert d.power is not None and d.power.concurrently_maintainable
    assert d.systems["ups"].scheme == "2N" and d.power.kinds["ups"].system_ok
    assert {"ups:ups-A", "ups-bus:A", "dist:A", "switchgear:A"} <= set(d.power.oneline.elements)
