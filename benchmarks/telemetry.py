"""Telemetry cost, printed side by side (issue 15):

1. Collect and store 20 metrics for N simulated nodes every 10 s (default 10,000): the CPU the collector's write
   path (building Samples, one multi-row insert per round into the metadata store) takes per round, as a share of
   one core over the 10 s interval — the budget is under half a core. Also the retention fold of a day's worth.
2. The collector's overhead on a training run: the same small PyTorch epoch loop timed with and without a
   collector thread sampling this host (psutil + modelled power into SQLite) every ``--interval`` seconds (the
   server's default, ``AIDC_TELEMETRY_INTERVAL_S``, unless given). The two sides run in alternating blocks of
   ``--epochs`` epochs, ``--pairs`` times, so that drift on a shared host hits both alike; the figure is the
   median over pairs of (block with collector) / (block without), in wall time, with the training thread's own
   CPU time beside it (what other processes on the host cannot inflate).

    PYTHONPATH=src .venv/bin/python benchmarks/telemetry.py [--nodes 10000] [--rounds 3] [--epochs 8] [--pairs 6]
    PYTHONPATH=src .venv/bin/python benchmarks/telemetry.py --nodes 0     # the training comparison only
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


def epoch_times(epochs: int, collector: NodeCollector | None) -> list[tuple[float, float]]:
    """(wall, this thread's CPU) seconds of each epoch."""
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
            start, cpu = time.perf_counter(), time.thread_time()
            for i in range(0, 4096, 32):
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[i : i + 32]), y[i : i + 32]).backward()
                opt.step()
            times.append((time.perf_counter() - start, time.thread_time() - cpu))
    finally:
        if collector is not None:
            collector.stop()
    return times


def main() -> None:
    from aidc.settings import Settings

    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=10_000, help="0: skip the store benchmark")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=8, help="epochs per block")
    ap.add_argument("--pairs", type=int, default=6, help="alternating blocks without / with the collector")
    ap.add_argument(
        "--interval",
        type=float,
        default=Settings().telemetry_interval_s,
        help="collector interval in the training comparison (default: the server's)",
    )
    ap.add_argument("--postgres", default="", help="also measure on this PostgreSQL URL")
    args = ap.parse_args()
    print(f"host: {os.cpu_count()} CPUs; load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.nodes:
            print(f"{args.nodes} nodes × {len(METRICS)} metrics per 10 s round")
            # (PostgreSQL: this process's CPU only — the server's own work is not in it)
            urls = [("SQLite", f"sqlite:///{tmp}/bench.db")] + (
                [("PostgreSQL", args.postgres)] if args.postgres else []
            )
            for name, url in urls:
                r = bench_store(url, args.nodes, args.rounds)
                print(
                    f"{name:<10} a round of {r['rows']:,} samples: building them {r['made_s']:.2f} s CPU, storing "
                    f"them {r['cpu_s']:.2f} s CPU ({r['wall_s']:.2f} s wall) → "
                    f"{(r['made_s'] + r['cpu_s']) / 10:.3f} of a core at one round per 10 s (budget 0.5); "
                    f"fold {r['fold_rows']:,} raw rows to 1-minute means: {r['fold_cpu_s']:.2f} s CPU"
                )
        store = open_metadata_store(f"sqlite:///{tmp}/train.db")
        epoch_times(1, None)  # warm-up: torch's first kernels, the allocator
        walls, cpus, without_all, with_all = [], [], [], []
        for p in range(args.pairs):
            # alternate which side goes first, so a trend over the run favours neither
            sides = ["without", "with"] if p % 2 == 0 else ["with", "without"]
            block: dict[str, list[tuple[float, float]]] = {}
            for side in sides:
                collector = (
                    NodeCollector(
                        "bench",
                        [PsutilSource()],
                        store.add_samples,
                        power_model=PowerModel(300, 500),
                        interval_s=args.interval,
                    )
                    if side == "with"
                    else None
                )
                block[side] = epoch_times(args.epochs, collector)
            a, b = block["without"], block["with"]
            walls.append(sum(w for w, _ in b) / sum(w for w, _ in a))
            cpus.append(sum(c for _, c in b) / sum(c for _, c in a))
            without_all += [w for w, _ in a]
            with_all += [w for w, _ in b]
        probe = NodeCollector("probe", [PsutilSource()], store.add_samples, power_model=PowerModel(300, 500))
        costs = []
        for _ in range(30):
            c = time.process_time()
            probe.collect_once()
            costs.append(time.process_time() - c)
        cost = statistics.median(costs)
        print(
            f"one collection on this host (psutil + modelled power + energy, written to SQLite): {cost * 1000:.2f} ms "
            f"CPU → {cost / args.interval:.5f} of a core every {args.interval:g} s"
        )
        a, b = statistics.median(without_all), statistics.median(with_all)
        print(
            f"training epoch, {args.pairs} pairs of {args.epochs}-epoch blocks: without collector {a * 1000:.1f} ms, "
            f"with collector every {args.interval:g} s {b * 1000:.1f} ms (medians of {len(without_all)} epochs)"
        )
        print(
            f"ratio with / without, median over pairs: wall {statistics.median(walls):.3f} "
            f"(pairs {min(walls):.3f}–{max(walls):.3f}), training thread's CPU {statistics.median(cpus):.3f} "
            f"(budget ≤ 1.01)"
        )
        print(f"load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
