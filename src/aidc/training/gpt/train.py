"""One language-model optimizer step as the platform runs it: micro-batches with gradient accumulation (no
all-reduce until the last), AdamW, a cosine learning rate after a linear warm-up, gradient clipping and bf16
autocast where the device supports it; plus held-out loss, and the state a checkpoint holds for an exact resume."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Schedule:
    """Linear warm-up to ``lr``, then a cosine decay to ``min_lr`` at ``steps``."""

    lr: float
    min_lr: float
    warmup: int
    steps: int

    def at(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (1-based)."""
        if step <= self.warmup:
            return self.lr * step / max(1, self.warmup)
        done = min(1.0, (step - self.warmup) / max(1, self.steps - self.warmup))
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * done))


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """bf16 when asked, or on 'auto' when a CUDA device has bf16 units; None runs in fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def batch_rows(step: int, micro: int, rows: int, batch: int, world: int, rank: int, seed: int) -> np.ndarray:
    """Which packed sequences micro-batch ``micro`` of step ``step`` takes on worker ``rank``: a function of the
    seed and the step only, so a run resumed at any step sees the batches it would have seen anyway."""
    g = np.random.default_rng([seed, step, micro])
    picked = g.integers(0, rows, size=batch * world)
    return picked[rank * batch : (rank + 1) * batch]


def lm_loss(model: nn.Module, seqs: torch.Tensor) -> torch.Tensor:
    logits = model(seqs[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1).float(), seqs[:, 1:].flatten().long())


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.Optimizer:
    """AdamW, decaying the matrices only (not norms' gains); fused kernels on CUDA."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), fused=device.type == "cuda")


class LMTraining:
    """The model, its optimizer and schedule, stepping over a packed token array on one data-parallel worker."""

    def __init__(
        self,
        model: nn.Module,
        tokens: np.ndarray,
        *,
        schedule: Schedule,
        batch_size: int,
        accumulation: int = 1,
        clip: float | None = 1.0,
        weight_decay: float = 0.1,
        precision: str = "auto",
        device: torch.device | None = None,
        world: int = 1,
        rank: int = 0,
        seed: int = 0,
    ) -> None:
        self.model, self.schedule = model, schedule
        self.device = device or torch.device("cpu")
        self.tokens = torch.from_numpy(tokens)
        self.batch_size, self.accumulation, self.clip = batch_size, accumulation, clip
        self.world, self.rank, self.seed = world, rank, seed
        self.amp = autocast_dtype(self.device, precision)
        self.optimizer = make_optimizer(model, schedule.lr, weight_decay, self.device)
        self.step_done = 0

    @property
    def net(self) -> nn.Module:
        """The model itself, inside DDP's and torch.compile's wrappers (what checkpoints and evaluation use)."""
        net = self.model
        for attr in ("module", "_orig_mod"):
            inner = getattr(net, attr, None)
            net = inner if isinstance(inner, nn.Module) else net
        return net

    def _autocast(self) -> Any:
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

    def _micro(self, step: int, micro: int) -> torch.Tensor:
        rows = batch_rows(step, micro, len(self.tokens), self.batch_size, self.world, self.rank, self.seed)
        return self.tokens[torch.from_numpy(rows)].to(self.device, non_blocking=True)

    def step(self) -> torch.Tensor:
        """One optimizer step; the mean micro-batch loss, as a tensor (reading it waits for the device)."""
        step = self.step_done + 1
        lr = self.schedule.at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        total = torch.zeros((), device=self.device)
        for micro in range(self.accumulation):
            seqs = self._micro(step, micro)
            last = micro == self.accumulation - 1
            no_sync: Any = getattr(self.model, "no_sync", None)  # DDP: all-reduce on the last micro-batch only
            sync = contextlib.nullcontext() if last or no_sync is None else no_sync()
            fsdp_sync: Any = getattr(self.model, "set_requires_gradient_sync", None)  # FSDP: the same
            if fsdp_sync is not None:
                fsdp_sync(last)
            with sync:
                with self._autocast():
                    loss: torch.Tensor = lm_loss(self.model, seqs) / self.accumulation
                loss.backward()  # type: ignore[no-untyped-call]
            total += loss.detach()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_done = step
        return total

    @torch.no_grad()
    def evaluate(self, tokens: np.ndarray, batches: int, batch_size: int | None = None) -> float:
        """Mean loss over the first ``batches`` batches of ``tokens`` (the same rows every time: comparable)."""
        self.model.eval()
        net = self.net
        size = batch_size or self.batch_size
        data = torch.from_numpy(tokens)
        losses = []
        for i in range(0, min(len(data), batches * size), size):
            with self._autocast():
                losses.append(float(lm_loss(net, data[i : i + size].to(self.device))))
        return sum(losses) / max(1, len(losses))

    def tokens_per_step(self) -> int:
        return self.batch_size * self.world * self.accumulation * (int(self.tokens.shape[1]) - 1)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_done = int(state["step"])
