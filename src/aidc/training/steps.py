"""An epoch's optimizer steps, resumable part-way: the sampler that starts an epoch at a step, the random state,
and the step-boundary agreement of every data-parallel worker to stop when the stage is asked to.

How a stop travels (worst case, from the runner setting the stage's flag to every worker stopping): rank 0 reads the
flag without waiting, a read every ``pipeline.stop.POLL_S`` (0.5 s) plus its round trip; the workers share rank 0's
answer in a two-number all-reduce every ``every`` steps, ``every`` chosen by rank 0 so that this happens about every
``SYNC_S`` (0.5 s, while step times hold steady) and at least one step apart. So ≈ 1 s, or one step when a step
takes longer, plus saving the checkpoint. The cost: per step, a clock read on rank 0 (and, while a read is out, a
non-blocking ``ray.wait`` on it); per ``SYNC_S``, one all-reduce of two integers on every worker.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DistributedSampler

SYNC_S = 0.5  # aimed-at time between the workers' stop agreements
MAX_EVERY = 10_000  # steps between agreements, however short a step is


class EpochSampler(DistributedSampler):  # type: ignore[type-arg]
    """This worker's share of an epoch, shuffled by (seed, epoch) exactly as DistributedSampler shuffles it, and
    able to start part-way: a resumed epoch skips the samples of the steps it already did, without loading them.
    The order depends only on the seed, the epoch and the number of workers, so it is the same after a resume."""

    def __init__(self, dataset: Sized, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)  # type: ignore[arg-type]
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Start ``epoch``; ``skip`` samples (steps done × batch size) of this worker's share are left out."""
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)


def rng_state(device: torch.device) -> dict[str, Any]:
    """What draws dropout masks and the data loader's seed on this worker."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if state.get("cuda") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def gather_rng_states(device: torch.device) -> list[dict[str, Any]]:
    """Every worker's random state, by rank (a collective: every worker calls it)."""
    own = rng_state(device)
    if not torch.distributed.is_initialized():
        return [own]
    states: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(states, own)
    return states


@dataclass
class EpochSums:
    """The running totals an epoch's training metrics come from; tensors until the epoch ends (no device sync)."""

    loss: torch.Tensor
    correct: torch.Tensor
    seen: int = 0
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # a user's step's own metrics, × rows
    scored: bool = True  # False once a user's step gave no outputs to count right answers (or errors) from

    @classmethod
    def zero(cls, device: torch.device) -> EpochSums:
        return cls(torch.zeros((), device=device), torch.zeros((), device=device))

    def add(
        self,
        loss: torch.Tensor | float,
        correct: torch.Tensor | float,
        seen: int,
        extra: dict[str, torch.Tensor | float] | None = None,
    ) -> None:
        self.loss += loss
        self.correct += correct
        self.seen += seen
        for name, value in (extra or {}).items():
            self.extra[name] = self.extra.get(name, torch.zeros_like(self.loss)) + value


def train_steps(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    loader: Any,
    sums: EpochSums,
    *,
    first: int = 1,
    rng: dict[str, Any] | None = None,
    device: torch.device | None = None,
    after_step: Callable[[int], bool] = lambda i: False,
    score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    users_step: UsersStep | None = None,
) -> int | None:
    """One epoch's optimizer steps from step ``first`` (the loader already skips the earlier ones), adding into
    ``sums``. ``rng`` is the random state saved when the epoch stopped, set once the batches are drawn up so the
    steps that follow see the same dropout as if the epoch had not stopped. ``after_step(i)`` says whether to
    stop after step i; returns that step, or None when the epoch ran to its end. ``score(outputs, y)``: what
    ``sums.correct`` adds up (default: the right answers of a classifier). ``users_step``: the user's step
    computes the loss in place of ``loss_fn(model(x), y)``; the backward pass and the optimizer step stay here."""
    batches = iter(loader)  # starting the loader draws its seed from the RNG: the saved state goes in after it
    if rng is not None:
        set_rng_state(rng, device or torch.device("cpu"))
    for i, (x, y, *extra) in enumerate(batches, first):  # extra: a teacher's logits for these rows (distillation)
        optimizer.zero_grad(set_to_none=True)
        own: dict[str, torch.Tensor | float] = {}  # the user's step's own metrics
        if users_step is None:
            logits: torch.Tensor | None = model(x)
            loss = loss_fn(logits, y, *extra)
        else:
            loss, logits, own = users_step(model, x, y, loss_fn, i)
        loss.backward()
        optimizer.step()
        n = len(y)
        if logits is None:
            right: torch.Tensor | float = 0.0
            sums.scored = False
        else:
            right = (logits.detach().argmax(1) == y).sum() if score is None else score(logits.detach(), y)
        sums.add(loss.detach() * n, right, n, {k: v * n for k, v in own.items()})
        if after_step(i):
            return i
    return None


class UsersStep:
    """The user's training step (``train.step: MODULE:FUNCTION``), called as ``step(model, batch, loss_fn)`` —
    ``batch`` is ``(x, y)`` on the worker's device, ``model`` the data-parallel network (call it: ``model(x)``), and
    ``epoch=`` / ``step=`` are passed too when the function takes them. It returns the loss (a scalar tensor), or a
    dict with ``loss``, optionally ``outputs`` (N×K, for the epoch's training accuracy or MAE) and other scalars —
    the step's own metrics, averaged over the epoch and recorded as ``train_NAME``. The platform keeps the rest:
    the backward pass, the optimizer step, the gradients' all-reduce, checkpoints, resume and stopping."""

    def __init__(self, function: Callable[..., Any], ref: str) -> None:
        import inspect

        self.function, self.ref, self.epoch = function, ref, 0
        try:
            parameters = inspect.signature(function).parameters
        except (TypeError, ValueError):
            parameters = {}  # type: ignore[assignment]
        varkw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        self.passes = {k for k in ("epoch", "step") if varkw or k in parameters}

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Any, step: int
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor | float]]:
        where = {"epoch": self.epoch, "step": step}
        value = self.function(model, (x, y), loss_fn, **{k: where[k] for k in self.passes})
        return self.result(value, len(y))

    def result(
        self, value: Any, rows: int
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor | float]]:
        """(loss, outputs or None, the step's metrics) from what the user's step returned, or InvalidInput."""
        from aidc.errors import InvalidInput

        hint = "return the loss (a scalar tensor), or {'loss': ..., 'outputs': N×K tensor, 'NAME': a number, ...}"
        if isinstance(value, torch.Tensor):
            value = {"loss": value}
        if not isinstance(value, dict) or not isinstance(value.get("loss"), torch.Tensor):
            raise InvalidInput(f"train.step {self.ref!r} returned {_kind(value)}, not a loss", hint=hint)
        loss, outputs = value["loss"], value.get("outputs")
        if loss.dim() != 0 or not loss.requires_grad:
            what = "a tensor without a gradient" if loss.dim() == 0 else f"a tensor of shape {tuple(loss.shape)}"
            raise InvalidInput(
                f"train.step {self.ref!r} returned as its loss {what}",
                hint="return the scalar loss computed from model(x), before .item() or .detach()",
            )
        if outputs is not None and (not isinstance(outputs, torch.Tensor) or outputs.shape[:1] != (rows,)):
            raise InvalidInput(
                f"train.step {self.ref!r} returned outputs {_kind(outputs)} for a batch of {rows}",
                hint="outputs are the model's N×K answers for the batch (or leave them out)",
            )
        metrics: dict[str, torch.Tensor | float] = {}
        for name, metric in value.items():
            if name in ("loss", "outputs"):
                continue
            if isinstance(metric, torch.Tensor) and metric.dim() == 0:
                metrics[str(name)] = metric.detach().to(loss.dtype)
            elif isinstance(metric, (int, float)) and not isinstance(metric, bool):
                metrics[str(name)] = float(metric)
            else:
                raise InvalidInput(f"train.step {self.ref!r}: metric {name!r} is {_kind(metric)}", hint=hint)
        return loss, (outputs.detach() if outputs is not None else None), metrics


def _kind(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return type(value).__name__


class StopAgreement:
    """Whether every worker stops after this step: rank 0's reading of the stop flag, shared at a step boundary
    by an all-reduce that every worker makes at the same step counts (the interval travels with the flag)."""

    def __init__(self, stop: Any, rank: int, device: torch.device, sync_s: float = SYNC_S) -> None:
        self.stop, self.rank, self.device, self.sync_s = stop, rank, device, sync_s
        self.every = self.until = 1
        self.since = time.monotonic()

    def wanted(self) -> bool:
        """Rank 0's own view (cheap; the other workers always say no)."""
        return self.rank == 0 and self.stop is not None and bool(self.stop.requested())

    def after_step(self) -> bool:
        if self.stop is None:  # nobody can ask: no agreement to make
            return False
        wanted = self.wanted()  # every step, so the read goes out as soon as it is due
        self.until -= 1
        if self.until > 0:
            return False
        every = 0
        if self.rank == 0:
            step_s = (time.monotonic() - self.since) / self.every
            every = max(1, min(MAX_EVERY, int(self.sync_s / step_s) if step_s > 0 else MAX_EVERY))
        shared = torch.tensor([int(wanted), every], dtype=torch.int64, device=self.device)
        if torch.distributed.is_initialized():
            torch.distributed.all_reduce(shared)  # sum: rank 0's interval, and anyone's wish to stop
        stop, every = (int(v) for v in shared.tolist())
        self.every = self.until = every
        self.since = time.monotonic()
        return stop > 0
