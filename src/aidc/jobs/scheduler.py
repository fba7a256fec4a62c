"""The scheduler the server runs: each pass reads the queue, asks queue.plan what to do, gang-checks each start
with a Ray placement group, starts, preempts and stops job processes, and re-attaches jobs after a restart."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aidc.cluster.compute import cluster_resources
from aidc.errors import AidcError
from aidc.jobs.launcher import Launcher
from aidc.jobs.queue import Quota, Resources, gpu_hours, plan, project_usage
from aidc.security.roles import Access

if TYPE_CHECKING:
    from aidc.security.service import Security
    from aidc.settings import Settings
    from aidc.store.metadata import MetadataStore

log = logging.getLogger("aidc.jobs")
SCHEDULER = Access(principal="system:scheduler", kind="local", source="aidc server")
PENDING = ("queued", "preempted")
STOP_MARGIN_S = 30.0  # a job asked to stop is killed this long after its train stage's checkpoint wait
MAX_ATTEMPTS = 3  # a job whose process keeps dying without an outcome is failed after this many starts
RENEW_EVERY_S = 3600.0  # how often running jobs' credentials are looked at for renewal (due with a day left)
FAIR_SHARE_WINDOW = timedelta(hours=24)


class Cluster(Protocol):
    """Where jobs run: what is free, and whether a gang of bundles can be placed all at once."""

    @property
    def address(self) -> str:
        """What a job process joins (AIDC_RAY_ADDRESS)."""

    def capacity(self) -> Resources: ...
    def available(self) -> Resources: ...
    def place_gang(self, bundles: list[dict[str, float]], timeout_s: float) -> bool:
        """Whether every bundle can be reserved at once (all or none); the reservation is released again."""

    # optional: ``cordon(names)`` — the nodes (by aidc's name for them) that take no new jobs from now on


class RayCluster:
    """The Ray cluster the server joins (``--ray-address``), or starts on the first job; jobs join the same one.

    Connected lazily, from the scheduler's thread: a server nobody submits jobs to never starts Ray.
    """

    def __init__(
        self, address: str = "", num_cpus: int | None = None, node_name: Callable[[Any], str] | None = None
    ) -> None:
        """``node_name``: aidc's name for a Ray node (aidc.cluster.inventory.ComputeNode) — what cordons name."""
        from contextlib import ExitStack

        self._given, self._num_cpus = address, num_cpus
        self._stack = ExitStack()
        self._address: str | None = None
        self._node_name = node_name or (lambda node: node.host)
        self._cordoned: set[str] = set()

    def cordon(self, names: set[str]) -> None:
        self._cordoned = set(names)

    def _held_nodes(self) -> list[Any]:
        """The Ray nodes an operator cordoned (alive ones: a dead node's resources are gone anyway)."""
        if not self._cordoned:
            return []
        from aidc.cluster.inventory import ray_nodes

        return [n for n in ray_nodes() if n.alive and self._node_name(n) in self._cordoned]

    def _without_held(self, resources: Resources, *, available: bool) -> Resources:
        held = self._held_nodes()
        if not held:
            return resources
        if available:
            from ray._private.state import available_resources_per_node

            per_node = available_resources_per_node()  # type: ignore[no-untyped-call]
            minus = [per_node.get(n.ray_node_id, {}) for n in held]
            out = resources - Resources(sum(m.get("CPU", 0.0) for m in minus), sum(m.get("GPU", 0.0) for m in minus))
        else:
            out = resources - Resources(sum(n.cpus for n in held), sum(n.gpus for n in held))
        return Resources(max(0.0, out.cpus), max(0.0, out.gpus))

    @property
    def address(self) -> str:
        if self._address is None:
            import ray

            from aidc.cluster.compute import ray_cluster
            from aidc.jobs.launcher import environ_passed_on

            if self._given:
                self._stack.enter_context(ray_cluster(self._given, num_cpus=self._num_cpus))
            else:  # our own Ray runs the jobs' code: it starts without the server's secrets in its environment
                with environ_passed_on():
                    self._stack.enter_context(ray_cluster(self._given, num_cpus=self._num_cpus))
            self._address = self._given or ray.get_runtime_context().gcs_address
        return self._address

    def capacity(self) -> Resources:
        assert self.address
        total = cluster_resources()
        return self._without_held(Resources(total.get("CPU", 0.0), total.get("GPU", 0.0)), available=False)

    def available(self) -> Resources:
        assert self.address
        free = cluster_resources(available=True)
        return self._without_held(Resources(free.get("CPU", 0.0), free.get("GPU", 0.0)), available=True)

    def place_gang(self, bundles: list[dict[str, float]], timeout_s: float) -> bool:
        # The group is the gang test: Ray places every bundle or none. It is released at once, and the job's
        # own trainer places the same shape a moment later; the scheduler counts the job's resources as taken
        # from now on, so no other job of ours is started into that gap.
        import ray
        from ray.util.placement_group import placement_group, remove_placement_group

        assert self.address
        bundles = [{k: v for k, v in b.items() if v > 0} for b in bundles]
        bundles = [b for b in bundles if b]
        if not bundles:
            return True
        held = [n.ray_node_id for n in self._held_nodes()]
        # a cordoned node takes no bundle of the gang (Ray's node-id label, "!in(...)": any node but these)
        selector = [{"ray.io/node-id": f"!in({','.join(held)})"} for _ in bundles] if held else None
        group = placement_group(bundles, strategy="PACK", bundle_label_selector=selector)
        try:
            ready, _ = ray.wait([group.ready()], timeout=timeout_s)
            return bool(ready)
        finally:
            remove_placement_group(group)

    def close(self) -> None:
        self._stack.close()


@dataclass
class Stopping:
    worker: str
    need: Resources
    deadline: float


class Scheduler:
    def __init__(
        self,
        store: MetadataStore,
        security: Security,
        cluster: Cluster,
        launcher: Launcher,
        *,
        stop_checkpoint_s: float,
        credentials: bool = False,
        interval_s: float = 2.0,
        gang_timeout_s: float = 0.5,
        starve_after_s: float = 600.0,
        renew_every_s: float = RENEW_EVERY_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.security, self.cluster, self.launcher = store, security, cluster, launcher
        # each job's process gets a token of its own (its submitter's, for its project's stores), revoked at its end
        self.credentials = credentials
        self._credentialed: set[str] = set()
        self.renew_every_s = renew_every_s
        self._renewed_at: float | None = None  # monotonic time of the last look for credentials to renew
        self.on_ended: Callable[[str], None] | None = None  # told each job whose credential was revoked
        self.interval_s, self.gang_timeout_s, self.starve_after_s = interval_s, gang_timeout_s, starve_after_s
        self.clock = clock
        # a stopped job first checkpoints its training where it is (Settings.stop_checkpoint_s), then exits
        self.stop_grace_s = stop_checkpoint_s + STOP_MARGIN_S
        self.stopping: dict[str, Stopping] = {}
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _audit(self, action: str, job: Any, **details: Any) -> None:
        self.security.record(SCHEDULER, action, f"job:{job.id}", project=job.project, **details)

    # -- the loop
    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="aidc-scheduler", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)
        close = getattr(self.cluster, "close", None)
        if close:
            close()

    def _loop(self) -> None:
        while not self._halt.is_set():
            self._wake.clear()  # before the pass: a submission made during it wakes the next one at once
            try:
                self.tick()
            except Exception:  # a database blip must not stop scheduling; the next pass retries
                log.exception("scheduling pass failed")
            self._wake.wait(self.interval_s)

    # -- after a restart
    def recover(self) -> None:
        """Jobs a previous server left running: re-attached if their process lives, else re-queued to resume
        from their run's last checkpoint. Jobs told to stop whose process still lives are stopped again."""
        if self.credentials:  # the next pass revokes those of jobs whose process is gone
            self._credentialed = set(self.security.live_job_credentials().values())
        for job in self.store.list_jobs(states=("running",), limit=100000):
            if job.worker and self.launcher.alive(job.worker):
                self._audit("job.reattach", job, worker=job.worker)
                continue
            done = self.store.transition_job(
                job.id,
                ("running",),
                "queued",
                worker=None,
                reason="re-queued: its process was gone when the server started; it resumes from its last checkpoint",
                last_error={"code": "server_restart", "message": "the job's process ended while the server was down"},
            )
            if done:
                self._audit("job.requeue", job, run_id=job.run_id, why="server restart")
        for job in self.store.list_jobs(states=("preempted", "cancelled"), limit=1000):
            if job.worker and self.launcher.alive(job.worker):
                self._stop(job)

    # -- one pass
    def tick(self) -> None:
        with self._lock:
            self._pass()

    def _stop(self, job: Any) -> None:
        import time

        assert job.worker
        self.launcher.stop(job.worker)
        self.stopping[job.id] = Stopping(job.worker, Resources.of(job), time.monotonic() + self.stop_grace_s)

    def _reap(self) -> None:
        import time

        for job_id, stopping in list(self.stopping.items()):
            if not self.launcher.alive(stopping.worker):
                del self.stopping[job_id]
            elif time.monotonic() > stopping.deadline:
                self.launcher.stop(stopping.worker, force=True)

    def _pass(self) -> None:
        now = self.clock()
        self._reap()
        cordon = getattr(self.cluster, "cordon", None)
        if cordon is not None:
            cordon(self.store.cordoned_nodes())
        running = []
        for job in self.store.list_jobs(states=("running",), limit=100000):
            if job.worker is None or self.launcher.alive(job.worker):
                running.append(job)
                continue
            # the process ended without recording an outcome (killed, its node or Ray went away): the run is
            # resumable from its last checkpoint, so the job goes back in the queue — a few times, not forever
            code = getattr(self.launcher, "exit_code", lambda w: None)(job.worker)
            error = {"code": "worker_died", "message": f"the job's process exited ({code}) without an outcome"}
            if job.attempts >= MAX_ATTEMPTS:
                if self.store.transition_job(job.id, ("running",), "failed", finished_at=now, last_error=error):
                    self._audit("job.fail", job, error="worker_died", exit_code=code, attempts=job.attempts)
            elif self.store.transition_job(
                job.id,
                ("running",),
                "queued",
                worker=None,
                last_error=error,
                reason="re-queued: its process died; it resumes from its last checkpoint",
            ):
                self._audit("job.requeue", job, why="worker_died", exit_code=code, run_id=job.run_id)
        # cancelled jobs, and jobs preempted by a drain (`aidc nodes drain`), whose process still runs: stopped,
        # which makes a training stage checkpoint first
        for job in self.store.list_jobs(states=("cancelled", "preempted"), limit=1000):
            if job.worker and job.id not in self.stopping and self.launcher.alive(job.worker):
                self._stop(job)
        live = {j.id for j in running} | set(self.stopping)  # a job being stopped still checkpoints: it is live
        self._revoke_ended(live)
        self._renew_live(live)
        pending = [j for j in self.store.list_jobs(states=PENDING, limit=100000) if j.id not in self.stopping]
        if not pending:
            return
        releasing = sum((s.need for s in self.stopping.values()), Resources())
        held = sum((Resources.of(j) for j in running), Resources())
        capacity, available = self.cluster.capacity(), self.cluster.available()
        # what our own jobs hold by their request (some may not have claimed it in Ray yet), and what anyone
        # else on the cluster holds: the smaller of the two views is what is really free
        booked = capacity - held - releasing
        free = Resources(max(0.0, min(available.cpus, booked.cpus)), max(0.0, min(available.gpus, booked.gpus)))
        recent = self.store.list_jobs(since=now - FAIR_SHARE_WINDOW, limit=100000)
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        month_jobs = self.store.list_jobs(since=month, limit=100000)
        month_hours: dict[str, float] = {}
        for j in month_jobs:
            month_hours[j.project] = month_hours.get(j.project, 0.0) + gpu_hours(j, month, now)
        quotas = {q.project: Quota(**q.model_dump(exclude={"project"})) for q in self.store.list_quotas()}
        decided = plan(
            pending,
            running,
            free=free,
            releasing=releasing,
            quotas=quotas,
            usage=project_usage(recent, now - FAIR_SHARE_WINDOW, now),
            month_gpu_hours=month_hours,
            now=now,
            starve_after_s=self.starve_after_s,
            placeable=self._placeable,
        )
        by_id = {j.id: j for j in pending + running}
        for job_id in decided.preempt:
            job = by_id[job_id]
            winner = next((w for w, why in decided.waiting.items() if job_id in why), None)
            if self.store.transition_job(
                job_id, ("running",), "preempted", reason=f"preempted by higher-priority job {winner}"
            ):
                self._audit("job.preempt", job, by=winner, run_id=job.run_id)
                if job.worker:
                    self._stop(job)
        for job_id in decided.start:
            self._start(by_id[job_id], now)
        for job_id, why in decided.waiting.items():
            job = by_id[job_id]
            if job.reason != why:
                self.store.transition_job(job_id, (job.state,), None, reason=why[:500])

    def _revoke_ended(self, live: set[str]) -> None:
        """Revoke the credential of every job whose process no longer runs (finished, failed, killed)."""
        for job_id in sorted(self._credentialed - live):
            try:
                self.security.revoke_job_credentials(SCHEDULER, job_id)
            except Exception:  # a database blip: the next pass tries again
                log.exception("revoking the credential of job %s failed", job_id)
                continue
            self._credentialed.discard(job_id)
            ended = getattr(self.launcher, "ended", None)
            if ended is not None:
                ended(job_id)
            if self.on_ended is not None:
                self.on_ended(job_id)

    def _renew_live(self, live: set[str]) -> None:
        """Renew, about once an hour, the credentials of running jobs close to expiring: a job outlives its
        credential's first term (a training run of weeks) without losing its stores."""
        if not self.credentials:
            return
        if self._renewed_at is not None and time.monotonic() - self._renewed_at < self.renew_every_s:
            return
        try:
            self.security.renew_job_credentials(SCHEDULER, self._credentialed & live)
        except Exception:  # a database blip: the next pass tries again
            log.exception("renewing job credentials failed")
            return
        self._renewed_at = time.monotonic()

    def _placeable(self, job: Any) -> bool:
        """The gang test: a placement group of all the job's bundles, placed whole or not at all."""
        return self.cluster.place_gang(
            [{"CPU": job.cpus, "GPU": job.gpus} for _ in range(job.workers)], self.gang_timeout_s
        )

    def _start(self, job: Any, now: datetime) -> None:
        claimed = self.store.transition_job(
            job.id, PENDING, "running", attempts=job.attempts + 1, started_at=now, reason=None, worker=None
        )
        if claimed is None:  # cancelled meanwhile
            return
        if self.credentials:
            try:
                credential = self.security.create_job_credential(SCHEDULER, job.id, job.submitter, job.project)
            except AidcError as exc:  # no identity to run it as (submitted on the store directly), or disabled
                message = (
                    f"no credential for the job's submitter {job.submitter}: {exc.message}; a server runs each job "
                    "on a credential of its submitter's — submit it through the server as a user "
                    "(`aidc login URL`, then `aidc jobs submit`)"
                )
                self.store.transition_job(
                    job.id,
                    ("running",),
                    "failed",
                    finished_at=now,
                    last_error={"code": "no_credential", "message": message},
                )
                self._audit("job.fail", job, error="no_credential")
                return
            self._credentialed.add(job.id)
        try:
            if self.credentials:
                worker = self.launcher.start(job.id, resume=job.run_id is not None, credential=credential)
            else:
                worker = self.launcher.start(job.id, resume=job.run_id is not None)
        except OSError as exc:
            self.store.transition_job(
                job.id,
                ("running",),
                "failed",
                finished_at=now,
                last_error={"code": "launch_failed", "message": str(exc)},
            )
            self._audit("job.fail", job, error="launch_failed")
            return
        self.store.transition_job(job.id, ("running", "cancelled"), None, worker=worker)
        self._audit("job.start", job, attempt=job.attempts + 1, worker=worker, resume=job.run_id)


def build_scheduler(
    store: MetadataStore,
    security: Security,
    settings: Settings,
    *,
    ray_address: str = "",
    server_url: str = "",
    ca_file: str = "",
    data_roots: Callable[[str], tuple[str, ...]] = lambda project: (),
) -> Scheduler:
    """The server's scheduler: Ray at ``ray_address`` (else a local Ray started on the first job); job processes
    that reach their stores at ``server_url`` with a credential of their own (``settings.job_user``: as that OS
    user, each on a Ray of its own)."""
    from aidc.cluster.inventory import node_name
    from aidc.jobs.launcher import JobUser, ProcessLauncher

    facility = None
    if settings.facility:
        from aidc.facility.loader import load_facility

        facility = load_facility(settings.facility)
    cluster = RayCluster(
        ray_address or settings.ray_address,
        settings.ray_num_cpus,
        node_name=lambda node: node_name(node, settings.node_names, facility),
    )
    job_user = None
    if settings.job_user:
        import sys

        job_user = JobUser.named(settings.job_user)
        job_user.check_can_run(sys.executable)
    launcher = ProcessLauncher(
        settings.home,
        job_env(settings),
        lambda: cluster.address,
        server_url=server_url,
        ca_file=ca_file,
        data_roots=data_roots,
        project_of=lambda job_id: store.get_job(job_id).project,
        job_user=job_user,
        scratch=Path(settings.job_scratch) if settings.job_scratch else None,
    )
    return Scheduler(
        store,
        security,
        cluster,
        launcher,
        stop_checkpoint_s=settings.stop_checkpoint_s,
        credentials=bool(server_url),
    )


def job_env(settings: Settings) -> dict[str, str]:
    """The environment of a job's process: an allow-list of the server's (launcher.PASSED_ON) and the few settings a
    job reads. No store URL, no key file or key, no token, no cloud credentials: the job reaches its stores through
    the API with the credential it is handed on stdin."""
    import os

    from aidc.jobs.launcher import JOB_SETTINGS, passed_on

    env = passed_on(os.environ)
    for name in JOB_SETTINGS:
        value = getattr(settings, name)
        if value not in (None, ""):
            env[f"AIDC_{name.upper()}"] = str(value)
    return env
