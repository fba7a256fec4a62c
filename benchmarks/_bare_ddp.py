"""The bare side of benchmarks/train_overhead.py: plain PyTorch DDP under torchrun, no Ray, no platform.

    torchrun --standalone --nproc_per_node 2 benchmarks/_bare_ddp.py --splits S.npz --arch '{...}' ...

Same model (aidc.training.zoo.build_model on the same arch dict), same arrays (the data stage's splits .npz),
same per-worker batch (global // world size), DistributedSampler(shuffle=True) with set_epoch(epoch), the same
optimizer and lr, gloo, torch.manual_seed(seed) before the model is built, and each epoch's batch loop timed
with time.perf_counter exactly where the platform's train_loop times it. No validation, checkpoints or
progress reports (the platform does those outside its timed region too). Rank 0 prints one JSON line.
``--bookkeeping`` adds the platform loop's per-step loss/accuracy sums, to price them separately.
"""

from __future__ import annotations

import argparse
import json
import os
import time

STARTED = time.perf_counter()
STARTED_UNIX = time.time()

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset  # noqa: E402

from aidc.data.preprocess import load_arrays  # noqa: E402
from aidc.training.loop import make_optimizer  # noqa: E402
from aidc.training.zoo import build_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--splits", required=True, help="the data stage's splits .npz")
    ap.add_argument("--arch", required=True, help="the architecture dict the train stage built, as JSON")
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--batch-size", type=int, required=True, help="global batch, split across workers")
    ap.add_argument("--optimizer", default="adam")
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads(N) first (0: leave as launched)")
    ap.add_argument("--bookkeeping", action="store_true", help="also sum loss and accuracy per step like train_loop")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    ready = time.perf_counter()

    torch.manual_seed(args.seed)
    with open(args.splits, "rb") as fh:
        data = load_arrays(fh.read())
    model = build_model(json.loads(args.arch))
    optimizer = make_optimizer(args.optimizer, model.parameters(), args.lr, args.weight_decay)
    model = DistributedDataParallel(model)
    train_set = TensorDataset(torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"]))
    sampler = DistributedSampler(train_set, shuffle=True)
    loader = DataLoader(train_set, batch_size=max(1, args.batch_size // world), sampler=sampler)
    loss_fn = nn.CrossEntropyLoss()

    setup = time.perf_counter()
    epoch_seconds, steps, first_step = [], 0, 0.0
    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch)
        model.train()
        began = time.perf_counter()
        loss_sum = correct = seen = 0.0
        for steps, (x, y) in enumerate(loader, 1):
            optimizer.zero_grad(set_to_none=True)
            logits = model(x)
            loss = loss_fn(logits, y)
            loss.backward()
            optimizer.step()
            if not first_step:
                first_step = time.time()
            if args.bookkeeping:
                loss_sum += float(loss) * len(y)
                correct += float((logits.argmax(1) == y).sum())
                seen += len(y)
        epoch_seconds.append(time.perf_counter() - began)

    if rank == 0:
        print(
            json.dumps(
                {
                    "epoch_seconds": epoch_seconds,
                    "steps_per_epoch": steps,
                    "world": world,
                    "per_worker_batch": loader.batch_size,
                    "torch_threads": torch.get_num_threads(),
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                    "bookkeeping": args.bookkeeping,
                    "startup_seconds": ready - STARTED,
                    "setup_seconds": setup - ready,
                    "script_seconds": time.perf_counter() - STARTED,
                    "script_started_unix": STARTED_UNIX,
                    "first_step_unix": first_step,
                }
            ),
            flush=True,
        )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
