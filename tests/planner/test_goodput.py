"""Goodput from per-component failure rates (Llama 3 Table 5) and storage sized for the checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidc.planner.catalog import Catalog
from aidc.planner.plan import plan_file
from aidc.planner.storage import INTERRUPTIONS, LLAMA3_GPUS, resilience
from aidc.planner.training import job_failures
from aidc.planner.workload import FacilityConstraints

H100 = Catalog.load().gpu("H100")
JOB = (
    "training:\n  - name: a\n    model: {layers: 32, hidden: 4096, heads: 32}\n    tokens: 1.0e12\n    gpus: GPUS\n"
    "    gpu: H100\n"
)


def test_table5_rates_give_llama3_one_interruption_every_three_hours_at_16k() -> None:
    """419 unexpected interruptions in 54 days on 16,384 H100s: one every 3.09 hours, GPUs the largest cause."""
    assert sum(count for _, _, count in INTERRUPTIONS) == 419
    rates = job_failures(H100, LLAMA3_GPUS, FacilityConstraints())
    assert 1 / sum(rates.values()) == pytest.approx(54 * 24 / 419)
    assert max(rates, key=lambda k: rates[k]) == "faulty GPU"


def test_goodput_falls_with_the_jobs_size_and_the_plan_names_the_causes(tmp_path: Path) -> None:
    spec = tmp_path / "w.yaml"
    goodput = {}
    for n in (256, 4096, 16384):
        spec.write_text(JOB.replace("GPUS", str(n)))
        r = plan_file(spec).jobs[0].training.resilience
        goodput[n] = r.goodput
        assert r.mtbf_source.startswith("per component") and r.causes[0][0] == "faulty GPU"
    assert goodput[256] > goodput[4096] > goodput[16384]
    # a three-tier fabric has more switches per GPU than a two-tier one: the network's share of failures grows
    small, large = job_failures(H100, 256, FacilityConstraints()), job_failures(H100, 16384, FacilityConstraints())
    share = {n: r["network switch/cable"] / sum(r.values()) for n, r in ((256, small), (16384, large))}
    assert share[16384] > share[256]
    text = plan_file(spec).to_dict()["training"][0]["storage"]
    assert text["mtbf_source"] == "per component (Llama 3 Table 5)"


def test_a_given_per_gpu_mtbf_still_overrides_the_components(tmp_path: Path) -> None:
    spec = tmp_path / "w.yaml"
    spec.write_text(JOB.replace("GPUS", "1024") + "facility:\n  gpu_mtbf_hours: 10000\n")
    r = plan_file(spec).jobs[0].training.resilience
    assert r.job_mtbf_h == pytest.approx(10000 / 1024) and r.mtbf_source == "given per-GPU MTBF"


def test_async_storage_is_sized_for_one_checkpoint_per_interval_not_per_snapshot() -> None:
    """70B params × 14 B = 980 GB: synchronously written in a 60 s stall needs 16 GB/s; written in the background
    it needs only to land before the next snapshot, one interval (tens of minutes) later."""
    sync = resilience(70e9, 1e12, 4, 1024, 50_000, 60.0, 10, 100)
    snap = resilience(70e9, 1e12, 4, 1024, 50_000, 2.0, 10, 100, asynchronous=True)
    assert sync.write_gbps == pytest.approx(980 / 60, rel=1e-3)
    assert snap.write_gbps == pytest.approx(980 / (snap.checkpoint_interval_h * 3600 - 2.0), rel=1e-3)
    assert snap.write_gbps < sync.write_gbps


def test_async_checkpoints_on_storage_too_slow_for_the_interval_stretch_it_and_lose_goodput() -> None:
    """980 GB written at 0.1 GB/s takes 9,800 s, longer than the Young/Daly interval: the next snapshot waits for
    it, so checkpoints are further apart and each failure loses more work than with fast storage."""
    fast = resilience(70e9, 1e12, 4, 1024, 50_000, 2.0, 10, 100, asynchronous=True, storage_bytes_per_s=100e9)
    slow = resilience(70e9, 1e12, 4, 1024, 50_000, 2.0, 10, 100, asynchronous=True, storage_bytes_per_s=0.1e9)
    assert fast.checkpoint_interval_h * 3600 < 9_800
    assert slow.checkpoint_interval_h * 3600 == pytest.approx(9_800 + 2.0)
    assert slow.goodput < fast.goodput
