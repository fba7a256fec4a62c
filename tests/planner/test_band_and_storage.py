"""Every derived time carries its band; the checkpoint stall follows the storage system (or async snapshots)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidc.planner.plan import plan_file
from aidc.planner.storage import CHECKPOINT_BYTES_PER_PARAM, checkpoint_stall

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workloads"
JOB = (
    "training:\n  - name: a\n    model: {layers: 32, hidden: 4096, heads: 32}\n    tokens: 1.0e12\n    gpus: 256\n"
    "    gpu: H100\n"
)


def test_derived_plan_has_a_band_around_its_days_and_gpu_hours() -> None:
    plan = plan_file(EXAMPLES / "gpt3-175b.yaml").jobs[0].training
    assert plan.band is not None
    low, high = plan.band.around(plan.wall_days)
    assert low < plan.wall_days < high
    # the unstated assumptions move the answer by several percent each way, not by nothing and not by 2x
    assert 0.8 < plan.band.low < 0.97 and 1.03 < plan.band.high < 1.5
    assert "GEMMs" in "; ".join(plan.band.assumptions)
    assert plan_file(EXAMPLES / "gpt3-175b.yaml").to_dict()["training"][0]["compute"]["band"]["high"] > 1


def test_stated_mfu_has_no_band(tmp_path: Path) -> None:
    spec = tmp_path / "w.yaml"
    spec.write_text(JOB + "    mfu: 0.4\n")
    assert plan_file(spec).jobs[0].training.band is None


def test_checkpoint_stall_follows_storage_bandwidth(tmp_path: Path) -> None:
    """7e9 params × 14 B = 98 GB over 10 GB/s of storage: a 9.8 s stall, and a slower store stalls longer."""
    spec = tmp_path / "w.yaml"
    spec.write_text(JOB + "facility:\n  storage_write_gbps: 10\n")
    fast = plan_file(spec).jobs[0].training.resilience
    params = plan_file(spec).jobs[0].training.arch.params
    assert fast.stall_s == pytest.approx(params * CHECKPOINT_BYTES_PER_PARAM / 10e9)
    assert fast.stall_source == "storage bandwidth"
    spec.write_text(JOB + "facility:\n  storage_write_gbps: 1\n")
    slow = plan_file(spec).jobs[0].training.resilience
    assert slow.stall_s == pytest.approx(10 * fast.stall_s) and slow.goodput < fast.goodput


def test_async_checkpoint_pauses_only_for_the_host_snapshot() -> None:
    sync, _ = checkpoint_stall(70e9, 1024, None, 20.0, asynchronous=False)
    snap, source = checkpoint_stall(70e9, 1024, None, 20.0, asynchronous=True)
    assert source == "host snapshot (async)" and snap < sync / 100
    assert checkpoint_stall(70e9, 1024, 30.0, 20.0, asynchronous=True) == (30.0, "given")


def test_oversubscribed_fabric_slows_a_job_wider_than_a_leaf(tmp_path: Path) -> None:
    """4:1 oversubscription: a 256-GPU job spans leaves (radix 64 leaves 51 down-ports), so its cross-node
    collectives run at a quarter of the NIC and its iteration is slower; a 32-GPU job inside one leaf is not."""
    spec = tmp_path / "w.yaml"

    def iteration(gpus: int, oversubscription: float) -> float:
        spec.write_text(
            JOB.replace("gpus: 256", f"gpus: {gpus}") + f"facility:\n  oversubscription: {oversubscription}\n"
        )
        return plan_file(spec).jobs[0].training.iteration_s

    assert iteration(256, 4.0) > iteration(256, 1.0)
    assert iteration(32, 4.0) == pytest.approx(iteration(32, 1.0))


@pytest.mark.xfail(
    strict=True,
    reason=(
        "known miss, not loosened: the example now plans 2.16M GPU-hours (-18.7%). It held while the memory model "
        "counted FP8 activations at 2 bytes and the H800 at 80e9 bytes, which forced half of each stage's layers "
        "to be recomputed (2.39M); now 25% are. DeepSeek-V3 §3.2.3 recomputes only RMSNorm and the MLA "
        "up-projections, not whole layers, so what the recomputation hid is the fine-grained MoE compute the "
        "model underprices (issue 20, round-2 miss 1)"
    ),
)
def test_held_out_deepseek_v3_example_band_holds_the_published_gpu_hours() -> None:
    """Not fitted (the shipped constants never saw DeepSeek): examples/workloads/deepseek-v3-moe.yaml plans the
    report's 14.8T-token pre-training within 15% of its 2.664M H800 GPU-hours, and the band contains it."""
    plan = plan_file(EXAMPLES / "deepseek-v3-moe.yaml").jobs[0].training
    assert plan.feasible and plan.band is not None
    assert plan.gpu_hours == pytest.approx(2.664e6, rel=0.15)
    low, high = plan.band.around(plan.gpu_hours)
    assert low < 2.664e6 < high
