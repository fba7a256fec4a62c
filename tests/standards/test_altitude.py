"""ASHRAE Thermal Guidelines (5th ed.) Table 2.1 notes: the allowable maximum falls with altitude above 900 m."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidc.facility import load_facility
from aidc.standards.checker import run_check


@pytest.mark.parametrize(
    "cls,altitude,inlet_max,status",
    [
        ("A1", 900, 32.0, "pass"),  # at the threshold altitude: no derating
        ("A1", 900, 32.1, "fail"),
        ("A1", 1200, 31.0, "pass"),  # 300 m above 900 m: 1 °C off
        ("A1", 1200, 31.1, "fail"),
        ("A1", 1199, 31.0, "pass"),  # just below 1200 m the maximum is a hair above 31 °C
        ("A2", 1200, 34.0, "pass"),
        ("A2", 1200, 34.1, "fail"),
        ("A2", 1500, 33.0, "pass"),
        ("A2", 1501, 33.0, "fail"),  # just above: 32.997 °C
        ("A3", 1075, 39.0, "pass"),  # 175 m per °C
        ("A3", 1075, 39.1, "fail"),
        ("A4", 1025, 44.0, "pass"),  # 125 m per °C
        ("A4", 1025, 44.1, "fail"),
    ],
)
def test_allowable_maximum_is_derated_above_900_m(
    variant: Callable[..., Path], cls: str, altitude: float, inlet_max: float, status: str
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["site"]["altitude_m"] = altitude
        d["targets"]["ashrae"] = cls
        d["cooling"]["inlet_c"] = {"min": 18, "max": inlet_max}

    report = run_check(load_facility(variant("lab-two-servers.yaml", edit)))
    f = next(f for f in report.findings if f.rule.id == "ENV-ASHRAE-ALLOW")
    assert f.status == status, (f.measured, f.expected)
    if altitude > 900 and status == "fail":
        assert f"for {altitude:g} m" in f.note
