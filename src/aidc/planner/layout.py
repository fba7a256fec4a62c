"""Search the TP×PP×CP×DP×ZeRO×recompute×micro-batch space for the fastest layout that fits in memory."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TypeVar

from aidc.planner.architecture import Architecture
from aidc.planner.catalog import GPU
from aidc.planner.fabric import Network
from aidc.planner.iteration import (
    DEFAULT_EFFICIENCY,
    HOST_LINK_BYTES_PER_S,
    Efficiency,
    IterationTime,
    iteration_time,
)
from aidc.planner.memory import Layout, MemoryUse, memory_per_gpu
from aidc.planner.workload import Parallelism

T = TypeVar("T")
_POWERS = {1, 2, 4, 8, 16, 32, 64, 128}  # pipeline depths clusters are carved into, even where layers do not divide


@dataclass(frozen=True)
class Candidate:
    layout: Layout
    memory: MemoryUse
    time: IterationTime


@dataclass
class LayoutChoice:
    """The winner, the runner-up, and how many layouts were tried and fitted, so the plan can say why."""

    best: Candidate | None
    runner_up: Candidate | None = None
    considered: int = 0
    fitted: int = 0
    smallest_misfit: Candidate | None = None
    notes: list[str] = field(default_factory=list)

    def why(self) -> str:
        if self.best is None:
            return "no layout fits in memory"
        text = (
            f"fastest of {self.fitted} layouts that fit in memory ({self.considered} considered); "
            f"{self.considered - self.fitted} rejected for memory"
        )
        if self.runner_up is not None:
            slower = self.runner_up.time.total / self.best.time.total - 1
            text += f"; runner-up {self.runner_up.layout.label()} is {slower:.1%} slower"
        return "; ".join([text, *self.notes])


def _choices(given: T | None, options: list[T]) -> list[T]:
    return [given] if given is not None else options


def layouts(arch: Architecture, gpu: GPU, gpus: int, global_batch: int, fixed: Parallelism | None) -> Iterator[Layout]:
    """Every layout for exactly ``gpus`` GPUs that respects the model's divisibility and the user's fixed choices."""
    f = fixed or Parallelism()
    tps = _choices(f.tp, [t for t in (1, 2, 4, 8, 16, 32, 64) if t <= gpu.nvlink_domain and arch.heads % t == 0])
    pps = _choices(f.pp, [p for p in range(1, min(arch.layers, 128) + 1) if p in _POWERS or arch.layers % p == 0])
    cps = _choices(f.cp, [c for c in (1, 2, 4, 8, 16) if c == 1 or arch.seq_len // c >= 4096])
    zeros = _choices(f.zero, [1, 3])
    recomputes = _choices(f.recompute, ["none", "selective", "partial", "full"])
    mbs = _choices(f.micro_batch, [1, 2, 4])
    for t in tps:
        for p in pps:
            for c in cps:
                if gpus % (t * p * c):
                    continue
                d = gpus // (t * p * c)
                if f.dp is not None and f.dp != d:
                    continue
                # interleaving needs v layer chunks per stage, not that p divides the layers (stages may be uneven)
                vs = _choices(f.interleave, [v for v in (1, 2, 4) if v == 1 or (p > 1 and arch.layers // p >= v)])
                for mb in mbs:
                    # a global batch that does not divide evenly rounds its micro-batch count up (as trainers do)
                    if d * mb > global_batch:
                        continue
                    for z in zeros:
                        for r in recomputes:
                            for v in vs:
                                sp = f.sequence_parallel if f.sequence_parallel is not None else t > 1
                                for e in _expert_parallel(arch, d, c, f.ep):
                                    yield Layout(t, p, d, c, z, r, mb, v, sp, e, f.schedule, f.overlap)


def _expert_parallel(arch: Architecture, dp: int, cp: int, given: int | None) -> list[int]:
    """Expert-parallel degrees: divisors of the data-parallel group that divide the routed experts."""
    if given is not None:
        return [given]
    if not arch.is_moe:
        return [1]
    return [e for e in (1, 2, 4, 8, 16, 32, 64, 128, 256) if (dp * cp) % e == 0 and arch.experts % e == 0]


def partial_recompute(
    arch: Architecture, layout: Layout, gpu: GPU, global_batch: int, precision: str = "bf16"
) -> Layout | None:
    """The layout recomputing the fewest whole layers per stage that fits in memory, or None where keeping every
    layer's activations already fits (then "none" is the same layout) or even full recompute does not.

    Activation memory is linear in the share of layers recomputed, so two evaluations place it.
    """
    kept = memory_per_gpu(arch, replace(layout, recompute="none"), gpu, global_batch, precision)
    if kept.fits:
        return None
    full = memory_per_gpu(arch, replace(layout, recompute="full"), gpu, global_batch, precision)
    if not full.fits or kept.total <= full.total:
        return None
    stage_layers = max(1, math.ceil(arch.layers / layout.pp))
    share = (kept.total - kept.usable) / (kept.total - full.total)
    whole = math.ceil(share * stage_layers - 1e-9) / stage_layers
    if whole >= 1.0:
        return None
    return replace(layout, recompute="partial", recompute_fraction=whole)


def search(
    arch: Architecture,
    gpu: GPU,
    gpus: int,
    global_batch: int,
    precision: str,
    fixed: Parallelism | None = None,
    nic_bytes_per_s: float | None = None,
    eff: Efficiency = DEFAULT_EFFICIENCY,
    network: Network | None = None,
    offload: bool = False,
) -> LayoutChoice:
    """The fastest fitting layout for ``gpus`` GPUs; ties go to the layout with more memory headroom."""
    choice = LayoutChoice(best=None)
    fitting: list[Candidate] = []
    given = fixed.offload if fixed is not None else None
    for candidate in layouts(arch, gpu, gpus, global_batch, fixed):
        if offload or given:
            candidate = replace(candidate, offload=True)
        layout = (
            candidate
            if candidate.recompute != "partial"
            else partial_recompute(arch, candidate, gpu, global_batch, precision)
        )
        if layout is None:
            continue
        choice.considered += 1
        mem = memory_per_gpu(arch, layout, gpu, global_batch, precision)
        if not mem.fits:
            if choice.smallest_misfit is None or mem.total < choice.smallest_misfit.memory.total:
                choice.smallest_misfit = Candidate(
                    layout,
                    mem,
                    iteration_time(arch, layout, gpu, global_batch, precision, nic_bytes_per_s, eff, network),
                )
            continue
        fitting.append(
            Candidate(
                layout, mem, iteration_time(arch, layout, gpu, global_batch, precision, nic_bytes_per_s, eff, network)
            )
        )
    if not fitting and not offload and given is None and gpu.generation in HOST_LINK_BYTES_PER_S:
        # only where memory demands it: the optimizer state moves to host memory (ZeRO-Offload)
        offloaded = search(arch, gpu, gpus, global_batch, precision, fixed, nic_bytes_per_s, eff, network, True)
        if offloaded.best is not None:
            offloaded.considered += choice.considered
            offloaded.notes.append("no layout fits with the optimizer state on the GPU: it is kept in host memory")
            return offloaded
    choice.fitted = len(fitting)
    fitting.sort(key=lambda c: (round(c.time.total, 9), c.memory.total))
    if fitting:
        choice.best = fitting[0]
        # the runner-up that differs in more than interleave/micro-batch says more about why the winner won
        choice.runner_up = next(
            (
                c
                for c in fitting[1:]
                if c.layout.tp != choice.best.layout.tp
                or c.layout.pp != choice.best.layout.pp
                or c.layout.recompute != choice.best.layout.recompute
            ),
            None,
        )
    return choice
