"""The user's own model for the tabular examples: a small MLP that `train.model: model:build` names.

aidc calls build(input_shape=[FEATURES], outputs=K, **train.params) and trains what it returns, data-parallel."""

from __future__ import annotations

import torch
from torch import nn


def build(input_shape: list[int], outputs: int, hidden: int = 64, dropout: float = 0.1) -> nn.Module:
    (features,) = input_shape
    return nn.Sequential(
        nn.Linear(features, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, outputs),
    )


def huber(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """A loss hook (`train.loss: model:huber`): less swayed by the few very large targets than squared error."""
    return nn.functional.huber_loss(outputs, targets, delta=25.0)
