"""Microbenchmarks behind the planner's gloo constants (HostModel.gloo_latency, gloo_bandwidth), run by torchrun.

    torchrun --standalone --nproc_per_node 2 benchmarks/_planner_ddp_ops.py

The all-reduce of float32 tensors of several sizes between the workers, each right after a barrier (the peers
arrive together: what the ring formula prices, not a wait for a slower peer), one torch thread, fastest decile.
Rank 0 prints one JSON line.  benchmarks/planner_vs_measured.py --ddp-ops runs it and fits the constants; the
2-worker training epochs (--ddp) are the check, not the fit.
"""

from __future__ import annotations

import json
import time

import torch
import torch.distributed as dist

SIZES = (1, 16_384, 151_306, 1_048_576, 4_194_304)  # float32 elements (151,306 = the digits CNN's parameters)


def main() -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    sizes = {}
    for n in SIZES:
        t = torch.ones(n)
        for _ in range(3):
            dist.all_reduce(t, async_op=True).wait()
        times = []
        for _ in range(40 if n < 1_000_000 else 15):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(t, async_op=True).wait()  # as DDP launches it: on gloo's thread, then waited for
            times.append(time.perf_counter() - start)
        times.sort()
        sizes[str(4 * n)] = times[len(times) // 10]
    if dist.get_rank() == 0:
        print(json.dumps({"world": dist.get_world_size(), "all_reduce_s": sizes}), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
