"""Plans a user would read: published compute, GPU-hours, deadlines, memory fits, inference latency bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidc.errors import InvalidSpec
from aidc.planner import Catalog, load_workload, plan_file, plan_workload
from aidc.planner.workload import Workload

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workloads"
LLAMA_405B = {
    "layers": 126,
    "hidden": 16384,
    "heads": 128,
    "kv_heads": 8,
    "ffn_hidden": 53248,
    "vocab": 128256,
    "seq_len": 8192,
    "glu": True,
}


def _plan(data: dict) -> object:
    return plan_workload(Workload.model_validate(data), Catalog.load())


def test_gpt3_training_compute() -> None:
    """Brown et al. 2020: GPT-3 175B on 300B tokens = 3.14e23 FLOPs (6ND = 3.15e23)."""
    plan = plan_file(EXAMPLES / "gpt3-175b.yaml")
    job = plan.jobs[0].training
    assert job.flops_6nd == pytest.approx(3.14e23, rel=0.01)
    assert job.arch.params == pytest.approx(175e9, rel=0.01)


def test_llama3_405b_flops_and_gpu_hours() -> None:
    """Llama 3 paper (2024): 3.8e25 FLOPs; 30.84M H100 GPU-hours at 38–43% MFU; >90% effective training time."""
    plan = _plan(
        {
            "training": [
                {
                    "name": "llama-405b",
                    "model": LLAMA_405B,
                    "tokens": 15.6e12,
                    "gpus": 16384,
                    "gpu": "H100",
                    "mfu": 0.40,
                    "goodput": 0.9,
                    "global_batch_tokens": 16e6,
                }
            ]
        }
    )
    job = plan.jobs[0].training
    assert 6 * 405e9 * 15.6e12 == pytest.approx(3.8e25, rel=0.01)
    assert job.flops_6nd == pytest.approx(3.8e25, rel=0.02)
    assert job.gpu_hours == pytest.approx(30.84e6, rel=0.10)


def test_deadline_picks_gpu_count_and_a_fitting_layout() -> None:
    plan = plan_file(EXAMPLES / "llama-70b-deadline.yaml")
    job = plan.jobs[0].training
    assert plan.feasible and job.wall_days <= 60
    assert job.choice.best is not None and job.choice.best.memory.fits
    assert "fastest of" in job.choice.why()
    assert plan.facility is not None and plan.facility.racks > 0 and plan.facility.facility_kw > plan.facility.it_kw


def test_impossible_workload_names_binding_constraints() -> None:
    plan = plan_file(EXAMPLES / "impossible.yaml")
    assert not plan.feasible
    problems = {what: (binding, alt) for what, binding, alt in plan.problems}
    binding, alt = problems["llama-405b-in-10-days"]
    assert binding.startswith("deadline") and alt
    binding, alt = problems["instant-chat"]
    assert binding.startswith("memory bandwidth") and "tpot_ms" in (alt or "")


def test_no_layout_fits_memory_names_memory_and_alternative() -> None:
    plan = _plan({"training": [{"name": "too-big", "model": LLAMA_405B, "tokens": 1e12, "gpus": 8, "gpu": "H100"}]})
    job = plan.jobs[0].training
    assert not job.feasible and job.binding is not None and job.binding.startswith("memory")
    assert job.alternative and "GPU" in job.alternative


def test_inference_service_meets_targets() -> None:
    plan = plan_file(EXAMPLES / "chat-inference.yaml")
    svc = plan.services[0]
    assert svc.feasible and svc.tpot_ms <= 50 and svc.ttft_ms <= 1000 and svc.gpus >= svc.tp
    assert svc.kv_gb_total > 0


def test_typo_in_workload_is_located(tmp_path: Path) -> None:
    spec = tmp_path / "w.yaml"
    spec.write_text(
        "training:\n  - name: x\n    model: {params: 7.0e9}\n    tokens: 1.0e12\n    gpus: 8\n    tokenz: 5\n"
    )
    with pytest.raises(InvalidSpec) as exc:
        load_workload(spec)
    assert f"{spec}:6:5:" in str(exc.value) and "training[0].tokenz" in str(exc.value)


def test_user_catalog_extends_gpus(tmp_path: Path) -> None:
    cat = tmp_path / "gpus.yaml"
    cat.write_text(
        "gpus:\n  X1:\n    peak_tflops: {bf16: 500}\n    hbm_gb: 96\n    hbm_tbps: 4\n    nvlink_gbps: 400\n"
        "    nvlink_domain: 8\n    nic_gbps: 400\n    tdp_w: 600\n    node: {name: X1 box, gpus: 8, kw: 8}\n"
        "    sources: [my lab]\n"
    )
    assert Catalog.load([cat]).gpu("X1").hbm_gb == 96
