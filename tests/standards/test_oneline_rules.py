"""The one-line example as a designer meets it: Tier IV proven, and each broken part named with its racks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aidc.facility import load_facility
from aidc.standards.checker import Report, run_check

EXAMPLE = "nvl72-tier4-oneline.yaml"


def failing(report: Report, rule_id: str) -> list[Any]:
    return [f for f in report.findings if f.rule.id == rule_id and f.status == "fail"]


def test_the_one_line_example_reaches_tier_iv_by_failure_analysis(variant: Callable[..., Path]) -> None:
    report = run_check(load_facility(variant(EXAMPLE)))
    assert report.counts["fail"] == 0 and report.counts["warn"] == 0
    assert report.ratings["uptime"]["overall"] == "IV"
    assert report.derived.systems["ups"].scheme == "2(N+1)"


def test_single_corded_racks_name_the_busway_whose_loss_drops_them(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        for rack in d["halls"][0]["racks"][:3]:
            rack["feeds"] = ["pdu-A"]

    report = run_check(load_facility(variant(EXAMPLE, edit)))
    ft = failing(report, "AV-UT-FT")
    named = {f.subject: f for f in ft}
    assert set(named) >= {"without pdu-A", "without ups-A", "without swgr-A"}
    busway = named["without pdu-A"]
    assert "3 rack(s) short (nvl-1, nvl-2, nvl-3)" in busway.measured
    assert busway.path == ("power", "components", 11) and busway.line is not None
    assert report.ratings["uptime"]["overall"] != "IV"


def test_a_shared_downstream_board_breaks_fault_tolerance(variant: Callable[..., Path]) -> None:
    # Both UPS systems into one switchboard that feeds both busways: 2(N+1) UPS, but one board to lose.
    def edit(d: dict[str, Any]) -> None:
        comps = d["power"]["components"]
        comps.append({"name": "board", "kind": "switchgear", "kw": 2000, "fed_by": ["ups-A", "ups-B"]})
        for c in comps:
            if c["name"] in ("pdu-A", "pdu-B"):
                c["fed_by"] = ["board"]

    report = run_check(load_facility(variant(EXAMPLE, edit)))
    subjects = {f.subject for f in failing(report, "AV-UT-FT")}
    assert subjects == {"without board"}
    assert {f.subject for f in failing(report, "AV-UT-CM")} == {"without board"}


def test_json_carries_the_failure_analysis(variant: Callable[..., Path]) -> None:
    import json

    from aidc.standards.report import render_json

    def edit(d: dict[str, Any]) -> None:
        d["halls"][0]["racks"][0]["feeds"] = ["pdu-A"]

    data = json.loads(render_json(run_check(load_facility(variant(EXAMPLE, edit)))))
    power = data["derived"]["power_one_line"]
    assert power["carries_n"] and not power["fault_tolerant"]
    lost = {row["element"]: row for row in power["short_after_fault"]}
    assert lost["pdu-A"]["racks"] == ["nvl-1"] and lost["pdu-A"]["short_kw"] == 120.0
    assert data["derived"]["cooling_chain"]["concurrently_maintainable"] is True
