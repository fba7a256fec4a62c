"""Power rules at the edges their @rule bodies decide (found by ``make mutate-rules``, which flips the comparisons
and and/or chains mutmut cannot reach): which redundancy a GB 50174 class alone asks of the UPS, and that a design
with no IT load is not judged on UPS or generator capacity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aidc.facility import load_facility
from aidc.standards.checker import Report, run_check

DGX = "dgx-h100-tier3.yaml"  # Uptime Tier III target, 2N UPS, N+1 generators
CHINA = "gb200-nvl72-china.yaml"  # GB 50174 class A (and Uptime III) target


def check(variant: Callable[..., Path], example: str, edit: Callable[[dict[str, Any]], None]) -> Report:
    return run_check(load_facility(variant(example, edit)))


def expected(report: Report, rule: str) -> list[str]:
    return [f.expected for f in report.findings if f.rule.id == rule]


def test_gb50174_class_a_alone_asks_for_2n_ups(variant: Callable[..., Path]) -> None:
    # GB 50174-2017 Annex A (Table A): a class A data centre's UPS is configured 2N, so the basic capacity
    # E >= 1.1 P (§8.1) must hold with a whole UPS system out, and the installed capacity is twice it.
    def edit(d: dict[str, Any]) -> None:
        d["targets"]["uptime"] = None  # the class alone decides

    report = check(variant, CHINA, edit)
    [cap] = expected(report, "PWR-UPS-CAP")
    assert cap.endswith("kW with any one UPS system out")
    [mult] = expected(report, "PWR-UPS-MULT")
    assert mult.endswith("kW for 2N")


def test_without_it_load_ups_and_generators_are_not_judged(variant: Callable[..., Path]) -> None:
    # Racks, UPS and an Uptime target, but no nodes yet (and no generators): 1.1 × 0 kW proves nothing either way.
    def edit(d: dict[str, Any]) -> None:
        d["nodes"] = []
        d["power"]["generators"] = []

    report = check(variant, DGX, edit)
    assert report.derived.it_load_kw == 0 and report.facility.targets.uptime == "III"
    for rule in ("PWR-UPS-CAP", "PWR-UPS-MULT", "PWR-GEN-CAP"):
        assert rule in report.skipped
        assert expected(report, rule) == []
