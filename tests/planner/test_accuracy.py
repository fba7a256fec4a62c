"""The planner reproduces published figures (each source in the test's docstring)."""

from __future__ import annotations

import statistics

import pytest

from aidc.planner.catalog import Catalog
from aidc.planner.fabric import fat_tree
from aidc.planner.iteration import iteration_time
from aidc.planner.published import MEGATRON_RUNS


def test_megatron_iteration_times_within_goal() -> None:
    """Narayanan et al. SC'21 Table 1 and Korthikanti et al. 2022 Table 5: median |error| ≤ 5%, max ≤ 10%."""
    catalog = Catalog.load()
    errors = []
    for run in MEGATRON_RUNS:
        it = iteration_time(run.arch, run.layout, catalog.gpu(run.gpu), run.global_batch, run.precision)
        errors.append(abs(it.total - run.iteration_s) / run.iteration_s)
    assert statistics.median(errors) <= 0.05
    assert max(errors) <= 0.10


def test_korthikanti_selective_recompute_speedup() -> None:
    """Korthikanti 2022 Table 5: selective recompute + SP is ~29–32% faster than full recompute; we see >20%."""
    catalog = Catalog.load()
    runs = {r.name: r for r in MEGATRON_RUNS}
    for size in ("22B", "175B", "530B", "1000B"):
        full, sel = runs[f"GPT {size} full recompute"], runs[f"GPT {size} selective + SP"]
        gpu = catalog.gpu(full.gpu)
        t_full = iteration_time(full.arch, full.layout, gpu, full.global_batch, full.precision).total
        t_sel = iteration_time(sel.arch, sel.layout, gpu, sel.global_batch, sel.precision).total
        assert t_full / t_sel > 1.2


@pytest.mark.parametrize("su,leaves,spines,gpus", [(1, 8, 4, 248), (2, 16, 8, 504), (3, 24, 16, 760),
                                                    (4, 32, 16, 1016)])
def test_dgx_h100_superpod_switch_counts(su: int, leaves: int, spines: int, gpus: int) -> None:
    """NVIDIA DGX SuperPOD H100 RA: per SU count, GPUs → leaf/spine: 248→8/4, 504→16/8, 760→24/16, 1016→32/16."""
    tree = fat_tree(gpus, radix=64)
    assert (tree.tiers, tree.leaves, tree.spines) == (2, leaves, spines)


def test_fat_tree_three_tier_radix_64() -> None:
    """Reference B: 3-tier radix 64 carries 65,536 endpoints with 5,120 switches."""
    tree = fat_tree(65536, radix=64)
    assert (tree.tiers, tree.switches) == (3, 5120)
