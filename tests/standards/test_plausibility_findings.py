"""The plausibility screen's findings as a report shows them: which field, which equipment, the figure and the hint.

The bounds are the screen's own clause text (node ≤ 250 kW, rack ≤ 1,000 kW, UPS module ≤ 5,000 kW, generator
≤ 20,000 kW, transformer ≤ 100,000 kW, PDU ≤ 10,000 kW, cooling unit ≤ 50,000 kW), copied here, never imported;
tests/standards/test_thresholds.py holds each bound's at/below/above verdicts, this file what the finding says.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from aidc.facility.loader import facility_from_source
from aidc.specfile import SpecSource
from aidc.standards import builtin_rules
from aidc.standards.checker import run_check

EXAMPLES = Path(__file__).parents[2] / "examples" / "facilities"
LAB = "lab-two-servers.yaml"  # one rack of two 2.8 kW GPU servers (count 2) and a 0.4 kW switch, one UPS
CN = "gb200-nvl72-china.yaml"  # generators, transformers, PDUs and cooling units, each a list
WATTS = "looks like watts typed into a kW field"

Spec = dict[str, Any]


@cache
def _example(name: str) -> Spec:
    data: Spec = yaml.safe_load((EXAMPLES / name).read_text())
    data.pop("checks", None)  # the example's own rule settings name other rules
    return data


def report(rule: str, example: str, edit: Callable[[Spec], Any] | None = None) -> tuple[list[dict[str, Any]], bool]:
    """(the findings of ``rule`` alone as the report's JSON gives them, whether the rule was not applicable)."""
    spec = copy.deepcopy(_example(example))
    if edit is not None:
        edit(spec)
    [r] = [r for r in builtin_rules() if r.id == rule]
    result = run_check(facility_from_source(SpecSource(spec, {}, example)), rules=[r])
    return [f.to_dict() for f in result.findings], rule in result.skipped


def said(finding: dict[str, Any]) -> tuple[str, str, str, str, str, str]:
    return (
        finding["status"],
        finding["field"],
        finding["subject"],
        finding["measured"],
        finding["expected"],
        finding["note"],
    )


def test_a_server_given_in_watts_is_named_with_its_field_and_the_hint() -> None:
    # the second node group (the switch): its index, not the first one's, is where the fix goes
    found, _ = report("PLAUS-NODE-KW", LAB, lambda s: s["nodes"][1].update(max_kw=400))
    assert [said(f) for f in found] == [("warn", "nodes[1].max_kw", "switch", "400.0 kW", "≤ 250 kW", WATTS)]


def test_a_server_exactly_at_the_bound_passes_without_the_hint() -> None:
    found, _ = report("PLAUS-NODE-KW", LAB, lambda s: s["nodes"][0].update(max_kw=250))
    assert [said(f) for f in found] == [("pass", "nodes[0].max_kw", "all 2 checked", "250.0 kW", "≤ 250 kW", "")]


def test_a_rack_is_judged_by_what_its_nodes_draw_when_that_exceeds_its_budget() -> None:
    # two 600 kW GPU servers and the 0.4 kW switch in a rack budgeted at 10 kW: the rack draws 1,200.4 kW
    found, _ = report("PLAUS-RACK-KW", LAB, lambda s: s["nodes"][0].update(max_kw=600))
    assert [said(f) for f in found] == [
        ("warn", "halls[0].racks[0].power_budget_kw", "lab-rack", "1,200.4 kW", "≤ 1,000 kW", WATTS)
    ]


def test_a_rack_budget_given_in_watts_is_named_though_its_nodes_draw_little() -> None:
    found, _ = report("PLAUS-RACK-KW", LAB, lambda s: s["halls"][0]["racks"][0].update(power_budget_kw=10000))
    assert [said(f) for f in found] == [
        ("warn", "halls[0].racks[0].power_budget_kw", "lab-rack", "10,000.0 kW", "≤ 1,000 kW", WATTS)
    ]


def test_an_empty_rack_is_judged_by_its_budget_alone() -> None:
    def empty_rack_first(spec: Spec) -> None:
        spec["halls"][0]["racks"].insert(0, {"name": "spare", "power_budget_kw": 0.5})

    found, _ = report("PLAUS-RACK-KW", LAB, empty_rack_first)
    assert [said(f) for f in found] == [
        ("pass", "halls[0].racks[0].power_budget_kw", "all 2 checked", "0.5 kW", "≤ 1,000 kW", "")
    ]


# (section, list, field, which unit to move, the clause's bound): each unit kind's bound applies to its own field
UNITS = [
    ("power", "ups", "module_kw", 0, 5000, LAB),
    ("power", "generators", "capacity_kw", 0, 20000, CN),
    ("power", "transformers", "capacity_kw", 1, 100000, CN),
    ("power", "pdus", "capacity_kw", 1, 10000, CN),
    ("cooling", "units", "capacity_kw", 1, 50000, CN),
]


@pytest.mark.parametrize(("section", "kind", "field", "index", "bound", "example"), UNITS, ids=[u[1] for u in UNITS])
def test_a_unit_rating_just_over_its_kinds_bound_is_named(
    section: str, kind: str, field: str, index: int, bound: int, example: str
) -> None:
    name = _example(example)[section][kind][index]["name"]
    found, _ = report("PLAUS-UNIT-KW", example, lambda s: s[section][kind][index].update({field: bound + 1}))
    assert [said(f) for f in found] == [
        ("warn", f"{section}.{kind}[{index}].{field}", name, f"{bound + 1:,.1f} kW", f"≤ {bound:,} kW", WATTS)
    ]


def test_unit_ratings_at_their_bounds_pass() -> None:
    def every_unit_at_its_bound(spec: Spec) -> None:
        for section, kind, field, _, bound, _ in UNITS:
            for unit in spec[section].get(kind, []):
                unit[field] = bound

    found, _ = report("PLAUS-UNIT-KW", CN, every_unit_at_its_bound)
    assert [f["status"] for f in found] == ["pass"]


def test_a_hall_whose_nodes_draw_nothing_is_named() -> None:
    found, _ = report("PLAUS-LOAD", LAB, lambda s: [n.update(max_kw=0, nominal_kw=0) for n in s["nodes"]])
    assert [said(f) for f in found] == [("warn", "nodes", "IT load", "0.0 kW", "> 0 kW", "")]


def test_a_small_load_counts_as_a_load() -> None:
    # a lab at 0.6 kW in all (two 0.1 kW servers and the 0.4 kW switch): under 1 kW, still a load
    found, _ = report("PLAUS-LOAD", LAB, lambda s: s["nodes"][0].update(max_kw=0.1, nominal_kw=0.1))
    assert [said(f) for f in found] == [("pass", "nodes", "IT load", "0.6 kW", "> 0 kW", "")]


def test_a_facility_without_racks_is_not_judged_for_its_load() -> None:
    def no_racks(spec: Spec) -> None:
        spec["halls"] = []
        spec["nodes"] = []

    found, skipped = report("PLAUS-LOAD", LAB, no_racks)
    assert (found, skipped) == ([], True)
