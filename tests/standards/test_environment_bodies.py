"""Environment rules at the edges their @rule bodies decide (found by ``make mutate-rules``, which flips the
comparisons and and/or chains mutmut cannot reach)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidc.facility import load_facility
from aidc.standards.checker import Report, run_check

DGX = "dgx-h100-tier3.yaml"  # ASHRAE A1 target at 90 m, inlet 18–27 °C, RH 20–60 %


def check(variant: Callable[..., Path], edit: Callable[[dict[str, Any]], None]) -> Report:
    return run_check(load_facility(variant(DGX, edit)))


def notes(report: Report, rule: str) -> list[str]:
    return [f.note for f in report.findings if f.rule.id == rule]


# ASHRAE Thermal Guidelines (5th ed.) Table 2.1 notes: the allowable maximum is derated 1 °C per 300 m *above*
# 900 m (A1/A2). At 900 m nothing is derated, so the finding must not say it was.
@pytest.mark.parametrize(("altitude", "note"), [(900, ""), (1200, "maximum derated from 32 °C for 1200 m")])
def test_the_allowable_finding_says_derated_only_above_900_m(
    variant: Callable[..., Path], altitude: int, note: str
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["site"]["altitude_m"] = altitude

    assert notes(check(variant, edit), "ENV-ASHRAE-ALLOW") == [note]


def test_recommended_humidity_is_not_judged_without_an_ashrae_target(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["targets"]["ashrae"] = None  # the RH band stays declared

    report = check(variant, edit)
    assert "ENV-ASHRAE-RH-REC" in report.skipped and notes(report, "ENV-ASHRAE-RH-REC") == []


# ENV-LIQ-W: ASHRAE Table 2.2 names each W class by its maximum facility supply temperature (W32: 32 °C); W+ has
# no upper limit. The finding states the class's limit, or "any" for W+.
@pytest.mark.parametrize(
    ("w_class", "supply", "status", "expected"),
    [("W32", 33, "fail", "≤ 32 °C (W32)"), ("W32", 32, "pass", "≤ 32 °C (W32)"), ("W+", 50, "pass", "any")],
)
def test_a_liquid_loop_is_held_to_its_w_class_limit(
    variant: Callable[..., Path], w_class: str, supply: float, status: str, expected: str
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["cooling"]["liquid_loops"][0].update(w_class=w_class, supply_c=supply, return_c=supply + 10)

    report = run_check(load_facility(variant("gb200-nvl72-china.yaml", edit)))
    found = [(f.status, f.measured, f.expected) for f in report.findings if f.rule.id == "ENV-LIQ-W"]
    assert found == [(status, f"{supply:g} °C", expected)]


# ENV-LIQ-LOOP: the liquid units must carry the liquid heat (≥): capacity exactly equal to it is enough.
def test_liquid_capacity_exactly_at_the_liquid_heat_is_enough(variant: Callable[..., Path]) -> None:
    example = "gb200-nvl72-china.yaml"
    heat = run_check(load_facility(variant(example))).derived.liquid_heat_kw

    def edit(d: dict[str, Any]) -> None:
        for unit in d["cooling"]["units"]:
            if unit["name"] == "cdu":
                unit.update(capacity_kw=heat, count=1)  # the one unit serving liquid
            else:
                unit["serves"] = "air"

    report = run_check(load_facility(variant(example, edit)))
    assert report.derived.liquid_heat_kw == heat
    found = [(f.status, f.expected) for f in report.findings if f.rule.id == "ENV-LIQ-LOOP"]
    assert found == [("pass", f"≥ 1 loop, ≥ {heat:,.0f} kW")]


def _in_an_air_rack(variant: Callable[..., Path], model: str, gpu_type: Any) -> list[Any]:
    """The ENV-LIQ-REQUIRED findings of the GB200 example with its system renamed and its rack air-cooled."""

    def edit(d: dict[str, Any]) -> None:
        d["nodes"][0].update(model=model, gpu_type=gpu_type)
        d["halls"][0]["racks"][0].update(cooling="air", liquid_fraction=0)

    report = run_check(load_facility(variant("gb200-nvl72-china.yaml", edit)))
    return [f for f in report.findings if f.rule.id == "ENV-LIQ-REQUIRED"]


# ENV-LIQ-REQUIRED (NVIDIA GB200 NVL72 specifications: liquid-cooled): a GB200 system is held to a direct-liquid
# rack whatever its model is called, as is any rack-scale NVLink system (NVL36, NVL72…) whatever its GPU.
@pytest.mark.parametrize(
    ("model", "gpu_type"),
    [("compute tray", "GB200"), ("GB200 NVL72", "GB200"), ("custom NVL36 rack", None), ("VR NVL144", None)],
)
def test_a_liquid_only_system_in_an_air_rack_is_named(variant: Callable[..., Path], model: str, gpu_type: Any) -> None:
    failing = [(f.subject, f.measured) for f in _in_an_air_rack(variant, model, gpu_type) if f.status == "fail"]
    assert failing == [("nvl72 in nvl-01", "air")]


# NVIDIA's H100 NVL and H200 NVL are air-cooled PCIe cards, GH200 NVL2 an air-cooled server: "NVL" alone does not
# make a system liquid-only.
@pytest.mark.parametrize(("model", "gpu_type"), [("H100 NVL server", "H100"), ("GH200 NVL2", "GH200")])
def test_a_pcie_nvl_card_or_an_nvl2_server_may_sit_in_an_air_rack(
    variant: Callable[..., Path], model: str, gpu_type: Any
) -> None:
    assert [f.status for f in _in_an_air_rack(variant, model, gpu_type) if f.subject.startswith("nvl72 ")] == []


def test_cooling_capacity_and_liquid_flow_are_not_judged_without_it_load(variant: Callable[..., Path]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["nodes"] = []  # racks, cooling units and the liquid loop (with its flow) stay

    report = run_check(load_facility(variant("nvl72-tier4-oneline.yaml", edit)))
    assert report.derived.it_load_kw == 0
    for rule in ("ENV-COOL-CAP", "ENV-LIQ-FLOW"):
        assert rule in report.skipped and notes(report, rule) == []


# ENV-LIQ-FLOW (ASHRAE TC9.9 liquid cooling guidelines, heat transport Q = ṁ · cp · ΔT, water cp 4.18 kJ/kg·K,
# 1 kg/L): a loop whose flow carries exactly the liquid heat is enough; a little less flow is not.
@pytest.mark.parametrize(("share", "status"), [(1.0, "pass"), (0.99, "fail")])
def test_a_loop_flowing_exactly_the_liquid_heat_carries_it(
    variant: Callable[..., Path], share: float, status: str
) -> None:
    example = "nvl72-tier4-oneline.yaml"  # one loop, supply 30 °C, return 40 °C
    heat = run_check(load_facility(variant(example))).derived.liquid_heat_kw
    flow = heat * 60 / (4.18 * 10) * share  # L/min: kW = L/min ÷ 60 × 1 kg/L × 4.18 × ΔT

    def edit(d: dict[str, Any]) -> None:
        d["cooling"]["liquid_loops"][0]["flow_lpm"] = flow

    report = run_check(load_facility(variant(example, edit)))
    assert [(f.status, f.expected) for f in report.findings if f.rule.id == "ENV-LIQ-FLOW"] == [
        (status, f"≥ {heat:,.1f} kW")
    ]
