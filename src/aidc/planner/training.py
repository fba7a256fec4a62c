"""One training job: compute, the chosen layout, iteration time, days, GPU-hours, resilience, or why it cannot run."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from aidc.planner.architecture import Architecture
from aidc.planner.catalog import GPU, Catalog
from aidc.planner.fabric import Network, fat_tree, leaf_downlinks
from aidc.planner.iteration import DEFAULT_EFFICIENCY
from aidc.planner.layout import LayoutChoice, search
from aidc.planner.storage import (
    LLAMA3_GPUS,
    LLAMA3_RADIX,
    Resilience,
    checkpoint_stall,
    failures_per_hour,
    resilience,
)
from aidc.planner.uncertainty import Band, iteration_band
from aidc.planner.workload import FacilityConstraints, Parallelism, Stage, TrainingJob

DEFAULT_BATCH_TOKENS = 4_000_000


@dataclass(frozen=True)
class StagePlan:
    """One stretch of the run at its own sequence length and batch, with the layout searched for it."""

    name: str
    tokens: float
    seq_len: int
    global_batch: int
    layout: str | None  # the layout's label, None where nothing fits
    iteration_s: float
    iterations: float

    @property
    def hours(self) -> float:
        return self.iteration_s * self.iterations / 3600

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "hours": self.hours}


@dataclass
class TrainingPlan:
    name: str
    gpu: GPU
    arch: Architecture
    gpus: int
    global_batch: int
    flops_6nd: float
    model_flops: float
    choice: LayoutChoice
    iteration_s: float
    iterations: float
    mfu: float
    mfu_source: str  # "derived" from the iteration model, or "assumed" from the workload
    resilience: Resilience
    train_hours: float  # at 100% goodput
    wall_days: float
    gpu_hours: float
    feasible: bool = True
    binding: str | None = None
    alternative: str | None = None
    band: Band | None = None  # the spread of iteration time (so days, GPU-hours, cost) under unstated assumptions
    stages: list[StagePlan] | None = None  # ramp-up / long-context stages (the main stage is the plan's own)


def global_batch_of(job: TrainingJob, arch: Architecture) -> int:
    if job.global_batch:
        return job.global_batch
    return max(1, round((job.global_batch_tokens or DEFAULT_BATCH_TOKENS) / arch.seq_len))


def plan_at(job: TrainingJob, arch: Architecture, gpu: GPU, gpus: int, facility: FacilityConstraints) -> TrainingPlan:
    """The plan for a fixed GPU count."""
    batch = global_batch_of(job, arch)
    fixed = job.parallelism if isinstance(job.parallelism, Parallelism) else None
    network = network_of(facility)
    choice = search(arch, gpu, gpus, batch, job.precision, fixed, network=network)
    peak = gpu.peak(job.precision)
    tokens_per_iter = batch * arch.seq_len
    main_tokens = job.tokens - sum(stage.tokens for stage in job.stages)
    iterations = main_tokens / tokens_per_iter
    model_flops = main_tokens * arch.model_flops_per_token()
    if job.mfu is not None:
        mfu, source = job.mfu, "assumed"
        iteration_s = model_flops / iterations / (gpus * peak * mfu)
    elif choice.best is not None:
        iteration_s = choice.best.time.total
        mfu, source = choice.best.time.mfu(gpus, peak), "derived"
    else:
        iteration_s, mfu, source = math.inf, 0.0, "derived"
    train_h = iterations * iteration_s / 3600
    stages = [_stage(job, stage, i, arch, gpu, gpus, tokens_per_iter, network) for i, stage in enumerate(job.stages)]
    if stages:
        train_h += sum(st.hours for st in stages)
        iterations += sum(st.iterations for st in stages)
        model_flops += sum(st.tokens * replace(arch, seq_len=st.seq_len).model_flops_per_token() for st in stages)
        if job.mfu is None and math.isfinite(train_h):
            # the whole run's utilisation: ramp-up and long-context stages run at their own
            mfu = model_flops / (gpus * peak * train_h * 3600)
    stall, stall_source = checkpoint_stall(
        arch.params, gpus, job.checkpoint_stall_s, facility.storage_write_gbps, job.async_checkpoint
    )
    res = resilience(
        arch.params,
        job.tokens,
        job.dataset_bytes_per_token,
        gpus,
        facility.gpu_mtbf_hours or job_failures(gpu, gpus, facility),
        stall,
        job.restart_minutes,
        train_h,
        job.goodput,
        job.async_checkpoint and job.checkpoint_stall_s is None,
        facility.storage_write_gbps * 1e9 if facility.storage_write_gbps else None,
    )
    res = replace(res, stall_source=stall_source)
    wall_h = train_h / res.goodput
    plan = TrainingPlan(
        job.name,
        gpu,
        arch,
        gpus,
        batch,
        6 * arch.active_params * job.tokens,
        model_flops,
        choice,
        iteration_s,
        iterations,
        mfu,
        source,
        res,
        train_h,
        wall_h / 24,
        wall_h * gpus,
        stages=stages or None,
    )
    if choice.best is not None and job.mfu is None:
        plan.band = iteration_band(arch, choice.best.layout, gpu, batch, job.precision, network=network)
    if choice.best is None:
        plan.feasible = False
        plan.binding = _memory_binding(choice, gpus)
    elif any(st.layout is None for st in stages):
        st = next(st for st in stages if st.layout is None)
        plan.feasible = False
        plan.binding = (
            f"memory: no layout of {gpus} GPUs fits stage {st.name!r} ({st.seq_len}-token sequences, "
            f"batch {st.global_batch})"
        )
    return plan


def _stage(
    job: TrainingJob,
    stage: Stage,
    index: int,
    arch: Architecture,
    gpu: GPU,
    gpus: int,
    main_batch_tokens: float,
    network: Network,
) -> StagePlan:
    """Price one stage: its own sequence length and batch, the layout searched afresh at the same GPU count.

    A fixed parallelism describes the main stage; it carries to stages at the model's sequence length only (a
    long-context stage needs its own: Llama 3 ran 131K-token sequences with 16-way context parallelism, Table 4)."""
    seq = stage.seq_len or arch.seq_len
    staged = replace(arch, seq_len=seq)
    batch = stage.global_batch or max(1, round((stage.global_batch_tokens or main_batch_tokens) / seq))
    fixed = job.parallelism if isinstance(job.parallelism, Parallelism) and seq == arch.seq_len else None
    iterations = stage.tokens / (batch * seq)
    name = stage.name or f"stage {index + 1}"
    if job.mfu is not None:
        flops = stage.tokens * staged.model_flops_per_token()
        seconds = flops / iterations / (gpus * gpu.peak(job.precision) * job.mfu)
        return StagePlan(name, stage.tokens, seq, batch, "(MFU assumed)", seconds, iterations)
    choice = search(staged, gpu, gpus, batch, job.precision, fixed, network=network)
    if choice.best is None:
        return StagePlan(name, stage.tokens, seq, batch, None, math.inf, iterations)
    return StagePlan(name, stage.tokens, seq, batch, choice.best.layout.label(), choice.best.time.total, iterations)


def job_failures(gpu: GPU, gpus: int, facility: FacilityConstraints) -> dict[str, float]:
    """The job's interruptions per hour by component: its GPUs, hosts and the switches of its fabric."""
    nic = facility.nic_gbps or gpu.nic_gbps
    switches = fat_tree(gpus, facility.switch_radix, facility.oversubscription, nic).switches
    reference = fat_tree(LLAMA3_GPUS, LLAMA3_RADIX, 1.0, nic).switches
    return failures_per_hour(gpus, gpu.node.gpus, switches, reference)


def network_of(facility: FacilityConstraints) -> Network:
    """The scale-out network a job's collectives see: the NIC (the GPU's own unless the facility overrides it),
    the leaf's down-ports (radix·o/(1+o)) and o:1 uplinks, and whether the switches reduce in the network."""
    nic = facility.nic_gbps * 1e9 / 8 if facility.nic_gbps else None
    o = facility.oversubscription
    return Network(nic, o, leaf_downlinks(facility.switch_radix, o), facility.sharp)


def _memory_binding(choice: LayoutChoice, gpus: int) -> str:
    if choice.considered == 0:
        return (
            f"layout: no TP×PP×CP×DP split of {gpus} GPUs matches the model's heads, layers and global batch "
            "(or the fixed parallelism)"
        )
    m = choice.smallest_misfit
    assert m is not None
    return (
        f"memory: no layout fits on {gpus} GPUs; the leanest ({m.layout.label()}) needs "
        f"{m.memory.total / 1e9:.1f} GB per GPU, {m.memory.usable / 1e9:.1f} GB usable"
    )


def gpu_count_grid(node: int, start: int, stop: int) -> list[int]:
    """Candidate sizes: node multiples on a 1, 1.5, 2, 3, 4, 6, … grid (how clusters are bought and carved)."""
    out, base = [], node
    while base <= stop:
        for n in (base, base * 3 // 2):
            if start <= n <= stop and n % node == 0:
                out.append(n)
        base *= 2
    return sorted(set(out))


def plan_training(job: TrainingJob, catalog: Catalog, facility: FacilityConstraints) -> TrainingPlan:
    gpu = catalog.gpu(job.gpu)
    arch = job.model.architecture()
    if job.gpus is not None:
        plan = plan_at(job, arch, gpu, job.gpus, facility)
        if not plan.feasible:
            plan.alternative = _more_memory(job, arch, gpu, catalog, facility)
        return plan
    assert job.deadline_days is not None
    limit = job.max_gpus or 1_000_000
    rate = gpu.achievable(job.precision) * DEFAULT_EFFICIENCY.matmul_efficiency
    ideal_hours = job.tokens * arch.model_flops_per_token() / rate / 3600
    start = max(gpu.node.gpus, int(ideal_hours / (job.deadline_days * 24)))
    fastest: TrainingPlan | None = None
    worse = 0
    for n in gpu_count_grid(gpu.node.gpus, start // 2, max(limit, start) * 64):
        plan = plan_at(job, arch, gpu, n, facility)
        if not plan.feasible:
            continue
        if plan.wall_days <= job.deadline_days:
            return plan if n <= limit else _over_limit(job, arch, gpu, facility, limit, plan)
        if fastest is None or plan.wall_days < fastest.wall_days:
            fastest, worse = plan, 0
        else:
            worse += 1
            if worse >= 3:  # the global batch cannot keep more GPUs busy: more only adds bubble and comms
                break
    if fastest is None:
        plan = plan_at(job, arch, gpu, min(limit, max(start, gpu.node.gpus)), facility)
        plan.alternative = _more_memory(job, arch, gpu, catalog, facility)
        return plan
    at_limit = _best_within(job, arch, gpu, facility, limit) or fastest
    at_limit.feasible = False
    at_limit.binding = (
        f"deadline: {at_limit.gpus} GPUs take {at_limit.wall_days:.1f} days (> {job.deadline_days:g}); "
        f"no count up to {fastest.gpus if fastest.gpus > limit else limit} GPUs meets it with a global "
        f"batch of {fastest.global_batch} sequences"
    )
    at_limit.alternative = (
        f"extend the deadline to {fastest.wall_days:.1f} days on {fastest.gpus} GPUs, or reduce tokens"
    )
    return at_limit


def _over_limit(
    job: TrainingJob, arch: Architecture, gpu: GPU, facility: FacilityConstraints, limit: int, enough: TrainingPlan
) -> TrainingPlan:
    at_limit = _best_within(job, arch, gpu, facility, limit)
    plan = at_limit or enough
    plan.feasible = False
    days = f"{at_limit.wall_days:.1f} days" if at_limit else "no fitting layout"
    plan.binding = (
        f"deadline: {job.deadline_days:g} days needs {enough.gpus} GPUs, above max_gpus {limit} "
        f"(at {plan.gpus} GPUs: {days})"
    )
    plan.alternative = f"raise max_gpus to {enough.gpus}" + (
        f", or extend the deadline to {at_limit.wall_days:.1f} days" if at_limit else ""
    )
    return plan


def _best_within(
    job: TrainingJob, arch: Architecture, gpu: GPU, facility: FacilityConstraints, limit: int
) -> TrainingPlan | None:
    grid = [n for n in gpu_count_grid(gpu.node.gpus, gpu.node.gpus, limit)] or [limit]
    for n in reversed(grid):
        plan = plan_at(job, arch, gpu, n, facility)
        if plan.feasible:
            return plan
    return None


def _more_memory(
    job: TrainingJob, arch: Architecture, gpu: GPU, catalog: Catalog, facility: FacilityConstraints
) -> str:
    """Nearest fix for a memory misfit: the same GPU at a larger count, else a GPU with more HBM."""
    base = job.gpus or job.max_gpus or gpu.node.gpus
    for n in gpu_count_grid(gpu.node.gpus, base + 1, base * 64):
        if plan_at(job, arch, gpu, n, facility).feasible:
            return f"use {n} {gpu.name} GPUs (more pipeline/ZeRO sharding), or a GPU with more HBM"
    for other in sorted(catalog.gpus.values(), key=lambda g: g.hbm_gb):
        if other.hbm_gb > gpu.hbm_gb and plan_at(job, arch, other, base, facility).feasible:
            return f"use {other.name} ({other.hbm_gb:g} GB) at {base} GPUs"
    return "reduce the model, sequence length or micro-batch; no catalog GPU fits it at this scale"
