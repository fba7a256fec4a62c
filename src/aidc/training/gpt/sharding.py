"""FSDP for the language model (torch's fully_shard, per block and at the root) and its checkpoints: the full
weights gathered to rank 0 (what evaluation and serving load) plus each worker's shard of the optimizer state as
an artifact of its own, so a resumed run with the same number of workers takes exactly the step it would have."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from aidc.training.gpt.model import GPT


def shard(model: GPT) -> GPT:
    """Shard each block's parameters, then the rest (embedding, final norm) across the process group."""
    from torch.distributed.fsdp import fully_shard

    for block in model.blocks:
        fully_shard(block)
    fully_shard(model)
    return model


def save_sharded(
    model: nn.Module, optimizer: torch.optim.Optimizer, put: Callable[[bytes, str], dict[str, Any]], name: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(full model state on rank 0, {} elsewhere; every rank's optimizer-shard artifact, by rank). A collective."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    blob = io.BytesIO()
    torch.save(get_optimizer_state_dict(model, optimizer), blob)
    own = put(blob.getvalue(), f"{name}-optimizer-shard-{rank}-of-{world}.pt")
    refs: list[Any] = [None] * world
    torch.distributed.all_gather_object(refs, own)
    return full, refs


def load_sharded(
    model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any], get: Callable[[dict[str, Any]], bytes]
) -> None:
    """Put a sharded checkpoint back: every rank has read ``state`` (full weights and the shards' artifacts)."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    shards = state["optimizer_shards"]
    if len(shards) != world:
        raise ValueError(
            f"the checkpoint's optimizer is sharded over {len(shards)} workers; this run has {world}: "
            f"resume with train_lm.workers: {len(shards)}"
        )
    set_model_state_dict(model, state["model"], options=StateDictOptions(full_state_dict=True))
    own = torch.load(io.BytesIO(get(shards[rank])), map_location="cpu", weights_only=False)
    set_optimizer_state_dict(model, optimizer, own)
