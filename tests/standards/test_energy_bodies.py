"""Energy rules at the edges their @rule bodies decide (found by ``make mutate-rules``, which flips the
comparisons and and/or chains mutmut cannot reach)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidc.facility import load_facility
from aidc.standards.checker import run_check

DGX = "dgx-h100-tier3.yaml"  # a year of metered facility and IT kWh


# KPI-PUE-VALID (ISO/IEC 30134-2:2016 §6: PUE = E_DC / E_IT over a year): without either energy there is no PUE to
# validate, so the rule is not judged.
@pytest.mark.parametrize("missing", ["facility_kwh", "it_kwh"])
def test_pue_validity_is_not_judged_without_both_energies(variant: Callable[..., Path], missing: str) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["energy"].pop(missing)

    report = run_check(load_facility(variant(DGX, edit)))
    assert "KPI-PUE-VALID" in report.skipped
    assert [f for f in report.findings if f.rule.id == "KPI-PUE-VALID"] == []


def test_facility_energy_equal_to_it_energy_is_valid(variant: Callable[..., Path]) -> None:
    # §6 asks E_DC ≥ E_IT: equal energies (PUE 1.0) are valid, and the year of data is what is judged.
    def edit(d: dict[str, Any]) -> None:
        d["energy"]["facility_kwh"] = d["energy"]["it_kwh"]

    report = run_check(load_facility(variant(DGX, edit)))
    found = [(f.status, f.measured) for f in report.findings if f.rule.id == "KPI-PUE-VALID"]
    assert found == [("pass", "365 days")]


# KPI-REF (ISO/IEC 30134-3:2016 §6: REF = E_ren / E_DC, at most 1): exactly the target passes, and so does a
# facility supplied wholly by renewables (REF 1).
@pytest.mark.parametrize(("renewable_share", "measured"), [(0.3, "0.300"), (1.0, "1.000")])
def test_ref_at_the_target_and_at_1_passes(variant: Callable[..., Path], renewable_share: float, measured: str) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["targets"]["ref_target"] = 0.3
        d["energy"]["facility_kwh"] = 3_000_000
        d["energy"]["renewable_kwh"] = 3_000_000 * renewable_share

    report = run_check(load_facility(variant(DGX, edit)))
    assert [(f.status, f.measured) for f in report.findings if f.rule.id == "KPI-REF"] == [("pass", measured)]


def test_erf_exactly_at_the_target_passes(variant: Callable[..., Path]) -> None:
    # ISO/IEC 30134-6:2021 §6: ERF = E_reused / E_DC, judged against the target as a minimum.
    def edit(d: dict[str, Any]) -> None:
        d["targets"]["erf_target"] = 0.2
        d["energy"].update(facility_kwh=3_000_000, reused_kwh=600_000)

    report = run_check(load_facility(variant(DGX, edit)))
    assert [(f.status, f.measured) for f in report.findings if f.rule.id == "KPI-ERF"] == [("pass", "0.200")]


# KPI-CUE (ISO/IEC 30134-8:2022 §6: CUE = CEF × PUE for an all-electric facility, the renewable share carrying no
# carbon): with no measured CO2, the grid's CEF and the PUE give it; exactly the target passes, a little above fails.
# DGX: measured PUE 3,190,000 / 2,480,000 kWh; here a design PUE of 1.2 alone, a grid of 500 g/kWh, no renewables.
def _cue(variant: Callable[..., Path], target: float, energy: Any = None, **site: Any) -> list[tuple[str, str, str]]:
    def edit(d: dict[str, Any]) -> None:
        d["targets"]["cue_target_kg_per_kwh"] = target
        d["energy"] = energy if energy is not None else {"design_pue": 1.2}
        d["site"].update(grid_carbon_g_per_kwh=500, renewable_share=0.0)
        d["site"].update(site)

    report = run_check(load_facility(variant(DGX, edit)))
    return [(f.status, f.measured, f.expected) for f in report.findings if f.rule.id == "KPI-CUE"]


@pytest.mark.parametrize(("target", "status"), [(0.6, "pass"), (0.59, "fail")])
def test_cue_from_the_grid_and_the_pue_at_its_target(variant: Callable[..., Path], target: float, status: str) -> None:
    assert _cue(variant, target) == [(status, "0.600 kg/kWh (CEF×PUE)", f"≤ {target:g} kg/kWh")]


def test_cue_counts_only_the_non_renewable_share(variant: Callable[..., Path]) -> None:
    assert _cue(variant, 0.6, renewable_share=0.25) == [("pass", "0.450 kg/kWh (CEF×PUE)", "≤ 0.6 kg/kWh")]


def test_cue_without_a_grid_carbon_figure_or_a_pue_is_not_computable(variant: Callable[..., Path]) -> None:
    assert _cue(variant, 0.6, grid_carbon_g_per_kwh=None) == [("fail", "not computable", "≤ 0.6 kg/kWh")]
    assert _cue(variant, 0.6, energy={"period_days": 365}) == [("fail", "not computable", "≤ 0.6 kg/kWh")]


def test_cue_is_measured_from_the_co2_and_it_energy_when_both_are_given(variant: Callable[..., Path]) -> None:
    # §6 CUE = total CO2 / E_IT: 500 t over 1 GWh of IT energy is 0.5 kg/kWh, whatever the grid figure says
    measured = {"design_pue": 1.2, "it_kwh": 1_000_000, "co2_kg": 500_000}
    assert _cue(variant, 0.6, energy=measured) == [("pass", "0.500 kg/kWh (measured)", "≤ 0.6 kg/kWh")]
    # IT energy without the CO2: back to CEF × PUE
    assert _cue(variant, 0.6, energy={"design_pue": 1.2, "it_kwh": 1_000_000}) == [
        ("pass", "0.600 kg/kWh (CEF×PUE)", "≤ 0.6 kg/kWh")
    ]


# KPI-WUE (ISO/IEC 30134-9:2022 §6: WUE = L water / E_IT kWh): without either figure it is not metered; exactly the
# target passes. DGX: 2,900,000 L over 2,480,000 kWh of IT energy.
def _wue(variant: Callable[..., Path], target: float, **energy: Any) -> list[tuple[str, str]]:
    def edit(d: dict[str, Any]) -> None:
        d["targets"]["wue_target_l_per_kwh"] = target
        d["energy"].update(energy)
        for key in [k for k, v in energy.items() if v is None]:
            d["energy"].pop(key)

    report = run_check(load_facility(variant(DGX, edit)))
    return [(f.status, f.measured) for f in report.findings if f.rule.id == "KPI-WUE"]


def test_wue_needs_both_the_water_and_the_it_energy(variant: Callable[..., Path]) -> None:
    assert _wue(variant, 1.0, water_l=None) == [("fail", "not metered")]
    assert _wue(variant, 1.0, it_kwh=None) == [("fail", "not metered")]


def test_wue_exactly_at_its_target_passes(variant: Callable[..., Path]) -> None:
    assert _wue(variant, 1.25, water_l=3_100_000, it_kwh=2_480_000) == [("pass", "1.250 L/kWh")]
    assert _wue(variant, 1.24, water_l=3_100_000, it_kwh=2_480_000) == [("fail", "1.250 L/kWh")]


# KPI-CN-GB40879 (GB 40879-2021, mandatory in China): a site in China is held to grade 3 (PUE 1.50) without a
# declared grade; a site elsewhere only when it declares one. KPI-CN-HUB binds only a hub node in China.
CN = "gb200-nvl72-china.yaml"  # in China, a hub node, grade 1 declared, design PUE 1.15


def _judged(variant: Callable[..., Path], example: str, rule: str, edit: Callable[[dict[str, Any]], None]) -> bool:
    report = run_check(load_facility(variant(example, edit)))
    assert (rule in report.skipped) != any(f.rule.id == rule for f in report.findings)
    return rule not in report.skipped


def test_gb40879_binds_china_without_a_grade_and_elsewhere_only_with_one(variant: Callable[..., Path]) -> None:
    assert _judged(variant, CN, "KPI-CN-GB40879", lambda d: d["targets"].pop("gb40879_grade"))
    assert _judged(variant, DGX, "KPI-CN-GB40879", lambda d: d["targets"].update(gb40879_grade=2))
    assert not _judged(variant, DGX, "KPI-CN-GB40879", lambda d: None)


def test_the_hub_node_rule_binds_only_a_hub_node_in_china(variant: Callable[..., Path]) -> None:
    assert _judged(variant, CN, "KPI-CN-HUB", lambda d: None)
    assert not _judged(variant, CN, "KPI-CN-HUB", lambda d: d["site"].update(hub_node=False))
    assert not _judged(variant, DGX, "KPI-CN-HUB", lambda d: d["site"].update(hub_node=True))
