"""Telemetry cost, printed side by side (issue 15):

1. Collect and store 20 metrics for N simulated nodes every 10 s (default 10,000): the CPU the collector's write
   path (building Samples, one multi-row insert per round into the metadata store) takes per round, as a share of
   one core over the 10 s interval — the budget is under half a core. Also the retention fold of a day's worth.
2. The collector's overhead on a training run: the same small PyTorch epoch loop timed with and without a
   collector thread sampling this host (psutil + modelled power into SQLite) every ``--interval`` seconds.

    PYTHONPATH=src .venv/bin/python benchmarks/telemetry.py [--nodes 10000] [--rounds 3] [--epochs 8]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time

from aidc.monitoring.collector import NodeCollector
from aidc.monitoring.sources import PowerModel, PsutilSource
from aidc.store.metadata import open_metadata_store
from aidc.store.metadata.records import Sample

METRICS = [f"sim_metric_{i:02d}" for i in range(19)] + ["node_power_watts"]


def simulated_round(nodes: int, now: float, rng: random.Random) -> list[Sample]:
    return [
        Sample(f"node-{n:05d}", metric, rng.random() * 100, now, "", metric != "node_power_watts", "sim")
        for n in range(nodes)
        for metric in METRICS
    ]


def bench_store(url: str, nodes: int, rounds: int) -> dict[str, float]:
    store = open_metadata_store(url)
    rng = random.Random(1)
    cpu, wall, made = [], [], []
    t0 = time.time() - 2 * 86400  # a day and more ago: what the fold below folds
    for r in range(rounds):
        c = time.process_time()
        samples = simulated_round(nodes, t0 + r * 10, rng)  # what the collectors hand over (read on each node)
        made.append(time.process_time() - c)
        c, w = time.process_time(), time.perf_counter()
        store.add_samples(samples)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    c, w = time.process_time(), time.perf_counter()
    folded = store.fold_samples(now=t0 + 2 * 86400)
    fold_cpu, fold_wall = time.process_time() - c, time.perf_counter() - w
    store.close()
    rows = nodes * len(METRICS)
    return {
        "rows": rows,
        "cpu_s": statistics.median(cpu),
        "made_s": statistics.median(made),
        "wall_s": statistics.median(wall),
        "fold_rows": folded["raw->60"],
        "fold_cpu_s": fold_cpu,
        "fold_wall_s": fold_wall,
    }


def epoch_times(epochs: int, collector: NodeCollector | None) -> list[float]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y = torch.randn(4096, 64), torch.randint(0, 10, (4096,))
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if collector is not None:
        collector.start()
    times = []
    try:
        for _ in range(epochs):
            start = time.perf_counter()
            for i in range(0, 4096, 32):
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[i : i + 32]), y[i : i + 32]).backward()
                opt.step()
            times.append(time.perf_counter() - start)
    finally:
        if collector is not None:
            collector.stop()
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--interval", type=float, default=1.0, help="collector interval in the training comparison")
    ap.add_argument("--postgres", default="", help="also measure on this PostgreSQL URL")
    args = ap.parse_args()
    print(f"host: {os.cpu_count()} CPUs; {args.nodes} nodes × {len(METRICS)} metrics per 10 s round")
    with tempfile.TemporaryDirectory() as tmp:
        # (PostgreSQL: this process's CPU only — the server's own work is not in it)
        urls = [("SQLite", f"sqlite:///{tmp}/bench.db")] + ([("PostgreSQL", args.postgres)] if args.postgres else [])
        for name, url in urls:
            r = bench_store(url, args.nodes, args.rounds)
            print(
                f"{name:<10} a round of {r['rows']:,} samples: building them {r['made_s']:.2f} s CPU, storing them "
                f"{r['cpu_s']:.2f} s CPU ({r['wall_s']:.2f} s wall) → {(r['made_s'] + r['cpu_s']) / 10:.3f} of a core "
                "at one round per 10 s (budget 0.5); "
                f"fold {r['fold_rows']:,} raw rows to 1-minute means: {r['fold_cpu_s']:.2f} s CPU"
            )
        store = open_metadata_store(f"sqlite:///{tmp}/train.db")
        # alternate without / with, so drift on a shared host hits both sides alike
        without, with_ = [], []
        for _ in range(2):
            without += epoch_times(args.epochs, None)
            collector = NodeCollector(
                "bench", [PsutilSource()], store.add_samples, power_model=PowerModel(300, 500), interval_s=args.interval
            )
            with_ += epoch_times(args.epochs, collector)
        probe = NodeCollector("probe", [PsutilSource()], store.add_samples, power_model=PowerModel(300, 500))
        costs = []
        for _ in range(30):
            c = time.process_time()
            probe.collect_once()
            costs.append(time.process_time() - c)
        cost = statistics.median(costs)
        print(
            f"one collection on this host (psutil + modelled power + energy, written to SQLite): {cost * 1000:.2f} ms "
            f"CPU → {cost / 10:.5f} of a core every 10 s, {cost / args.interval:.4f} every {args.interval:g} s"
        )
        a, b = statistics.median(without), statistics.median(with_)
        print(
            f"training epoch (median of {len(without)}): without collector {a * 1000:.1f} ms, with collector every "
            f"{args.interval:g} s {b * 1000:.1f} ms → ratio {b / a:.3f} (budget ≤ 1.01)"
        )


if __name__ == "__main__":
    main()
