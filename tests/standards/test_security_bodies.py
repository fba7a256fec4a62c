"""Security rules at the edges their @rule bodies decide (found by ``make mutate-rules``, which flips the
comparisons and and/or chains mutmut cannot reach)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidc.facility import load_facility
from aidc.standards.checker import Report, run_check

CHINA = "gb200-nvl72-china.yaml"  # MLPS / ISO 27001 targets: the security essentials are judged; CCTV kept 90 days


def check(variant: Callable[..., Path], edit: Callable[[dict[str, Any]], None]) -> Report:
    return run_check(load_facility(variant(CHINA, edit)))


def verdicts(report: Report, rule: str) -> list[tuple[str, str]]:
    return [(f.status, f.measured) for f in report.findings if f.rule.id == rule]


# SEC-CCTV: MLPS §8.1.1.3 monitoring, with recordings kept at least 30 days (aidc's inferred figure, which the
# finding states as "yes, ≥ 30 days").
@pytest.mark.parametrize(("days", "status"), [(29, "fail"), (30, "pass")])
def test_cctv_recordings_kept_30_days_are_enough_and_29_are_not(
    variant: Callable[..., Path], days: int, status: str
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["security"]["cctv_retention_days"] = days

    assert verdicts(check(variant, edit), "SEC-CCTV") == [(status, f"yes, {days} days kept")]


def test_recordings_kept_do_not_make_up_for_no_cctv(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["security"]["cctv"] = False  # the retention of 90 days stays declared

    assert verdicts(check(variant, edit), "SEC-CCTV") == [("fail", "no, 90 days kept")]
