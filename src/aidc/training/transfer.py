"""Transfer learning for the train stage: start from a registered model version's weights, replace the head for a
new label set, freeze layers by name pattern, and train the backbone at a lower learning rate."""

from __future__ import annotations

import fnmatch
import io
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from aidc.errors import InvalidInput


class Transfer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    freeze: list[str] = Field(
        default_factory=list, description="parameter name patterns kept fixed (fnmatch, e.g. '0.*' for the first layer)"
    )
    head: str | None = Field(None, description="pattern of the head's parameters (default: the last layer's)")
    new_head: bool = Field(False, description="start the head afresh even when the label count is unchanged")
    backbone_lr_scale: float = Field(0.1, gt=0, le=1, description="backbone learning rate = lr × this")


def parent_arch(checkpoint: bytes) -> dict[str, Any]:
    """The architecture stored in a training checkpoint (every train stage writes it)."""
    state = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=True)
    if "arch" not in state:
        raise InvalidInput(
            "the init_from model's checkpoint names no architecture", hint="use a version a train stage made"
        )
    return dict(state["arch"])


def arch_for(parent: dict[str, Any], input_shape: list[int], classes: int) -> dict[str, Any]:
    """The parent's network for this data: the same body, a head for ``classes`` labels."""
    if list(parent["input_shape"]) != list(input_shape):
        raise InvalidInput(
            f"init_from model takes inputs of shape {list(parent['input_shape'])}; this data is {list(input_shape)}",
            hint="prepare the data at the parent's image size, or train from scratch (leave out init_from)",
        )
    return {**parent, "classes": classes}


def head_names(model: nn.Module, pattern: str | None) -> set[str]:
    names = [n for n, _ in model.named_parameters()]
    if pattern is not None:
        return {n for n in names if fnmatch.fnmatchcase(n, pattern)}
    last = names[-1].rsplit(".", 1)[0]  # the module that owns the last parameter
    return {n for n in names if n.rsplit(".", 1)[0] == last}


def start_from(model: nn.Module, checkpoint: bytes, transfer: Transfer) -> dict[str, list[str]]:
    """Load the parent's weights into ``model`` wherever shapes agree (the head is kept fresh when they do not, or
    when ``new_head``), and freeze the parameters the patterns name. Returns what was loaded, replaced and frozen."""
    parent = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=True)["model"]
    head = head_names(model, transfer.head)
    own = model.state_dict()
    loaded = {
        k: v
        for k, v in parent.items()
        if k in own and own[k].shape == v.shape and not (transfer.new_head and k in head)
    }
    model.load_state_dict({**own, **loaded})
    frozen = []
    for name, p in model.named_parameters():
        if any(fnmatch.fnmatchcase(name, pat) for pat in transfer.freeze):
            p.requires_grad_(False)
            frozen.append(name)
    unknown = [
        pat for pat in transfer.freeze if not any(fnmatch.fnmatchcase(n, pat) for n, _ in model.named_parameters())
    ]
    if unknown:
        names = ", ".join(n for n, _ in model.named_parameters())
        raise InvalidInput(f"transfer.freeze patterns {unknown} name no parameter", hint=f"parameters: {names}")
    return {"loaded": sorted(loaded), "fresh": sorted(set(own) - set(loaded)), "frozen": frozen}


def parameter_groups(model: nn.Module, lr: float, transfer: Transfer) -> list[dict[str, Any]]:
    """The trainable parameters: the head at ``lr``, the rest of the network at ``lr × backbone_lr_scale``."""
    head = head_names(model, transfer.head)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if n in head], "lr": lr},
        {"params": [p for n, p in named if n not in head], "lr": lr * transfer.backbone_lr_scale},
    ]
    return [g for g in groups if g["params"]]
