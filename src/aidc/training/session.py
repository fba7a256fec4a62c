"""What the training loop sees of its worker group, inside a worker: rank and world, the device, DDP, reports
and the checkpoint to resume from — the few calls of Ray Train's API the loop used, served by training.workers.

One session per worker process at a time (a pooled worker runs one training after another); the worker sets it
before the loop starts and clears it after.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn


class Checkpoint:
    """A small folder's files, carried by value (a report may travel from another node to the driver).

    The loop only ever puts a pointer in it (loop._point_to): the model itself is in the artifact store."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    @classmethod
    def from_directory(cls, folder: str | Path) -> Checkpoint:
        return cls({p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()})

    @contextmanager
    def as_directory(self) -> Iterator[str]:
        tmp = tempfile.mkdtemp(prefix="aidc-ckpt-")
        try:
            for name, data in self.files.items():
                (Path(tmp) / name).write_bytes(data)
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class TrainContext:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    checkpoint: Checkpoint | None
    send: Callable[[dict[str, Any], Checkpoint | None], None]  # rank 0's reports, to the driver
    marks: dict[str, float] = field(default_factory=dict)  # launch phases: name → time.time() it ended

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.time())

    def get_world_rank(self) -> int:
        return self.rank

    def get_world_size(self) -> int:
        return self.world

    def get_local_rank(self) -> int:
        return self.local_rank


_current: TrainContext | None = None


def begin(context: TrainContext) -> None:
    global _current
    _current = context


def end() -> None:
    global _current
    _current = None


def get_context() -> TrainContext:
    if _current is None:
        raise RuntimeError("not inside a training worker (training.workers starts the loop)")
    return _current


def get_checkpoint() -> Checkpoint | None:
    """The checkpoint the group reported last before a failure restarted it; None on a first start."""
    return get_context().checkpoint


def get_device() -> torch.device:
    return get_context().device


def report(metrics: dict[str, Any], checkpoint: Checkpoint | None = None) -> None:
    """Rank 0's report reaches the driver (in order, without waiting); the other ranks' are not needed there."""
    context = get_context()
    if context.rank == 0:
        context.send(metrics, checkpoint)


def prepare_model(model: nn.Module) -> nn.Module:
    """On the worker's device, wrapped in DistributedDataParallel when there is more than one worker."""
    context = get_context()
    context.mark("model")  # built (and restored): what follows is DDP's first broadcast of the weights
    model = model.to(context.device)
    if context.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ids = [context.device.index] if context.device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=ids)
    context.mark("ddp")
    return model


class _OnDevice:
    """A data loader whose batches arrive on the worker's device (no wrapper at all on CPU)."""

    def __init__(self, loader: Any, device: torch.device) -> None:
        self.loader, self.device = loader, device

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            yield [t.to(self.device, non_blocking=True) for t in batch]

    def __len__(self) -> int:
        return len(self.loader)


def prepare_data_loader(loader: Any, add_dist_sampler: bool = False) -> Any:
    """The loop brings its own sampler (steps.EpochSampler); only the device move is left to do."""
    if add_dist_sampler:
        raise ValueError("the training loop shards its data itself (steps.EpochSampler)")
    device = get_context().device
    return loader if device.type == "cpu" else _OnDevice(loader, device)
