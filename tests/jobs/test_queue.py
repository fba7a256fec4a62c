"""The queue's decisions, pure: ordering, fair share, quotas, backfill without starvation, preemption choice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aidc.jobs.queue import Quota, Resources, gpu_hours, never_fits, ordered, plan, project_usage

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@dataclass
class J:
    id: str
    project: str = "a"
    priority: int = 0
    workers: int = 1
    cpus: float = 1.0
    gpus: float = 0.0
    age_s: float = 0.0
    started_s_ago: float | None = None
    finished_s_ago: float | None = None

    @property
    def created_at(self) -> datetime:
        return NOW - timedelta(seconds=self.age_s)

    @property
    def started_at(self) -> datetime | None:
        return None if self.started_s_ago is None else NOW - timedelta(seconds=self.started_s_ago)

    @property
    def finished_at(self) -> datetime | None:
        return None if self.finished_s_ago is None else NOW - timedelta(seconds=self.finished_s_ago)


def decide(
    pending: list[J],
    running: list[J] = [],
    *,
    cpus: float = 2,
    gpus: float = 0,  # noqa: B006
    quotas: dict[str, Quota] | None = None,
    usage: dict[str, float] | None = None,
    releasing: Resources = Resources(),
    month: dict[str, float] | None = None,
):  # noqa: ANN201
    return plan(
        pending,
        running,
        free=Resources(cpus, gpus),
        releasing=releasing,
        quotas=quotas or {},
        usage=usage or {},
        month_gpu_hours=month or {},
        now=NOW,
        starve_after_s=600,
    )


def test_higher_priority_starts_first_when_there_is_room_for_one() -> None:
    result = decide([J("low", priority=0, cpus=2, age_s=60), J("high", priority=5, cpus=2)])
    assert result.start == ["high"]
    assert "needs 2 CPU" in result.waiting["low"]


def test_equal_priority_goes_to_the_project_that_used_least_recently() -> None:
    jobs = [J("busy-1", project="busy", cpus=2, age_s=100), J("idle-1", project="idle", cpus=2)]
    assert decide(jobs, usage={"busy": 3600.0, "idle": 10.0}).start == ["idle-1"]
    assert decide(jobs, usage={}).start == ["busy-1"]  # no usage either way: the older submission


def test_usage_counts_only_the_window_and_weighs_gpus() -> None:
    recent = [
        J("a1", project="a", cpus=1, started_s_ago=100, finished_s_ago=40),  # 60 CPU-s
        J("b1", project="b", cpus=0, gpus=1, started_s_ago=30),
    ]  # 30 GPU-s, still running
    usage = project_usage(recent, NOW - timedelta(seconds=1000), NOW)
    assert usage["a"] == 60.0 and usage["b"] == 300.0  # a GPU-second weighs ten CPU-seconds
    assert ordered([J("x", project="b"), J("y", project="a", age_s=-5)], usage)[0].id == "y"
    assert (
        gpu_hours(J("g", gpus=2, workers=2, started_s_ago=7200, finished_s_ago=3600), NOW - timedelta(hours=24), NOW)
        == 4.0
    )


def test_quotas_hold_a_project_back_but_not_others() -> None:
    running = [J("r", project="a", cpus=1, started_s_ago=5)]
    result = decide([J("a2", project="a"), J("b1", project="b")], running, cpus=4, quotas={"a": Quota(max_jobs=1)})
    assert result.start == ["b1"]
    assert result.waiting["a2"].startswith("quota: project a already runs 1 of 1 jobs")
    assert (
        "holds 1 of 1 CPUs"
        in decide([J("a2", project="a")], running, cpus=4, quotas={"a": Quota(max_cpus=1)}).waiting["a2"]
    )
    gpu = J("g", project="a", cpus=1, gpus=1)
    assert (
        "GPU-hours"
        in decide([gpu], cpus=4, gpus=4, quotas={"a": Quota(gpu_hours_per_month=10)}, month={"a": 10.5}).waiting["g"]
    )
    assert decide(
        [J("c", project="a")], cpus=4, quotas={"a": Quota(gpu_hours_per_month=10)}, month={"a": 99}
    ).start == ["c"]  # a CPU-only job is not held back by GPU-hours


def test_a_job_that_can_never_fit_its_quota_is_named() -> None:
    assert "needs 8 CPUs" in (never_fits(J("x", cpus=2, workers=4), Quota(max_cpus=4)) or "")
    assert never_fits(J("x", cpus=2, workers=2), Quota(max_cpus=4)) is None


def test_a_gang_that_does_not_fit_lets_smaller_jobs_start_behind_it() -> None:
    big, small = J("big", priority=1, workers=4, cpus=1, age_s=30), J("small", cpus=1)
    result = decide([big, small], cpus=2)
    assert result.start == ["small"]
    assert "gang of 4 worker(s) needs 4 CPU; 2 CPU free" in result.waiting["big"]


def test_a_gang_waiting_too_long_is_no_longer_overtaken() -> None:
    big, small = J("big", priority=1, workers=4, cpus=1, age_s=900), J("small", cpus=1)
    result = decide([big, small], cpus=2)
    assert result.start == []
    assert "nothing smaller starts ahead of it" in result.waiting["big"]


def test_preemption_takes_the_lowest_priority_most_recent_jobs_that_free_enough() -> None:
    running = [
        J("p1-old", priority=1, cpus=1, started_s_ago=500),
        J("p0", priority=0, cpus=1, started_s_ago=300),
        J("p1-new", priority=1, cpus=1, started_s_ago=10),
    ]
    urgent = J("urgent", priority=9, cpus=2)
    result = decide([urgent], running, cpus=0)
    assert result.preempt == ["p0", "p1-new"] and result.start == []
    assert result.waiting["urgent"].startswith("preempting p0, p1-new")


def test_no_preemption_of_equal_priority_or_when_it_would_not_free_enough() -> None:
    running = [J("peer", priority=5, cpus=2, started_s_ago=10)]
    assert decide([J("me", priority=5, cpus=2)], running, cpus=0).preempt == []
    running = [J("low", priority=0, cpus=1, started_s_ago=10)]
    result = decide([J("huge", priority=9, cpus=8)], running, cpus=1)
    assert result.preempt == [] and "needs 8 CPU" in result.waiting["huge"]


def test_jobs_already_stopping_are_waited_for_instead_of_preempting_more() -> None:
    running = [J("low", priority=0, cpus=1, started_s_ago=10)]
    result = decide([J("urgent", priority=9, cpus=2)], running, cpus=0, releasing=Resources(2, 0))
    assert result.preempt == [] and result.start == []
    assert "waiting for preempted or cancelled jobs to stop" in result.waiting["urgent"]


def test_a_gang_the_nodes_cannot_place_takes_nothing_from_the_jobs_behind_it() -> None:
    wide, small = J("wide", priority=5, cpus=3), J("small", cpus=2)
    result = plan(
        [wide, small],
        [],
        free=Resources(4, 0),
        quotas={},
        usage={},
        month_gpu_hours={},
        now=NOW,
        placeable=lambda job: job.id != "wide",
    )
    assert result.start == ["small"] and "cannot be placed at once" in result.waiting["wide"]
