"""Planner vs published runs: each case's prediction, the published figure and the error (median/max at the end).

Run: .venv/bin/python benchmarks/planner_accuracy.py
"""

from __future__ import annotations

import statistics

from aidc.planner.architecture import Architecture
from aidc.planner.catalog import Catalog
from aidc.planner.fabric import fat_tree
from aidc.planner.iteration import iteration_time
from aidc.planner.published import MEGATRON_RUNS


def cases() -> list[tuple[str, str, float, float]]:
    """(case, metric, predicted, published)."""
    catalog = Catalog.load()
    out = []
    for run in MEGATRON_RUNS:
        it = iteration_time(run.arch, run.layout, catalog.gpu(run.gpu), run.global_batch, run.precision)
        out.append((run.name, "iteration s", it.total, run.iteration_s))
    gpt3 = Architecture(layers=96, hidden=12288, heads=96, kv_heads=96, ffn_hidden=4 * 12288, vocab=50257,
                        seq_len=2048)
    out.append(("GPT-3 175B compute (Brown 2020)", "FLOPs", 6 * 175e9 * 300e9, 3.14e23))
    out.append(("GPT-3 175B params from shape", "params", gpt3.params, 175e9))
    # Llama 3 (2024): 405B, 15.6T tokens, 16,384 H100 at 400 TF/GPU, >90% effective training time
    flops = 6 * 405e9 * 15.6e12
    out.append(("Llama 3.1 405B compute", "FLOPs", flops, 3.8e25))
    goodput = 0.9
    out.append(("Llama 3.1 405B at 400 TF/GPU, 90% goodput", "GPU-hours", flops / (400e12 * goodput) / 3600, 30.84e6))
    # Narayanan 2021 §5.1: T ≈ 8TP/(nX): GPT-3 on 1024 GPUs at 140 TF → 34 days; 1T on 3072 at 163 TF → 84 days
    out.append(("GPT-3 175B, 1024 A100 at 140 TF (8TP/nX)", "days", 8 * 300e9 * 175e9 / (1024 * 140e12) / 86400, 34))
    out.append(("1T, 450B tokens, 3072 A100 at 163 TF (8TP/nX)", "days", 8 * 450e9 * 1e12 / (3072 * 163e12) / 86400, 84))
    for su, leaves, spines, gpus in ((1, 8, 4, 248), (2, 16, 8, 504), (3, 24, 16, 760), (4, 32, 16, 1016)):
        tree = fat_tree(gpus, 64)
        out.append((f"DGX H100 SuperPOD {su} SU leaves", "switches", tree.leaves, leaves))
        out.append((f"DGX H100 SuperPOD {su} SU spines", "switches", tree.spines, spines))
    return out


def main() -> None:
    rows = cases()
    print(f"{'case':58s} {'metric':12s} {'predicted':>12s} {'published':>12s} {'error':>8s}")
    timed = []
    for name, metric, pred, pub in rows:
        err = (pred - pub) / pub
        if metric in ("iteration s", "GPU-hours"):
            timed.append(abs(err))
        print(f"{name:58s} {metric:12s} {pred:12.4g} {pub:12.4g} {err:+8.1%}")
    every = [abs((p - q) / q) for _, _, p, q in rows]
    print(f"\niteration time and GPU-hours ({len(timed)} cases): median |error| {statistics.median(timed):.1%}, "
          f"max {max(timed):.1%}")
    print(f"all {len(rows)} cases: median |error| {statistics.median(every):.1%}, max {max(every):.1%}")


if __name__ == "__main__":
    main()
