"""Microbenchmarks behind the planner's DDP-over-gloo constants (HostModel.gloo_*, ddp_calls), run by torchrun.

    torchrun --standalone --nproc_per_node 2 benchmarks/_planner_ddp_ops.py   # gloo all-reduce by size
    torchrun --standalone --nproc_per_node 1 benchmarks/_planner_ddp_ops.py   # DDP's per-step Reducer cost

World 2: the all-reduce of float32 tensors of several sizes, each right after a barrier (the peers arrive
together: what the ring formula prices, not a wait for a slower peer), fastest decile.  World 1: a training step
of the digits CNN with and without the DDP wrapper (its all-reduce of one rank is a hand-off to gloo's thread
and back), fastest decile of each, alternating.  Rank 0 prints one JSON line.  benchmarks/planner_vs_measured.py
--ddp-ops runs both and fits the constants; the 2-worker training epochs are the check, not the fit.
"""

from __future__ import annotations

import json
import time

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from aidc.training.zoo import build_model

SIZES = (1, 16_384, 151_306, 1_048_576, 4_194_304)  # float32 elements (151,306 = the digits CNN's parameters)


def fastest_decile(fn, reps: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 10]


def main() -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    out: dict[str, object] = {"world": world}
    if world > 1:
        sizes = {}
        for n in SIZES:
            t = torch.ones(n)

            def once() -> None:
                dist.all_reduce(t, async_op=True).wait()

            for _ in range(3):
                once()
            times = []
            for _ in range(40 if n < 1_000_000 else 15):
                dist.barrier()
                start = time.perf_counter()
                once()
                times.append(time.perf_counter() - start)
            times.sort()
            sizes[str(4 * n)] = times[len(times) // 10]
        out["all_reduce_s"] = sizes
    else:
        arch = {"model": "cnn", "input_shape": [1, 8, 8], "classes": 10, "width": 32, "dropout": 0.1}
        x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
        loss_fn = nn.CrossEntropyLoss()
        steps = {}
        for name in ("plain", "ddp"):
            torch.manual_seed(0)
            model = build_model(arch)
            opt = torch.optim.Adam(model.parameters(), lr=0.002)
            net = DistributedDataParallel(model) if name == "ddp" else model

            def step() -> None:
                opt.zero_grad(set_to_none=True)
                loss_fn(net(x), y).backward()
                opt.step()

            steps[name] = step
        for fn in steps.values():
            for _ in range(5):
                fn()
        times: dict[str, list[float]] = {k: [] for k in steps}
        for _ in range(60):
            for name, fn in steps.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        fast = {k: sorted(v)[len(v) // 10] for k, v in times.items()}
        out.update({"plain_step_s": fast["plain"], "ddp_step_s": fast["ddp"],
                    "reducer_s": fast["ddp"] - fast["plain"]})
    if rank == 0:
        print(json.dumps(out), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
