"""FSDP (two real gloo processes on this host): a sharded checkpoint — the full weights plus each worker's optimizer
shard, each its own blob — put back into freshly sharded models gives the very next-step loss of the run that went on."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from aidc.training.gpt.model import GPT, GPTConfig
from aidc.training.gpt.sharding import load_sharded, save_sharded, shard
from aidc.training.gpt.train import LMTraining, Schedule


def _training(seed: int, world: int, rank: int) -> LMTraining:
    torch.manual_seed(seed)
    model = shard(GPT(GPTConfig(vocab_size=64, dim=32, layers=2, heads=4, kv_heads=2, context=16)))
    tokens = np.random.default_rng(0).integers(0, 64, (64, 17)).astype(np.int32)
    return LMTraining(
        model,
        tokens,
        schedule=Schedule(1e-3, 1e-4, 2, 10),
        batch_size=4,
        accumulation=2,
        world=world,
        rank=rank,
        precision="fp32",
    )


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    blobs: dict[str, bytes] = {}

    def put(data: bytes, name: str) -> dict[str, str]:
        blobs[name] = data
        return {"artifact": name}

    run = _training(0, world, rank)
    for _ in range(3):
        run.step()
    full, shards = save_sharded(run.model, run.optimizer, put, "step-3")
    went_on = float(run.step())

    resumed = _training(1, world, rank)  # other initial weights: the checkpoint must win
    everyone: list[object] = [None] * world
    dist.all_gather_object(everyone, blobs)  # "the artifact store": every rank reads every shard
    store = {k: v for d in everyone for k, v in d.items()}  # type: ignore[attr-defined]
    state_full: list[object] = [full]
    dist.broadcast_object_list(state_full, src=0)  # every rank reads the checkpoint rank 0 wrote
    load_sharded(
        resumed.model,
        resumed.optimizer,
        {"model": state_full[0], "optimizer_shards": shards},
        lambda r: store[r["artifact"]],
    )
    resumed.step_done = 3
    again = float(resumed.step())
    Path(out, f"rank{rank}.txt").write_text(f"{went_on!r} {again!r} {len(shards)}")
    dist.destroy_process_group()


def test_fsdp_checkpoint_then_resume_takes_the_same_next_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The spawned processes import this module by its name (tests.training.…); pytest imported it without putting the
    # repository on sys.path, which the children inherit.
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2]))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2)
    for rank in range(2):
        went_on, again, shards = (tmp_path / f"rank{rank}.txt").read_text().split()
        assert shards == "2"
        assert float(went_on) == float(again)
