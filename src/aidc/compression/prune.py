"""Pruning with torch.nn.utils.prune: unstructured magnitude (global L1) or structured channels (L2 per output
channel), fine-tuned with the masks held, then made permanent. Structured pruning then rebuilds the network without
the pruned channels, so the exported model really is smaller and faster; unstructured pruning leaves a dense model
of zeros, which is only smaller once compressed (the stage measures both and says which)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

WEIGHTED = (nn.Conv2d, nn.Linear)


def _weighted(model: nn.Module) -> list[Any]:  # (Conv2d | Linear: torch types their weights loosely)
    return [m for m in model.modules() if isinstance(m, WEIGHTED)]


def apply_masks(model: nn.Module, amount: float, *, structured: bool) -> None:
    """Mask ``amount`` of the weights: globally by |w| (unstructured), or per layer the output channels with the
    smallest L2 norm (structured; the classifier's own outputs are the classes, so the last layer keeps them)."""
    layers = _weighted(model)
    if not structured:
        prune.global_unstructured([(m, "weight") for m in layers], pruning_method=prune.L1Unstructured, amount=amount)
        return
    for m in layers[:-1]:
        prune.ln_structured(m, "weight", amount=amount, n=2, dim=0)  # type: ignore[no-untyped-call]
        # the bias of a dropped channel goes too, so removing the channel later changes nothing
        rows = m.weight_mask.flatten(1).amax(dim=1)
        prune.custom_from_mask(m, "bias", rows)  # type: ignore[no-untyped-call]


def make_permanent(model: nn.Module) -> None:
    for m in _weighted(model):
        for name in ("weight", "bias"):
            if prune.is_pruned(m) and hasattr(m, f"{name}_mask"):
                prune.remove(m, name)  # type: ignore[no-untyped-call]


def sparsity(model: nn.Module) -> float:
    """Share of zero weights over the Conv/Linear layers."""
    total = zeros = 0
    for m in _weighted(model):
        total += m.weight.numel()
        zeros += int((m.weight == 0).sum())
    return zeros / total if total else 0.0


def _input_shapes(model: nn.Sequential, sample: np.ndarray) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    hooks = [m.register_forward_pre_hook(lambda _m, args: shapes.append(tuple(args[0].shape[1:]))) for m in model]
    try:
        with torch.no_grad():
            model(torch.from_numpy(sample[:1]))
    finally:
        for h in hooks:
            h.remove()
    return shapes


def drop_pruned_channels(model: nn.Module, sample: np.ndarray) -> nn.Sequential:
    """A copy of a channel-pruned Sequential network without its all-zero output channels (and the inputs of the
    next layer that read them, through a Flatten too). Elementwise layers and pooling pass channels through."""
    if not isinstance(model, nn.Sequential):
        raise ValueError("structured pruning rebuilds nn.Sequential networks (the model zoo's); use structured: false")
    shapes = _input_shapes(model, sample)
    weighted = [i for i, m in enumerate(model) if isinstance(m, WEIGHTED)]
    keep: torch.Tensor | None = None  # the previous weighted layer's kept output channels
    flat_from: tuple[int, ...] | None = None  # (C, H, W) a Flatten saw since then
    layers: list[nn.Module] = []
    for i, layer in enumerate(model):
        if isinstance(layer, nn.Flatten):
            flat_from = shapes[i]
        elif not isinstance(layer, WEIGHTED) and not isinstance(
            layer, (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Dropout, nn.GELU, nn.Tanh, nn.Sigmoid)
        ):
            raise ValueError(f"structured pruning cannot carry channels through {type(layer).__name__}")
        if not isinstance(layer, WEIGHTED):
            layers.append(layer)
            continue
        w = layer.weight.detach()
        b = layer.bias.detach() if layer.bias is not None else None
        if keep is not None:
            cols = keep
            if isinstance(layer, nn.Linear) and flat_from is not None:
                area = int(np.prod(flat_from[1:]))
                cols = (keep[:, None] * area + torch.arange(area)[None, :]).flatten()
            w = w[:, cols]
        rows = torch.arange(w.shape[0]) if i == weighted[-1] else torch.nonzero(w.flatten(1).abs().sum(1) > 0)[:, 0]
        if len(rows) == 0:
            rows = torch.tensor([0])  # a layer pruned away entirely still needs one channel to pass on
        w = w[rows]
        new: nn.Conv2d | nn.Linear
        if isinstance(layer, nn.Conv2d):
            new = nn.Conv2d(
                w.shape[1],
                w.shape[0],
                layer.kernel_size,  # type: ignore[arg-type]
                stride=layer.stride,  # type: ignore[arg-type]
                padding=layer.padding,  # type: ignore[arg-type]
                dilation=layer.dilation,  # type: ignore[arg-type]
                bias=b is not None,
            )
        else:
            new = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
        with torch.no_grad():
            new.weight.copy_(w)
            if b is not None:
                new.bias.copy_(b[rows])  # type: ignore[union-attr]
        layers.append(new)
        keep, flat_from = rows, None
    return nn.Sequential(*layers).eval()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def channel_widths(model: nn.Module) -> list[int]:
    return [int(m.weight.shape[0]) for m in _weighted(model)]


def describe(model: nn.Module) -> dict[str, Any]:
    return {"parameters": parameter_count(model), "widths": channel_widths(model), "sparsity": sparsity(model)}
