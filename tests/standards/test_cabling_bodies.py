"""Cabling rules at the edges their @rule bodies decide (found by ``make mutate-rules``, which flips the
comparisons and and/or chains mutmut cannot reach)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidc.facility import load_facility
from aidc.standards.checker import run_check

DGX = "dgx-h100-tier3.yaml"  # declares two entrance rooms and an MDA, no SDA


# AV-TIA-SPACES: TIA-942 Annex F telecom table — Rated-4 asks for a secondary distribution area; one is enough.
@pytest.mark.parametrize(("sdas", "status"), [(0, "fail"), (1, "pass")])
def test_rated_4_asks_for_one_secondary_distribution_area(variant: Callable[..., Path], sdas: int, status: str) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["telecom_spaces"] += [{"name": f"sda-{i}", "kind": "sda"} for i in range(sdas)]

    report = run_check(load_facility(variant(DGX, edit)), targets={"tia942": 4})
    spaces = [f for f in report.findings if f.rule.id == "AV-TIA-SPACES"]
    failing = [(f.subject, f.measured, f.expected) for f in spaces if f.status == "fail"]
    if status == "fail":
        assert failing == [("secondary distribution", "0 SDA(s)", "≥ 1")]
    else:  # every space present: the passes are summed up in one finding
        assert failing == [] and {f.status for f in spaces} == {"pass"}
