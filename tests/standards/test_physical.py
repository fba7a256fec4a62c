"""Physical checks for AI racks: floor bearing pressure and the continuous rating of each rack's cord."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidc.facility import load_facility
from aidc.standards.checker import Report, run_check

EXAMPLE = "nvl72-tier4-oneline.yaml"  # eight 120 kW racks


def statuses(report: Report, rule_id: str) -> dict[str, str]:
    return {f.subject: f.status for f in report.findings if f.rule.id == rule_id}


# 1,360 kg on 0.72 m² bears 18.52 kPa; 12 kPa (TIA-942's recommended rating) holds 881 kg on that footprint.
@pytest.mark.parametrize(
    "weight,rating,status",
    [
        (1360.0, None, "fail"),
        (881.0, None, "pass"),
        (882.0, None, "fail"),
        (1360.0, 18.5, "fail"),
        (1360.0, 18.6, "pass"),
    ],
)
def test_an_nvl72_rack_on_a_floor(
    variant: Callable[..., Path], weight: float, rating: float | None, status: str
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["halls"][0]["racks"][0]["weight_kg"] = weight
        if rating is not None:
            d["halls"][0]["floor_rating_kpa"] = rating

    report = run_check(load_facility(variant(EXAMPLE, edit)))
    f = next(f for f in report.findings if f.rule.id == "PHYS-FLOOR-RACK")
    assert f.status == status and f.subject == "nvl-1"


@pytest.mark.parametrize("rating,status", [(7.1, "fail"), (7.2, "pass"), (12.0, "pass")])
def test_tia_942_minimum_floor_rating(variant: Callable[..., Path], rating: float, status: str) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["halls"][0]["floor_rating_kpa"] = rating

    report = run_check(load_facility(variant(EXAMPLE, edit)), targets={"tia942": 2})
    assert statuses(report, "PHYS-FLOOR-RATING") == {"hall-3": status}


def test_cord_limit_is_80_percent_of_the_three_phase_rating() -> None:
    from aidc.standards.physical import cord_kw

    # √3 × 415 V × 63 A = 45.28 kVA; × 0.8 continuous × 0.95 PF = 34.4 kW.
    assert cord_kw(63, 415, 3, 0.8, 0.95) == pytest.approx(math.sqrt(3) * 415 * 63 * 0.8 * 0.95 / 1000)
    assert cord_kw(63, 415, 3, 0.8, 0.95) == pytest.approx(34.4, abs=0.05)


@pytest.mark.parametrize("amps,status", [(219.0, "fail"), (219.7, "pass"), (220.0, "pass")])
def test_a_120_kw_rack_needs_a_cord_that_carries_it_alone(
    variant: Callable[..., Path], amps: float, status: str
) -> None:
    # 120 kW at 415 V, 3-phase, PF 0.95, 80 %: needs 120,000 / (√3 × 415 × 0.95 × 0.8) = 219.7 A.
    def edit(d: dict[str, Any]) -> None:
        d["halls"][0]["racks"][0]["cord_amps"] = amps

    report = run_check(load_facility(variant(EXAMPLE, edit)))
    assert statuses(report, "PHYS-CORD") == {"nvl-1": status}


@pytest.mark.parametrize("altitude,derate,status", [(1000.0, 1.0, None), (1001.0, 1.0, "warn"), (1500.0, 0.95, "pass")])
def test_generators_and_ups_above_1000_m_need_a_declared_derating(
    variant: Callable[..., Path], altitude: float, derate: float, status: str | None
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["site"]["altitude_m"] = altitude
        for g in d["power"]["generators"]:
            g["derate"] = derate
        for u in d["power"]["ups"]:
            u["derate"] = derate

    report = run_check(load_facility(variant("dgx-h100-tier3.yaml", edit)))
    found = {f.status for f in report.findings if f.rule.id == "PHYS-ALT-DERATE"}
    assert found == (set() if status is None else {status})


def test_a_derated_ups_is_judged_at_its_derated_kw(variant: Callable[..., Path]) -> None:
    # Tier III example: each UPS side 2 × 250 kW for 357.5 kW of IT. At 0.71 a side gives 355 kW: not 2N.
    def edit(d: dict[str, Any]) -> None:
        for u in d["power"]["ups"]:
            u["derate"] = 0.71

    report = run_check(load_facility(variant("dgx-h100-tier3.yaml", edit)))
    assert report.derived.systems["ups"].scheme != "2N"
