"""The short training loops compression needs (fine-tuning a pruned model, training a student), in one process."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

# (logits, labels, rows' indices) → loss; the indices let a distillation loss look up the teacher's soft targets
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def fit(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    loss_fn: LossFn | None = None,
    on_epoch: Callable[[int, float], None] = lambda epoch, loss: None,
) -> nn.Module:
    """Adam over shuffled mini-batches of (x, y) for ``epochs``; ``on_epoch(epoch, mean loss)`` after each."""
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    plain = nn.CrossEntropyLoss()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            optimizer.zero_grad(set_to_none=True)
            logits = model(xt[idx])
            loss = loss_fn(logits, yt[idx], idx) if loss_fn else plain(logits, yt[idx])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        on_epoch(epoch, total / max(len(order), 1))
    return model.eval()
