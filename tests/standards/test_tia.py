"""TIA-942 in its own terms: the telecom table's Rated-3 backbone, and fuel hours per rating."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidc.facility import load_facility
from aidc.standards.checker import run_check

DGX = "dgx-h100-tier3.yaml"


def test_rated_3_telecom_needs_a_redundant_backbone(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["fabrics"][0]["redundant_uplinks"] = False

    report = run_check(load_facility(variant(DGX, edit)))
    assert report.ratings["tia942"]["telecom"] == 2
    f = next(f for f in report.findings if f.rule.id == "AV-TIA-TEL")
    assert f.status == "fail" and f.measured == "Rated-2"


@pytest.mark.parametrize(
    "rating,hours,status",
    [(3, 71.9, "warn"), (3, 72.0, "pass"), (3, 72.1, "pass"), (4, 95.9, "warn"), (4, 96.0, "pass")],
)
def test_fuel_hours_per_rating(variant: Callable[..., Path], rating: int, hours: float, status: str) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["power"]["generators"][0]["fuel_hours"] = hours

    report = run_check(load_facility(variant(DGX, edit)), targets={"tia942": rating})
    f = next(f for f in report.findings if f.rule.id == "AV-TIA-FUEL")
    assert f.status == status
    assert "(inf)" in f.citation  # recalled hours: said so, and only a warning
