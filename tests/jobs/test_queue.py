"""The queue's decisions, pure: ordering, fair share, quotas, backfill without starvation, preemption choice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

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


def test_jobs_that_never_ran_or_ran_before_the_window_count_nothing_toward_fair_share_or_gpu_hours() -> None:
    since = NOW - timedelta(hours=1)
    queued = J("q", cpus=4, gpus=2)  # never started
    before = J("old", cpus=4, gpus=2, started_s_ago=7200, finished_s_ago=5400)  # finished before the window
    assert project_usage([queued, before], since, NOW) == {"a": 0.0}
    assert gpu_hours(queued, since, NOW) == 0.0 and gpu_hours(before, since, NOW) == 0.0
    assert gpu_hours(J("cpu", cpus=8, started_s_ago=600), since, NOW) == 0.0  # a CPU job holds no GPU-hours


def test_a_gang_that_waits_is_told_the_gpus_it_needs_and_the_gpus_free() -> None:
    waiting = decide([J("g", workers=2, cpus=1, gpus=2)], cpus=8, gpus=3).waiting["g"]
    assert waiting == "gang of 2 worker(s) needs 2 CPU, 4 GPU; 8 CPU, 3 GPU free"
    assert decide([J("c", workers=2, cpus=2)], cpus=3).waiting["c"] == "gang of 2 worker(s) needs 4 CPU; 3 CPU free"


def test_a_quota_is_a_ceiling_a_job_may_reach_but_not_pass() -> None:
    running = [J("r1", cpus=1, gpus=1, started_s_ago=60), J("r2", cpus=1, gpus=1, started_s_ago=30)]  # holds 2+2
    cpus = {"a": Quota(max_cpus=4)}
    assert decide([J("fits", cpus=2)], running, cpus=8, quotas=cpus).start == ["fits"]  # 2 held + 2 = 4 of 4
    over = decide([J("over", cpus=3)], running, cpus=8, quotas=cpus).waiting["over"]
    assert over == "quota: project a holds 2 of 4 CPUs; this job needs 3"
    gpus = {"a": Quota(max_gpus=3)}
    assert decide([J("fits", cpus=0, gpus=1)], running, cpus=8, gpus=8, quotas=gpus).start == ["fits"]
    over = decide([J("over", cpus=0, gpus=2)], running, cpus=8, gpus=8, quotas=gpus).waiting["over"]
    assert over == "quota: project a holds 2 of 3 GPUs; this job needs 2"  # one GPU past the ceiling
    # what a project holds is its own: another project's running jobs do not count against it
    theirs = [J("b1", project="b", gpus=3, started_s_ago=60)]
    assert decide([J("mine", cpus=0, gpus=3)], theirs, cpus=8, gpus=8, quotas=gpus).start == ["mine"]


def test_a_project_may_run_as_many_jobs_as_its_quota_and_no_more() -> None:
    running = [J("r1", started_s_ago=60), J("r2", started_s_ago=30), J("b1", project="b", started_s_ago=10)]
    assert decide([J("third")], running, cpus=8, quotas={"a": Quota(max_jobs=3)}).start == ["third"]
    waiting = decide([J("third")], running, cpus=8, quotas={"a": Quota(max_jobs=2)}).waiting["third"]
    assert waiting == "quota: project a already runs 2 of 2 jobs"


def test_gpu_hours_used_up_exactly_hold_back_gpu_jobs_and_a_project_without_usage_may_start() -> None:
    quota = {"a": Quota(gpu_hours_per_month=10)}
    used_up = decide([J("g", cpus=0, gpus=1)], gpus=1, quotas=quota, month={"a": 10.0}).waiting["g"]
    assert used_up == "quota: project a used 10.0 of its 10 GPU-hours this month"
    assert decide([J("g", cpus=0, gpus=1)], gpus=1, quotas=quota, month={"a": 9.9}).start == ["g"]
    assert decide([J("g", cpus=0, gpus=1)], gpus=1, quotas=quota, month={}).start == ["g"]  # nothing used yet


def test_started_jobs_take_their_gpus_from_what_is_free_for_the_next() -> None:
    jobs = [J("g1", cpus=0, gpus=2), J("g2", cpus=0, gpus=2, age_s=-1)]
    result = decide(jobs, cpus=8, gpus=3)
    assert (
        result.start == ["g1"] and result.waiting["g2"] == "gang of 1 worker(s) needs 0 CPU, 2 GPU; 8 CPU, 1 GPU free"
    )


def test_a_gpu_job_running_part_of_an_hour_counts_that_part() -> None:
    since = NOW - timedelta(hours=24)
    assert gpu_hours(J("g", gpus=4, started_s_ago=900), since, NOW) == 1.0  # 4 GPUs × 15 min
    assert gpu_hours(J("g", gpus=4, started_s_ago=1), since, NOW) == pytest.approx(4 / 3600)


def test_a_job_waiting_for_stopping_jobs_keeps_what_is_free_from_the_jobs_behind_it() -> None:
    running = [J("low", priority=0, cpus=1, gpus=1, started_s_ago=10)]
    urgent = J("urgent", priority=9, cpus=3, gpus=2)
    behind = [J("small-cpu", cpus=1, age_s=-1), J("small-gpu", cpus=0, gpus=1, age_s=-2)]
    result = decide([urgent, *behind], running, cpus=1, gpus=1, releasing=Resources(2, 1))
    assert result.start == [] and result.preempt == []
    assert result.waiting["urgent"] == "waiting for preempted or cancelled jobs to stop (3 CPU, 2 GPU needed)"
    assert set(result.waiting) == {"urgent", "small-cpu", "small-gpu"}  # each job behind is told why it waits


def test_a_job_that_preempts_keeps_what_is_free_from_the_jobs_behind_it() -> None:
    running = [J("low", priority=0, cpus=2, gpus=1, started_s_ago=10)]
    behind = [J("small-cpu", cpus=1, age_s=-1), J("small-gpu", cpus=0, gpus=1, age_s=-2)]
    result = decide([J("urgent", priority=9, cpus=3, gpus=2), *behind], running, cpus=1, gpus=1)
    assert result.preempt == ["low"] and result.start == []
    assert set(result.waiting) == {"urgent", "small-cpu", "small-gpu"}


def test_two_urgent_jobs_preempt_different_victims_and_what_is_stopping_counts_toward_each() -> None:
    running = [J("low-a", cpus=1, started_s_ago=20), J("low-b", cpus=1, started_s_ago=10)]
    first, second = J("urgent-1", priority=9, cpus=1), J("urgent-2", priority=9, cpus=1, age_s=-1)
    result = decide([first, second], running, cpus=0)
    assert result.preempt == ["low-b", "low-a"]  # the most recently started first; never one victim twice
    assert result.waiting == {
        "urgent-1": "preempting low-b (1 CPU needed)",
        "urgent-2": "preempting low-a (1 CPU needed)",
    }
    # one CPU already on its way back and one victim's CPU make the two a job needs
    result = decide([J("urgent", priority=9, cpus=2)], running[:1], cpus=0, releasing=Resources(1, 0))
    assert result.preempt == ["low-a"]


def test_jobs_started_in_one_pass_count_toward_their_projects_quota_in_that_pass() -> None:
    two = [J("a1", cpus=2), J("a2", cpus=2, age_s=-1)]
    result = decide(two, cpus=8, quotas={"a": Quota(max_cpus=3)})
    assert result.start == ["a1"] and result.waiting["a2"] == "quota: project a holds 2 of 3 CPUs; this job needs 2"
    result = decide(two, cpus=8, quotas={"a": Quota(max_jobs=1)})
    assert result.start == ["a1"] and result.waiting["a2"] == "quota: project a already runs 1 of 1 jobs"
    small_budget = {"a": Quota(gpu_hours_per_month=0.5)}  # no usage recorded yet: nothing used
    assert decide([J("g", cpus=0, gpus=1)], gpus=1, quotas=small_budget).start == ["g"]


def test_a_starving_gang_holds_cpus_and_gpus_and_only_once_it_has_waited_longer_than_the_bound() -> None:
    big = J("big", priority=1, workers=4, cpus=1, gpus=1, age_s=601)  # starve_after_s is 600 in decide()
    behind = [J("small-cpu", cpus=1), J("small-gpu", cpus=0, gpus=1, age_s=-1), J("last", cpus=1, age_s=-2)]
    result = decide([big, *behind], cpus=2, gpus=2)
    assert result.start == []
    assert result.waiting["big"] == (
        "gang of 4 worker(s) needs 4 CPU, 4 GPU; 2 CPU, 2 GPU free; "
        "waiting over 600 s, so nothing smaller starts ahead of it"
    )
    at_the_bound = J("big", priority=1, workers=4, cpus=1, gpus=1, age_s=600)
    assert decide([at_the_bound, *behind], cpus=2, gpus=2).start == ["small-cpu", "small-gpu", "last"]


def test_fair_share_adds_up_every_job_of_a_project() -> None:
    recent = [
        J("a1", project="a", started_s_ago=100, finished_s_ago=40),
        J("a2", project="a", started_s_ago=100, finished_s_ago=40),
        J("b1", project="b", started_s_ago=100),
    ]
    usage = project_usage(recent, NOW - timedelta(seconds=1000), NOW)
    assert usage == {"a": 120.0, "b": 100.0}
    # a project with no usage on record goes first, before one that used a little
    assert ordered([J("x", project="b"), J("y", project="new", age_s=-5)], {"b": 0.5})[0].id == "y"


def test_a_job_of_exactly_its_projects_cpu_quota_is_accepted_and_one_more_is_refused() -> None:
    assert never_fits(J("exact", cpus=4), Quota(max_cpus=4)) is None
    assert never_fits(J("more", cpus=5), Quota(max_cpus=4)) == "it needs 5 CPUs; project a's quota is 4"


def test_stopping_jobs_and_one_victim_together_free_enough_and_no_more_victims_are_taken() -> None:
    running = [J("low-a", cpus=1, started_s_ago=20), J("low-b", cpus=1, started_s_ago=10)]
    result = decide([J("urgent", priority=9, cpus=2)], running, cpus=0, releasing=Resources(1, 0))
    assert result.preempt == ["low-b"]


def test_three_jobs_of_a_project_in_one_pass_stop_at_its_quota() -> None:
    three = [J("a1"), J("a2", age_s=-1), J("a3", age_s=-2)]
    assert decide(three, cpus=8, quotas={"a": Quota(max_cpus=2)}).start == ["a1", "a2"]
    assert decide(three, cpus=8, quotas={"a": Quota(max_jobs=2)}).start == ["a1", "a2"]


def test_a_job_of_exactly_its_projects_gpu_quota_is_accepted_and_one_gpu_more_is_refused() -> None:
    assert never_fits(J("exact", cpus=1, gpus=2, workers=2), Quota(max_gpus=4)) is None
    assert never_fits(J("more", cpus=1, gpus=5), Quota(max_gpus=4)) == "it needs 5 GPUs; project a's quota is 4"
