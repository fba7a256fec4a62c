"""`aidc plan --emit-facility` writes a facility that `aidc check` passes at the requested tier."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aidc.facility.loader import load_facility
from aidc.planner import plan_file
from aidc.planner.emit import write_facility
from aidc.standards.checker import run_check
from aidc.standards.ratings import TIERS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workloads"
WORKLOADS = ["llama-70b-deadline.yaml", "gpt3-175b.yaml", "chat-inference.yaml"]


@pytest.mark.parametrize("workload", WORKLOADS)
def test_emitted_facility_passes_check_at_tier_iii(workload: str, tmp_path: Path) -> None:
    out = tmp_path / "facility.yaml"
    write_facility(plan_file(EXAMPLES / workload), out)
    facility = load_facility(out)
    report = run_check(facility)
    assert report.ratings["uptime"]["overall"] == "III"
    assert not report.failing("error"), [f.rule.id for f in report.findings if f.status == "fail"]


def emit_at(tier: str, workload: str, tmp_path: Path) -> Path:
    spec = yaml.safe_load((EXAMPLES / workload).read_text())
    spec["facility"]["tier"] = tier
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "facility.yaml"
    write_facility(plan_file(path), out)
    return out


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("tier", ["I", "II", "IV"])
def test_emitted_facility_meets_other_tiers(tier: str, workload: str, tmp_path: Path) -> None:
    report = run_check(load_facility(emit_at(tier, workload, tmp_path)))
    assert TIERS.index(report.ratings["uptime"]["overall"]) >= TIERS.index(tier)
    assert not report.failing("error"), [
        (f.rule.id, f.measured, f.expected) for f in report.findings if f.status == "fail"
    ]


def test_tier_iv_facility_has_continuous_cooling_on_a_ups_per_path(tmp_path: Path) -> None:
    facility = load_facility(emit_at("IV", "gpt3-175b.yaml", tmp_path))
    assert facility.cooling.continuous_cooling and facility.power.compartmentalized
    assert {u.path for u in facility.power.ups if u.serves == "cooling"} == {"A", "B"}
