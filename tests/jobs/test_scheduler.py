"""The scheduler's passes over a real store (SQLite) and the real audit chain.

The cluster and the job processes are stand-ins (a mock where no real peer can run cheaply): a Ray cluster
of several nodes with GPUs cannot run on this 2-CPU host, and a real training job takes a minute. The
stand-in processes record the signals a real job gets; the live-server tests run real job processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.api.conftest import JOB_SPEC

from aidc.errors import Unauthenticated
from aidc.jobs.queue import Resources
from aidc.jobs.scheduler import MAX_ATTEMPTS, SCHEDULER, Scheduler
from aidc.platform import Platform
from aidc.security.roles import Access, local_access
from aidc.settings import Settings


@dataclass
class Nodes:
    """A cluster of nodes with (cpus, gpus) each; a gang places only if every bundle fits a node."""

    sizes: list[tuple[float, float]]
    address: str = ""

    def capacity(self) -> Resources:
        return Resources(sum(c for c, _ in self.sizes), sum(g for _, g in self.sizes))

    def available(self) -> Resources:
        return self.capacity()  # what jobs take is booked by the scheduler itself

    def place_gang(self, bundles: list[dict[str, float]], timeout_s: float) -> bool:
        free = [list(n) for n in self.sizes]
        for b in bundles:
            node = next((n for n in free if n[0] >= b["CPU"] and n[1] >= b["GPU"]), None)
            if node is None:
                return False
            node[0] -= b["CPU"]
            node[1] -= b["GPU"]
        return True


@dataclass
class Processes:
    """Job processes that live until the test ends them; ``stop`` records the signal a real one would get."""

    live: dict[str, str] = field(default_factory=dict)  # worker → job id
    started: list[tuple[str, bool]] = field(default_factory=list)  # (job id, resume)
    signals: list[tuple[str, str]] = field(default_factory=list)  # (job id, "stop" | "kill")

    def start(self, job_id: str, *, resume: bool) -> str:
        worker = f"host:{len(self.started) + 100}:0"
        self.live[worker] = job_id
        self.started.append((job_id, resume))
        return worker

    def alive(self, worker: str) -> bool:
        return worker in self.live

    def stop(self, worker: str, *, force: bool = False) -> None:
        if worker in self.live:
            self.signals.append((self.live[worker], "kill" if force else "stop"))

    def exit(self, job_id: str) -> None:
        self.live = {w: j for w, j in self.live.items() if j != job_id}


@pytest.fixture()
def platform(tmp_path: Path) -> Iterator[Platform]:
    p = Platform(Settings(home=tmp_path / "home"))
    yield p
    p.close()


def submit(platform: Platform, key: str, **options: object) -> str:
    job, _ = platform.jobs.submit(
        local_access(),
        spec_text=JOB_SPEC,
        path_name="data.yaml",
        project="default",
        idempotency_key=key,
        **options,
    )  # type: ignore[arg-type]
    return str(job["id"])


def state(platform: Platform, job_id: str) -> str:
    return platform.metadata.get_job(job_id).state


def scheduler(platform: Platform, nodes: Nodes, procs: Processes) -> Scheduler:
    return Scheduler(
        platform.metadata,
        platform.security,
        nodes,
        procs,
        stop_checkpoint_s=platform.settings.stop_checkpoint_s,
        starve_after_s=3600,
    )


def test_a_job_starts_when_it_fits_and_the_next_waits_for_room(platform: Platform) -> None:
    procs = Processes()
    s = scheduler(platform, Nodes([(2, 0)]), procs)
    first, second = submit(platform, "a", cpus=2), submit(platform, "b", cpus=2)
    s.tick()
    assert (state(platform, first), state(platform, second)) == ("running", "queued")
    assert "needs 2 CPU; 0 CPU free" in (platform.metadata.get_job(second).reason or "")
    platform.metadata.transition_job(first, ("running",), "succeeded")  # what its process records as it ends
    procs.exit(first)
    s.tick()
    assert state(platform, second) == "running" and procs.started == [(first, False), (second, False)]
    actions = [e.action for e in platform.security.audit_list(action="job.", limit=50)]
    assert actions.count("job.start") == 2 and actions.count("job.submit") == 2


def test_a_gang_is_placed_whole_or_stays_queued_without_blocking_smaller_jobs(platform: Platform) -> None:
    procs = Processes()
    s = scheduler(platform, Nodes([(2, 0), (2, 0)]), procs)  # 4 CPUs, but no node has 3
    wide = submit(platform, "wide", workers=1, cpus=3, priority=5)
    huge = submit(platform, "huge", workers=8, cpus=1, priority=5)
    small = submit(platform, "small", workers=2, cpus=1)
    s.tick()
    assert (state(platform, wide), state(platform, huge), state(platform, small)) == ("queued", "queued", "running")
    assert "cannot be placed at once" in (platform.metadata.get_job(wide).reason or "")
    assert "gang of 8 worker(s) needs 8 CPU" in (platform.metadata.get_job(huge).reason or "")
    assert [j for j, _ in procs.started] == [small]


def test_preemption_stops_the_lower_priority_job_then_resumes_it(platform: Platform) -> None:
    procs = Processes()
    s = scheduler(platform, Nodes([(2, 0)]), procs)
    low = submit(platform, "low", cpus=2, priority=0)
    s.tick()
    platform.metadata.transition_job(low, ("running",), None, run_id="run-low")  # its process names its run
    high = submit(platform, "high", cpus=2, priority=9)
    s.tick()
    assert state(platform, low) == "preempted" and procs.signals == [(low, "stop")]
    assert platform.metadata.get_job(low).reason == f"preempted by higher-priority job {high}"
    assert state(platform, high) == "queued"  # the low job's process still holds the CPUs
    s.tick()
    assert "waiting for preempted or cancelled jobs to stop" in (platform.metadata.get_job(high).reason or "")
    procs.exit(low)  # it stopped (the runner recorded its run as interrupted, checkpoints kept)
    s.tick()
    assert state(platform, high) == "running" and state(platform, low) == "preempted"
    platform.metadata.transition_job(high, ("running",), "succeeded")
    procs.exit(high)
    s.tick()
    again = platform.metadata.get_job(low)
    assert again.state == "running" and again.attempts == 2 and again.run_id == "run-low"
    assert procs.started[-1] == (low, True)  # started again to resume its run from the last checkpoint
    assert [e.action for e in platform.security.audit_list(action="job.preempt", limit=5)] == ["job.preempt"]


def test_cancel_stops_a_running_job_and_a_queued_one_never_starts(platform: Platform) -> None:
    procs = Processes()
    s = scheduler(platform, Nodes([(1, 0)]), procs)
    running, waiting = submit(platform, "r"), submit(platform, "w")
    s.tick()
    local = local_access()
    assert platform.jobs.cancel(local, running)["state"] == "cancelled"
    assert platform.jobs.cancel(local, waiting)["state"] == "cancelled"
    assert platform.jobs.cancel(local, waiting)["state"] == "cancelled"  # again: no error, no change
    s.tick()
    assert procs.signals == [(running, "stop")] and [j for j, _ in procs.started] == [running]
    assert platform.metadata.transition_job(running, ("running",), "succeeded") is None  # finishing late loses


def test_after_a_restart_live_jobs_are_reattached_and_lost_ones_requeued_to_resume(platform: Platform) -> None:
    procs = Processes()
    s = scheduler(platform, Nodes([(2, 0)]), procs)
    alive, lost = submit(platform, "alive"), submit(platform, "lost")
    s.tick()
    platform.metadata.transition_job(lost, ("running",), None, run_id="run-lost")
    procs.exit(lost)  # the host lost this one with the server
    restarted = scheduler(platform, Nodes([(2, 0)]), procs)  # a new server process on the same store
    restarted.recover()
    assert state(platform, alive) == "running"
    requeued = platform.metadata.get_job(lost)
    assert requeued.state == "queued" and requeued.last_error["code"] == "server_restart"
    restarted.tick()
    assert state(platform, lost) == "running" and procs.started[-1] == (lost, True)
    actions = {e.action for e in platform.security.audit_list(action="job.re", limit=10)}
    assert actions == {"job.reattach", "job.requeue"}


def test_a_job_whose_process_keeps_dying_is_failed_after_a_few_attempts(platform: Platform) -> None:
    procs = Processes()
    s = scheduler(platform, Nodes([(1, 0)]), procs)
    doomed = submit(platform, "doomed")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        s.tick()
        assert platform.metadata.get_job(doomed).attempts == attempt
        procs.exit(doomed)
        s.tick()
    job = platform.metadata.get_job(doomed)
    assert job.state == "failed" and job.last_error["code"] == "worker_died"


def test_a_quota_holds_jobs_back_and_one_that_can_never_fit_is_refused(platform: Platform) -> None:
    from aidc.errors import Conflict

    procs = Processes()
    s = scheduler(platform, Nodes([(4, 0)]), procs)
    local = local_access()
    platform.jobs.set_quota(local, "default", max_jobs=1, max_cpus=2)
    first, second = submit(platform, "q1"), submit(platform, "q2")
    s.tick()
    assert (state(platform, first), state(platform, second)) == ("running", "queued")
    assert (platform.metadata.get_job(second).reason or "").startswith("quota: project default already runs 1 of 1")
    with pytest.raises(Conflict, match="can never start"):
        submit(platform, "q3", cpus=3)
    [quota] = [q for q in platform.jobs.quotas(local) if q["project"] == "default"]
    assert (quota["running_jobs"], quota["cpus_in_use"], quota["max_jobs"]) == (1, 1.0, 1)


def test_an_invalid_pipeline_is_recorded_as_failed_at_once_and_never_starts(platform: Platform) -> None:
    procs = Processes()
    job, created = platform.jobs.submit(
        local_access(), spec_text="pipeline: x\nstages: 3\n", path_name="broken.yaml", project="default"
    )
    assert created and job["state"] == "failed" and job["last_error"]["code"] == "invalid_spec"
    assert job["last_error"]["message"].startswith("broken.yaml:2:")  # the user's file name, not a temp path
    scheduler(platform, Nodes([(2, 0)]), procs).tick()
    assert procs.started == []


@dataclass
class CredentialedProcesses(Processes):
    """Stand-in job processes that keep the credential each start hands them (a real one reads it on stdin)."""

    credentials: dict[str, str] = field(default_factory=dict)  # job id → the token its last start got

    def start(self, job_id: str, *, resume: bool, credential: str | None = None) -> str:  # type: ignore[override]
        assert credential is not None
        self.credentials[job_id] = credential
        return super().start(job_id, resume=resume)


def credentialed(platform: Platform, procs: Processes, **options: float) -> Scheduler:
    """A scheduler on one 2-CPU node that starts each job on a credential of its submitter's."""
    return Scheduler(
        platform.metadata,
        platform.security,
        Nodes([(2, 0)]),
        procs,
        stop_checkpoint_s=platform.settings.stop_checkpoint_s,
        credentials=True,
        **options,
    )


def researcher(platform: Platform, name: str, project: str = "default") -> Access:
    platform.security.create_principal(local_access(), name)
    platform.security.grant(local_access(), name, "researcher", project)
    return Access(principal=name, kind="user", bindings=frozenset({("researcher", project)}))


def test_each_start_gets_a_credential_of_its_submitter_revoked_when_its_process_ends(platform: Platform) -> None:
    procs = CredentialedProcesses()
    s = credentialed(platform, procs)
    ada = researcher(platform, "ada")
    job, _ = platform.jobs.submit(ada, spec_text=JOB_SPEC, path_name="d.yaml", project="default", idempotency_key="k")
    s.tick()
    token = procs.credentials[job["id"]]
    access = platform.security.authenticate(token, "test")
    assert (access.principal, access.scopes) == ("ada", ("jobs:read",))
    assert platform.security.job_of_token(access.token_id) == job["id"]
    s.tick()
    platform.security.authenticate(token, "test")  # still running: still valid
    platform.metadata.transition_job(job["id"], ("running",), "succeeded")
    procs.exit(job["id"])
    s.tick()
    platform.security.verified.forget(token_id=access.token_id)
    with pytest.raises(Unauthenticated):
        platform.security.authenticate(token, "test")
    revoked = [e for e in platform.security.audit_list(action="token.revoke", limit=10)]
    assert [e.target for e in revoked] == [f"token:{access.token_id}"]


def test_a_long_running_jobs_credential_is_renewed_before_it_expires(platform: Platform) -> None:
    """A training run of weeks outlives its credential's seven days: the scheduler renews the credential of a job
    still running once it has less than a day left, audited; its process keeps reaching its stores."""
    procs = CredentialedProcesses()
    s = credentialed(platform, procs, renew_every_s=0)  # look at every pass (a server looks once an hour)
    ada = researcher(platform, "ada")
    job, _ = platform.jobs.submit(ada, spec_text=JOB_SPEC, path_name="d.yaml", project="default", idempotency_key="k")
    s.tick()
    token = procs.credentials[job["id"]]
    token_id = platform.security.authenticate(token, "test").token_id
    assert token_id is not None
    s.tick()  # six days left: nothing to renew yet
    assert platform.security.audit_list(action="token.renew", limit=10) == []
    # six days and 22 hours on: two hours left
    platform.security.store.extend_token(token_id, datetime.now(UTC) + timedelta(hours=2))
    s.tick()
    record = platform.security.store.get_token(token_id)
    assert record is not None and record.expires_at is not None
    assert record.expires_at - datetime.now(UTC) > timedelta(days=6, hours=23)
    [renewal] = platform.security.audit_list(action="token.renew", limit=10)
    assert (renewal.actor, renewal.target) == ("system:scheduler", f"token:{token_id}")
    platform.security.verified.forget(token_id=token_id)
    assert platform.security.authenticate(token, "test").principal == "ada"


def test_only_a_live_unexpired_credential_of_a_running_job_is_renewed(platform: Platform) -> None:
    security, now = platform.security, datetime.now(UTC)
    researcher(platform, "ada")
    soon = {
        job: security.create_job_credential(SCHEDULER, job, "ada", "default", ttl=timedelta(hours=2)) for job in "ab"
    }
    roomy = security.create_job_credential(SCHEDULER, "c", "ada", "default", ttl=timedelta(days=3))
    lapsed = security.create_job_credential(SCHEDULER, "d", "ada", "default", ttl=timedelta(hours=2))
    lapsed_id = security.authenticate(lapsed, "test").token_id
    assert lapsed_id is not None
    security.store.extend_token(lapsed_id, now - timedelta(minutes=1))
    security.create_job_credential(SCHEDULER, "e", "ada", "default", ttl=timedelta(hours=2))
    security.revoke_job_credentials(SCHEDULER, "e")
    ids = {job: security.authenticate(secret, "test").token_id for job, secret in {**soon, "c": roomy}.items()}
    # b is not among the running jobs; c has three days left; d has expired; e was revoked
    assert security.renew_job_credentials(SCHEDULER, ["a", "c", "d", "e"]) == [ids["a"]]
    expiry = {job: security.store.get_token(str(ids[job])).expires_at for job in "abc"}  # type: ignore[union-attr]
    assert expiry["a"] - now > timedelta(days=6, hours=23)  # type: ignore[operator]
    assert expiry["b"] - now < timedelta(hours=3) and expiry["c"] - now < timedelta(days=3, minutes=1)  # type: ignore[operator]
    security.verified.forget(token_id=lapsed_id)
    with pytest.raises(Unauthenticated):
        security.authenticate(lapsed, "test")


def test_a_job_whose_submitter_has_no_identity_fails_saying_how_to_submit_it(platform: Platform) -> None:
    procs = CredentialedProcesses()
    s = credentialed(platform, procs)
    job_id = submit(platform, "local")  # on the store directly: local:<os user>, no principal of the server's
    s.tick()
    job = platform.metadata.get_job(job_id)
    assert job.state == "failed" and job.last_error["code"] == "no_credential"
    assert "aidc jobs submit" in job.last_error["message"] and procs.started == []
