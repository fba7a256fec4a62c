"""One job's process: run (or resume) its pipeline through the PipelineRunner and record how it ended.

Started by the server's scheduler as `python -m aidc.cli.job_process JOB_ID`, with stdout/stderr in the job's
log. The job's final state is written here, by compare-and-set from ``running``: if the server already moved
the job (preempted, cancelled) the worker leaves it as the server said.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aidc.errors import AidcError, ServerUnreachable
from aidc.pipeline.runner import RunObserver
from aidc.security.roles import Access

if TYPE_CHECKING:
    from aidc.pipeline.runner import PipelineRunner
    from aidc.store.metadata import MetadataStore

JOB_ACCESS = "system:jobs"  # who a job's process acts as, in the audit log
SERVER_GONE = 75  # the exit status of a job that lost its server (EX_TEMPFAIL): no outcome recorded, re-queued


class JobBook(Protocol):
    """Where a job's process files what it made under its project and what happened: the security service (a job
    on the server's own stores), or nothing more to do where the server already did it (a job on its credential)."""

    def assign_project(self, access: Access, kind: str, id_: str, project: str) -> Any: ...
    def record(
        self,
        access: Access,
        action: str,
        target: str,
        *,
        result: str = "ok",
        project: str | None = None,
        **details: Any,
    ) -> Any: ...


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


class JobLog(RunObserver):
    """Writes the run's progress into the job log, and ties the run to the job as soon as it has an id."""

    def __init__(self, store: MetadataStore, security: JobBook, job: Any, access: Access) -> None:
        self.store, self.security, self.job, self.access = store, security, job, access

    def run_started(self, run_id: str, pipeline: Any, resumed: bool) -> None:
        say(f"{'resumed' if resumed else 'started'} run {run_id} of pipeline {pipeline.name}")
        if not resumed:
            self.store.transition_job(self.job.id, ("running",), None, run_id=run_id)
            self.security.assign_project(self.access, "run", run_id, self.job.project)

    def stage_started(self, name: str, kind: str) -> None:
        say(f"stage {name} ({kind}) started")

    def stage_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "log":
            say(f"[{event.get('stage')}] {event.get('message')}")
        elif event.get("type") == "metric":
            say(f"[{event.get('stage')}] {event['name']}[{event['step']}] = {event['value']:.4g}")

    def stage_finished(self, stage: Any) -> None:
        say(f"stage {stage.name}: {stage.status}")
        if stage.status != "succeeded":
            return  # a cached stage's versions were made by an earlier run and stay in that run's project
        for value in stage.outputs.values():  # what the stage registered is the job's project's, like its run
            if isinstance(value, dict) and "dataset_version_id" in value:
                self.security.assign_project(
                    self.access, "dataset_version", str(value["dataset_version_id"]), self.job.project
                )
            if isinstance(value, dict) and "model_version_id" in value:
                self.security.assign_project(
                    self.access, "model_version", str(value["model_version_id"]), self.job.project
                )


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def listen_for_stop() -> None:
    """SIGINT (the server's preempt or cancel) and SIGTERM both stop the run: the runner records it as interrupted.

    SIGINT is set here, not inherited: a server started in the background of a script hands its children an
    ignored SIGINT, and a job that kept it could only be killed, never stopped where it can resume."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)


def run_job(
    job_id: str,
    store: MetadataStore,
    security: JobBook,
    runner: Callable[[Access, RunObserver, str], PipelineRunner],
) -> int:
    """Run job ``job_id`` to its end in this process; the exit status. ``runner(access, observer, project)``: the
    pipeline runner to use, acting as ``access`` and confined to ``project``'s data."""
    listen_for_stop()
    try:
        return _run(job_id, store, security, runner)
    except ServerUnreachable as exc:
        # the server is gone (stopped or restarting), not the job at fault — mid-run, or as this process went to
        # record how the run ended: record nothing (a server back in time would otherwise take "failed" for the
        # outcome) and exit; the server finds the process gone and re-queues the job to resume its run
        # (docs/control-plane.md, "Restarts and crashes")
        say(f"stopped: {exc.message}; the server re-queues the job when it finds this process gone")
        return SERVER_GONE


def _run(
    job_id: str,
    store: MetadataStore,
    security: JobBook,
    runner: Callable[[Access, RunObserver, str], PipelineRunner],
) -> int:
    job = store.get_job(job_id)
    access = Access(principal=JOB_ACCESS, kind="local", source=f"job-worker@{socket.gethostname()}")
    resume = None
    if job.run_id and store.get_run(job.run_id).status != "succeeded":
        resume = job.run_id
    spec = Path.cwd() / job.path_name
    spec.write_text(job.spec_text, encoding="utf-8")
    say(
        f"job {job.id} attempt {job.attempts} on {socket.gethostname()}"
        + (f", resuming run {resume}" if resume else "")
    )
    try:
        result = runner(access, JobLog(store, security, job, access), job.project).run(
            None if resume else spec, resume=resume
        )
    except KeyboardInterrupt:
        now = store.get_job(job_id)
        say(f"stopped ({now.state})")
        if store.transition_job(
            job_id,
            ("running",),
            "failed",
            finished_at=datetime.now(UTC),
            last_error={"code": "interrupted", "message": "the job's process was interrupted"},
        ):
            security.record(access, "job.fail", f"job:{job_id}", project=job.project, error="interrupted")
        return 130
    except ServerUnreachable:
        raise  # not the job's failure: run_job says so and exits for the server to re-queue it
    except AidcError as exc:
        say(f"failed: {exc.message}")
        if store.transition_job(
            job_id, ("running",), "failed", finished_at=datetime.now(UTC), last_error=exc.to_dict()
        ):
            security.record(access, "job.fail", f"job:{job_id}", project=job.project, error=exc.code)
        return 1
    except Exception as exc:  # noqa: BLE001 - whatever broke, the job must not stay "running"
        say(f"failed: {type(exc).__name__}: {exc}")
        if store.transition_job(
            job_id,
            ("running",),
            "failed",
            finished_at=datetime.now(UTC),
            last_error={"code": "internal", "message": f"{type(exc).__name__}: {exc}"},
        ):
            security.record(access, "job.fail", f"job:{job_id}", project=job.project, error="internal")
        raise
    if store.transition_job(job_id, ("running",), "succeeded", finished_at=datetime.now(UTC), run_id=result.run_id):
        security.record(access, "job.succeed", f"job:{job_id}", project=job.project, run_id=result.run_id)
    say(f"succeeded: run {result.run_id}")
    return 0
