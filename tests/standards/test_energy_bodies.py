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
