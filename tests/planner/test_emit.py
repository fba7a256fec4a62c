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


@pytest.mark.parametrize("workload", WORKLOADS)
def test_emitted_compute_fabric_cable_reaches_every_gpu_rack(workload: str, tmp_path: Path) -> None:
    facility = load_facility(emit_at("III", workload, tmp_path))
    compute = facility.fabrics[0]
    assert compute.cable in ("mmf", "smf") and compute.switch_racks
    reach = [f for f in run_check(facility).findings if f.rule.id == "NET-CABLE-REACH"]
    assert reach and all(f.status == "pass" for f in reach)


def test_a_hall_too_long_for_multimode_gets_singlemode() -> None:
    from aidc.planner.emit import compute_cable

    def hall(rows: int) -> dict[str, object]:
        racks = [{"name": f"gpu-{r:03d}", "row": f"R{r}", "position": "01", "power_budget_kw": 40} for r in range(rows)]
        racks.append({"name": "net-01", "row": "N", "position": "01", "power_budget_kw": 20})
        return {"name": "x", "site": {"name": "s", "country": "US"}, "halls": [{"name": "h", "racks": racks}]}

    # The farthest GPU row is `rows` rows from the network row: rows × 2.4 m + two 1 m drops.
    assert compute_cable(hall(40), 400) == "mmf"  # 98 m
    assert compute_cable(hall(41), 400) == "smf"  # 100.4 m, past OM4's 100 m
    assert compute_cable(hall(20), 800) == "mmf" and compute_cable(hall(21), 800) == "smf"  # 50 m at 800G
