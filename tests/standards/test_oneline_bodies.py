"""The one-line and cooling-chain rules on a design with racks but no IT in them yet (the @rule bodies' guards,
found by ``make mutate-rules``): with nothing to carry there is nothing to prove, so neither rule claims a pass."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aidc.facility import load_facility
from aidc.standards.checker import run_check

EXAMPLE = "nvl72-tier4-oneline.yaml"


def test_racks_without_nodes_are_not_judged_by_the_one_line_or_the_cooling_chain(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["nodes"] = []  # the halls, racks, one-line and cooling chain stay

    report = run_check(load_facility(variant(EXAMPLE, edit)))
    assert report.derived.racks and report.derived.it_load_kw == 0
    for rule in ("PWR-ONELINE-N", "ENV-COOL-CHAIN"):
        assert rule in report.skipped
        assert [f.status for f in report.findings if f.rule.id == rule] == []


def test_with_its_nodes_the_same_design_is_judged_by_both(variant: Callable[..., Path]) -> None:
    report = run_check(load_facility(variant(EXAMPLE)))
    for rule in ("PWR-ONELINE-N", "ENV-COOL-CHAIN"):
        assert {f.status for f in report.findings if f.rule.id == rule} == {"pass"}
