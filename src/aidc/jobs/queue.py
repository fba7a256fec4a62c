"""The queue's decisions, pure: which waiting jobs start now, which running ones to preempt, why the rest wait.

Order: priority (higher first), then fair share (the project that used the least recently first), then age.
A job starts when its project's quota allows it and its whole gang fits the cluster's free resources.
A job that does not fit does not block the smaller ones behind it (backfill) — until it has waited longer than
``starve_after_s``: from then on the resources it needs are held back from lower-ordered jobs, so it cannot
be starved by a stream of small ones. A job that does not fit may preempt running jobs of strictly lower
priority, lowest priority (then the most recently started) first, only when that frees enough for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

GPU_WEIGHT = 10.0  # one GPU-second counts as ten CPU-seconds in fair share


class QueuedJob(Protocol):
    """What the queue needs of a job (aidc.store.metadata.records.Job has it all)."""

    @property
    def id(self) -> str: ...
    @property
    def project(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def workers(self) -> int: ...
    @property
    def cpus(self) -> float: ...
    @property
    def gpus(self) -> float: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def finished_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class Resources:
    cpus: float = 0.0
    gpus: float = 0.0

    @classmethod
    def of(cls, job: QueuedJob) -> Resources:
        return cls(job.cpus * job.workers, job.gpus * job.workers)

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpus + other.cpus, self.gpus + other.gpus)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpus - other.cpus, self.gpus - other.gpus)

    def covers(self, need: Resources) -> bool:
        eps = 1e-9
        return self.cpus + eps >= need.cpus and self.gpus + eps >= need.gpus

    def __str__(self) -> str:
        return f"{self.cpus:g} CPU" + (f", {self.gpus:g} GPU" if self.gpus else "")


@dataclass(frozen=True)
class Quota:
    max_gpus: float | None = None
    max_cpus: float | None = None
    max_jobs: int | None = None
    gpu_hours_per_month: float | None = None


@dataclass
class Plan:
    start: list[str] = field(default_factory=list)
    preempt: list[str] = field(default_factory=list)  # running jobs to checkpoint-then-stop and re-queue
    waiting: dict[str, str] = field(default_factory=dict)  # job id → why it is not starting


def usage_seconds(job: QueuedJob, since: datetime, now: datetime) -> float:
    """Weighted resource-seconds ``job`` ran between ``since`` and ``now`` (what fair share compares)."""
    if job.started_at is None:
        return 0.0
    begin, end = max(job.started_at, since), min(job.finished_at or now, now)
    seconds = max(0.0, (end - begin).total_seconds())
    need = Resources.of(job)
    return seconds * (need.cpus + GPU_WEIGHT * need.gpus)


def gpu_hours(job: QueuedJob, since: datetime, now: datetime) -> float:
    if job.started_at is None or not job.gpus:
        return 0.0
    begin, end = max(job.started_at, since), min(job.finished_at or now, now)
    return max(0.0, (end - begin).total_seconds()) / 3600 * Resources.of(job).gpus


def project_usage(jobs: Sequence[QueuedJob], since: datetime, now: datetime) -> dict[str, float]:
    usage: dict[str, float] = {}
    for job in jobs:
        usage[job.project] = usage.get(job.project, 0.0) + usage_seconds(job, since, now)
    return usage


def ordered(pending: Sequence[QueuedJob], usage: dict[str, float]) -> list[QueuedJob]:
    """Priority first, then the project with the least recent usage, then the oldest submission."""
    return sorted(pending, key=lambda j: (-j.priority, usage.get(j.project, 0.0), j.created_at, j.id))


def quota_problem(
    job: QueuedJob, quota: Quota, held: Resources, running_jobs: int, month_gpu_hours: float
) -> str | None:
    """Why ``job`` may not start under its project's quota (given what the project holds now), or None."""
    need = Resources.of(job)
    if quota.max_jobs is not None and running_jobs + 1 > quota.max_jobs:
        return f"quota: project {job.project} already runs {running_jobs} of {quota.max_jobs} jobs"
    if quota.max_cpus is not None and held.cpus + need.cpus > quota.max_cpus + 1e-9:
        return (
            f"quota: project {job.project} holds {held.cpus:g} of {quota.max_cpus:g} CPUs; this job needs {need.cpus:g}"
        )
    if quota.max_gpus is not None and held.gpus + need.gpus > quota.max_gpus + 1e-9:
        return (
            f"quota: project {job.project} holds {held.gpus:g} of {quota.max_gpus:g} GPUs; this job needs {need.gpus:g}"
        )
    if need.gpus and quota.gpu_hours_per_month is not None and month_gpu_hours >= quota.gpu_hours_per_month:
        return (
            f"quota: project {job.project} used {month_gpu_hours:.1f} of its {quota.gpu_hours_per_month:g} "
            "GPU-hours this month"
        )
    return None


def never_fits(job: QueuedJob, quota: Quota) -> str | None:
    """Why ``job`` could never start under ``quota`` whatever else runs (refused at submission), or None."""
    need = Resources.of(job)
    if quota.max_cpus is not None and need.cpus > quota.max_cpus + 1e-9:
        return f"it needs {need.cpus:g} CPUs; project {job.project}'s quota is {quota.max_cpus:g}"
    if quota.max_gpus is not None and need.gpus > quota.max_gpus + 1e-9:
        return f"it needs {need.gpus:g} GPUs; project {job.project}'s quota is {quota.max_gpus:g}"
    if quota.max_jobs == 0:
        return f"project {job.project} may run no jobs (max_jobs 0)"
    return None


def plan(
    pending: Sequence[QueuedJob],
    running: Sequence[QueuedJob],
    *,
    free: Resources,
    releasing: Resources = Resources(),
    quotas: dict[str, Quota],
    usage: dict[str, float],
    month_gpu_hours: dict[str, float],
    now: datetime,
    starve_after_s: float = 600.0,
    placeable: Callable[[QueuedJob], bool] = lambda job: True,
) -> Plan:
    """Decide one scheduling pass.

    ``free``: what the cluster has free for our jobs now; ``releasing``: what jobs already told to stop
    (preempted, cancelled) will give back once their processes exit — a job that fits once they do waits
    for them rather than preempting anyone else. ``placeable``: whether the job's gang can be placed on the
    cluster's nodes at once (the totals may fit while no node has room for one bundle); asked only of a job
    that fits the totals, and a job that cannot be placed takes nothing from the ones behind it.
    """
    result = Plan()
    held: dict[str, Resources] = {}
    count: dict[str, int] = {}
    for job in running:
        held[job.project] = held.get(job.project, Resources()) + Resources.of(job)
        count[job.project] = count.get(job.project, 0) + 1
    victims = sorted(running, key=lambda j: (j.priority, -(j.started_at or now).timestamp()))
    taken: set[str] = set()
    for job in ordered(pending, usage):
        need = Resources.of(job)
        why = quota_problem(
            job,
            quotas.get(job.project, Quota()),
            held.get(job.project, Resources()),
            count.get(job.project, 0),
            month_gpu_hours.get(job.project, 0.0),
        )
        if why:
            result.waiting[job.id] = why
            continue
        if free.covers(need):
            if not placeable(job):
                result.waiting[job.id] = (
                    f"gang of {job.workers} × ({job.cpus:g} CPU, {job.gpus:g} GPU) cannot be "
                    "placed at once on the cluster's nodes"
                )
                continue
            result.start.append(job.id)
            free = free - need
            held[job.project] = held.get(job.project, Resources()) + need
            count[job.project] = count.get(job.project, 0) + 1
            continue
        if (free + releasing).covers(need):
            result.waiting[job.id] = f"waiting for preempted or cancelled jobs to stop ({need} needed)"
            free, releasing = Resources(min(free.cpus, 0.0), min(free.gpus, 0.0)), Resources()
            continue
        chosen, freed = [], Resources()
        for victim in victims:
            if victim.priority >= job.priority or victim.id in taken:
                continue
            chosen.append(victim)
            freed = freed + Resources.of(victim)
            if (free + releasing + freed).covers(need):
                break
        if chosen and (free + releasing + freed).covers(need):
            result.preempt += [v.id for v in chosen]
            taken.update(v.id for v in chosen)
            result.waiting[job.id] = f"preempting {', '.join(v.id for v in chosen)} ({need} needed)"
            free, releasing = Resources(min(free.cpus, 0.0), min(free.gpus, 0.0)), Resources()  # all held for it
            continue
        result.waiting[job.id] = f"gang of {job.workers} worker(s) needs {need}; {free} free"
        if (now - job.created_at) > timedelta(seconds=starve_after_s):
            # waited long enough: what is free now is kept for it, so smaller jobs cannot starve it forever
            free = Resources(min(free.cpus, 0.0), min(free.gpus, 0.0))
            result.waiting[job.id] += f"; waiting over {starve_after_s:g} s, so nothing smaller starts ahead of it"
    return result
