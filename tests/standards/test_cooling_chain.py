"""The cooling chain: stages in series limit the room to the smallest; units serving all heat are shared once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidc.facility import load_facility
from aidc.standards.checker import Report, run_check

LAB_IT_KW = 2 * 2.8 + 0.4  # two servers and a switch in the lab example


def cool_findings(report: Report) -> dict[str, str]:
    return {f.subject: f.status for f in report.findings if f.rule.id == "ENV-COOL-CAP"}


@pytest.mark.parametrize(
    "chiller_kw,status", [(LAB_IT_KW - 0.1, "fail"), (LAB_IT_KW, "pass"), (LAB_IT_KW + 0.1, "pass")]
)
def test_a_chiller_behind_roomy_in_row_units_limits_the_room(
    variant: Callable[..., Path], chiller_kw: float, status: str
) -> None:
    # In-row units 2 × 8 kW and a chiller in series: pooled, 16 + 5.9 kW looked like plenty; the room gets
    # only what the chiller rejects.
    def edit(d: dict[str, Any]) -> None:
        d["cooling"]["units"].append({"name": "chiller", "kind": "chiller", "capacity_kw": chiller_kw})

    report = run_check(load_facility(variant("lab-two-servers.yaml", edit)))
    assert cool_findings(report).get("chillers, air heat", "pass") == status
    if status == "fail":
        assert set(cool_findings(report)) == {"chillers, air heat"}  # the in-row stage is not blamed


def test_units_serving_all_heat_are_counted_once_for_air_and_liquid(variant: Callable[..., Path]) -> None:
    # GB200 example: dry coolers serve air (222.3 kW) and liquid (897.6 kW) heat together; 3 × 350 kW covers
    # each heat alone but not both at once (1,119.9 kW).
    def edit(d: dict[str, Any]) -> None:
        for u in d["cooling"]["units"]:
            if u["kind"] == "dry_cooler":
                u.update(count=3, capacity_kw=350)

    report = run_check(load_facility(variant("gb200-nvl72-china.yaml", edit)))
    found = cool_findings(report)
    assert found["heat rejection, air + liquid heat"] == "fail"
    assert found.get("heat rejection, liquid heat", "pass") == "pass"


def test_cooling_stage_short_fails_without_any_tier_target(variant: Callable[..., Path]) -> None:
    # The issue: CRAHs below N showed only in the derived data unless a tier was targeted.
    def edit(d: dict[str, Any]) -> None:
        d["targets"] = {}
        for u in d["cooling"]["units"]:
            if u["kind"] == "crah":
                u["count"] = 3  # 300 kW of CRAH for 357.5 kW of air heat

    report = run_check(load_facility(variant("dgx-h100-tier3.yaml", edit)))
    assert cool_findings(report)["terminal, air heat"] == "fail"


@pytest.mark.parametrize("flow_lpm,status", [(1286.0, "fail"), (1288.5, "pass"), (1290.0, "pass")])
def test_liquid_loop_flow_and_delta_t_carry_the_liquid_heat(
    variant: Callable[..., Path], flow_lpm: float, status: str
) -> None:
    # GB200 example: 897.6 kW to liquid over a 30 → 40 °C loop; Q = L/min / 60 × 4.18 × 10 → 1288.4 L/min.
    def edit(d: dict[str, Any]) -> None:
        d["cooling"]["liquid_loops"][0]["flow_lpm"] = flow_lpm

    report = run_check(load_facility(variant("gb200-nvl72-china.yaml", edit)))
    f = next(f for f in report.findings if f.rule.id == "ENV-LIQ-FLOW")
    assert f.status == status, (f.measured, f.expected)


@pytest.mark.parametrize(
    "ride_through,restart,status",
    [(None, None, "fail"), (None, 12.0, "fail"), (11.0, 12.0, "fail"), (12.0, 12.0, "pass"), (20.0, 12.0, "pass")],
)
def test_tier_iv_continuous_cooling_rides_through_the_chillers_restart(
    variant: Callable[..., Path], ride_through: float | None, restart: float | None, status: str
) -> None:
    # The Tier IV example with chillers in place of its dry coolers: fans and pumps on UPS are not enough, the
    # compressors stop on the utility loss and the stored cooling must carry the heat until they run again.
    def edit(d: dict[str, Any]) -> None:
        for u in d["cooling"]["units"]:
            if u["kind"] == "dry_cooler":
                u["kind"] = "chiller"
        d["cooling"].update(ride_through_min=ride_through, restart_min=restart)

    report = run_check(load_facility(variant("nvl72-tier4-oneline.yaml", edit)))
    f = next(f for f in report.findings if f.rule.id == "AV-UT-CC")
    assert f.status == status, f.measured
    assert report.ratings["uptime"]["mechanical"] == ("IV" if status == "pass" else "III")
    if ride_through is None:
        assert "ride-through not declared" in f.measured
