"""The planner reproduces published figures (each source in the test's docstring)."""

from __future__ import annotations

import dataclasses
import statistics

import pytest

from aidc.planner.catalog import Catalog
from aidc.planner.fabric import fat_tree
from aidc.planner.iteration import DEFAULT_EFFICIENCY, iteration_time
from aidc.planner.published import MEGATRON_RUNS


def test_fitted_megatron_iteration_times_within_goal() -> None:
    """In-sample (the shipped constants were fitted to these 18 runs): Narayanan et al. SC'21 Table 1 and
    Korthikanti et al. 2022 Table 5, median |error| ≤ 5%, max ≤ 10%.  Held-out accuracy is tested below."""
    catalog = Catalog.load()
    errors = []
    for run in MEGATRON_RUNS:
        it = iteration_time(run.arch, run.layout, catalog.gpu(run.gpu), run.global_batch, run.precision)
        errors.append(abs(it.total - run.iteration_s) / run.iteration_s)
    assert statistics.median(errors) <= 0.05
    assert max(errors) <= 0.10


def test_fitted_korthikanti_selective_recompute_speedup() -> None:
    """Korthikanti 2022 Table 5: selective recompute + SP is ~29–32% faster than full recompute; we see >20%."""
    catalog = Catalog.load()
    runs = {r.name: r for r in MEGATRON_RUNS}
    for size in ("22B", "175B", "530B", "1000B"):
        full, sel = runs[f"GPT {size} full recompute"], runs[f"GPT {size} selective + SP"]
        gpu = catalog.gpu(full.gpu)
        t_full = iteration_time(full.arch, full.layout, gpu, full.global_batch, full.precision).total
        t_sel = iteration_time(sel.arch, sel.layout, gpu, sel.global_batch, sel.precision).total
        assert t_full / t_sel > 1.2


@pytest.mark.parametrize(
    "su,leaves,spines,gpus", [(1, 8, 4, 248), (2, 16, 8, 504), (3, 24, 16, 760), (4, 32, 16, 1016)]
)
def test_dgx_h100_superpod_switch_counts(su: int, leaves: int, spines: int, gpus: int) -> None:
    """NVIDIA DGX SuperPOD H100 RA: per SU count, GPUs → leaf/spine: 248→8/4, 504→16/8, 760→24/16, 1016→32/16."""
    tree = fat_tree(gpus, radix=64)
    assert (tree.tiers, tree.leaves, tree.spines) == (2, leaves, spines)


def test_fat_tree_three_tier_radix_64() -> None:
    """Reference B: 3-tier radix 64 carries 65,536 endpoints with 5,120 switches."""
    tree = fat_tree(65536, radix=64)
    assert (tree.tiers, tree.switches) == (3, 5120)


def test_data_parallel_all_reduce_runs_on_every_rail_of_a_node() -> None:
    """DGX A100 (8 × 200 Gb/s NICs, one per GPU): a DP group with g members per node all-reduces across nodes over
    g NICs side by side (one NCCL ring per rail), capped by NVLink; inside one node it stays on NVLink."""
    from aidc.planner.iteration import data_parallel_bandwidth

    gpu = Catalog.load().gpu("A100-80GB")
    nic, nvlink = 20e9, 250e9
    assert data_parallel_bandwidth(gpu, tp=8, dp_group=32, nic=nic, nvlink=nvlink) == nic  # 1 per node
    assert data_parallel_bandwidth(gpu, tp=4, dp_group=32, nic=nic, nvlink=nvlink) == 2 * nic  # 2 per node
    assert data_parallel_bandwidth(gpu, tp=1, dp_group=32, nic=nic, nvlink=nvlink) == 8 * nic  # 8 per node
    assert data_parallel_bandwidth(gpu, tp=1, dp_group=32, nic=40e9, nvlink=nvlink) == nvlink  # NVLink caps it
    assert data_parallel_bandwidth(gpu, tp=2, dp_group=4, nic=nic, nvlink=nvlink) == nvlink  # one node


def test_held_out_megatron_run_refit_without_it_stays_within_goal() -> None:
    """Held out (deterministic): refit the software's matmul_efficiency (share of MAMF) without each of the 18 Megatron runs
    (bounded scalar minimax) and predict the run left out: median ≤ 5%, max ≤ 10% (3.8% / 6.8% when written).
    The other five constants keep their shipped values, which saw all 18 runs; the benchmark refits all six
    (benchmarks/planner_accuracy.py)."""
    from scipy.optimize import minimize_scalar

    gpu = Catalog.load().gpu("A100-80GB")

    def errors(runs: list, e: float) -> list[float]:
        eff = dataclasses.replace(DEFAULT_EFFICIENCY, matmul_efficiency=e)
        return [
            (iteration_time(r.arch, r.layout, gpu, r.global_batch, r.precision, eff=eff).total - r.iteration_s)
            / r.iteration_s
            for r in runs
        ]

    held = []
    for i, left_out in enumerate(MEGATRON_RUNS):
        train = MEGATRON_RUNS[:i] + MEGATRON_RUNS[i + 1 :]
        fit = minimize_scalar(
            lambda e: max(abs(x) for x in errors(train, e)),
            bounds=(0.3, 1.0),
            method="bounded",
            options={"xatol": 1e-4},
        )
        held.append(abs(errors([left_out], fit.x)[0]))
    assert statistics.median(held) <= 0.05
    assert max(held) <= 0.10


def test_three_tier_spines_follow_oversubscription() -> None:
    """At 3:1 each leaf has 16 uplinks instead of 32, so a pod needs 16 spines, not 32, and the core shrinks too."""
    blocking = fat_tree(65536, radix=64, oversubscription=3.0)
    full = fat_tree(65536, radix=64)
    assert blocking.tiers == 3 and blocking.spines < full.spines and blocking.cores < full.cores
    pods = -(-65536 // (48 * 32))
    assert blocking.spines == pods * 16


def test_one_run_the_model_cannot_price_does_not_set_the_shared_constants() -> None:
    """The refit's loss is squared only near zero (calibration.robust_loss): a published run three times slower than
    anything the model prices (as the fine-grained MoE tables are) moves the software's GEMM share little, where
    the squared loss it replaced let that one run drag every other run's prediction."""
    from aidc.planner.calibration import refit, robust_loss

    assert robust_loss(0.01) == pytest.approx(0.01**2, rel=0.01)  # squared near zero
    assert robust_loss(1.0) / robust_loss(0.5) == pytest.approx(2.0, rel=0.15)  # linear far out
    catalog = Catalog.load()
    runs = MEGATRON_RUNS[:6]
    outlier = dataclasses.replace(runs[0], name="three times slower", published=3 * runs[0].published)
    names = ("matmul_efficiency",)
    clean = refit(runs, catalog, names, rounds=1)["matmul_efficiency"]
    dragged = refit([*runs, outlier], catalog, names, rounds=1)["matmul_efficiency"]
    assert abs(dragged - clean) / clean < 0.05
