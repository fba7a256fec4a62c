"""Jobs: the verbs on the server's queue — submit, list, show, cancel, logs, quotas — as one caller may use them.

A job of a project the caller has no role on is NotFound, exactly like one that does not exist; every change
is one transaction in the metadata store and one audit entry (through the guard).
"""

from __future__ import annotations

import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aidc.errors import Conflict, InvalidInput, InvalidSpec, NotFound
from aidc.jobs.launcher import LOG_NAME, job_dir
from aidc.jobs.queue import Quota, never_fits
from aidc.security.roles import Access
from aidc.services.guard import Guard, not_found
from aidc.store.metadata import MetadataStore
from aidc.store.metadata.base import JOB_FINAL_STATES, JOB_STATES
from aidc.store.metadata.records import Job

KEY_PATTERN = r"^[A-Za-z0-9._:-]{1,200}$"


def new_job_id() -> str:
    return f"job-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def spec_summary(spec_text: str, path_name: str) -> tuple[str, int]:
    """Check the pipeline as `aidc run` would (InvalidSpec with line:col otherwise, naming ``path_name``); its
    name and the number of training workers it asks for (the job's default gang size)."""
    from aidc.pipeline.spec import load_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / (Path(path_name).name or "pipeline.yaml")
        path.write_text(spec_text, encoding="utf-8")
        try:
            pipeline = load_pipeline(path)
        except InvalidSpec as exc:
            exc.message = exc.message.replace(str(path), path_name)
            exc.args = (exc.message,)
            for problem in exc.problems:
                problem.file = path_name
            raise
    workers = max((int(getattr(s.config, "workers", 1) or 1) for s in pipeline.stages.values()), default=1)
    return pipeline.name, workers


class Jobs:
    def __init__(self, store: MetadataStore, guard: Guard, home: Path) -> None:
        """``home``: where job processes keep their logs (AIDC_HOME/jobs/JOB)."""
        self.store, self.guard, self.home = store, guard, home
        self.security = guard.security
        self.wake: Any = None  # the server's scheduler sets this: a submission or cancel starts a pass at once

    def _may(self, access: Access, permission: str, project: str, action: str, kind: str, key: str) -> None:
        self.guard.require(access, permission, project, action, f"{kind} {key}", not_found(kind, key))

    def _projects(self) -> set[str]:
        return {p.name for p in self.security.store.list_projects()}

    def _poke(self) -> None:
        if self.wake is not None:
            self.wake()

    # -- submit
    def submit(
        self,
        access: Access,
        *,
        spec_text: str,
        path_name: str,
        project: str,
        priority: int = 0,
        cpus: float | None = None,
        gpus: float | None = None,
        workers: int | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Queue a pipeline; the same ``idempotency_key`` from the same caller returns the job it made before."""
        if project not in self._projects():
            raise not_found("project", project)
        self._may(access, "jobs:submit", project, "jobs.submit", "project", project)
        key = idempotency_key or secrets.token_hex(16)
        if not re.fullmatch(KEY_PATTERN, key):
            raise InvalidInput(
                "idempotency key must be 1–200 letters, digits and . _ : -",
                hint="the CLI makes one per invocation; a UUID works",
            )
        if cpus is not None and cpus <= 0:
            raise InvalidInput("cpus must be more than 0 per worker")
        invalid: InvalidSpec | None = None
        try:
            pipeline, spec_workers = spec_summary(spec_text, path_name)
        except InvalidSpec as exc:
            # Recorded as a job that failed at once, not refused: the request itself was well-formed (the CLI
            # checks the file before sending it, so people see the line:col error without a failed job).
            invalid, pipeline, spec_workers = exc, (Path(path_name).stem or "pipeline")[:200], 1
        job = {
            "id": new_job_id(),
            "project": project,
            "submitter": access.principal,
            "idempotency_key": key,
            "pipeline": pipeline,
            "path_name": Path(path_name).name or "pipeline.yaml",
            "spec_text": spec_text,
            "priority": int(priority),
            "workers": int(workers or spec_workers),
            "cpus": float(cpus if cpus is not None else 1.0),
            "gpus": float(gpus or 0.0),
        }
        quota = self.store.get_quota(project)
        problem = never_fits(SimpleNamespace(**job), Quota(**quota.model_dump(exclude={"project"})))
        if problem:
            raise Conflict(
                f"this job can never start: {problem}",
                hint=f"ask for fewer resources, or an admin to raise the quota: aidc quotas set {project} ...",
            )
        if invalid is not None:
            error = invalid.to_dict() | {"problems": [str(p) for p in invalid.problems]}
            job |= {
                "state": "failed",
                "last_error": error,
                "finished_at": datetime.now(UTC),
                "reason": "the pipeline spec is invalid",
            }
        made, created = self.store.submit_job(job)
        if created:
            self.guard.record(
                access,
                "job.submit",
                f"job:{made.id}",
                project=project,
                pipeline=pipeline,
                priority=made.priority,
                workers=made.workers,
                cpus=made.cpus,
                gpus=made.gpus,
                idempotency_key=key,
                result="failed" if invalid else "ok",
                **({"error": invalid.code} if invalid else {}),
            )
            self._poke()
        else:
            self._may(access, "jobs:submit", made.project, "jobs.submit", "job", made.id)
        return made.to_json(), created

    # -- read
    def list_jobs(
        self, access: Access, *, project: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        if state is not None and state not in JOB_STATES:
            raise InvalidInput(f"unknown job state {state!r}", hint=f"one of {', '.join(JOB_STATES)}")
        allowed = access.projects("jobs:read")
        if project is not None and allowed is not None and project not in allowed:
            return []
        jobs = self.store.list_jobs(
            project=project, states=(state,) if state else None, limit=limit if allowed is None else 10000
        )
        return [j.to_json() for j in jobs if allowed is None or j.project in allowed][:limit]

    def show(self, access: Access, job_id: str) -> dict[str, Any]:
        """A job by id, unique id prefix, or the id of the run it started; with its pipeline spec."""
        job = self._resolve(access, job_id)
        self._may(access, "jobs:read", job.project, "jobs.read", "job", job_id)
        return job.to_json() | {"spec_text": job.spec_text, "log": str(job_dir(self.home, job.id) / LOG_NAME)}

    def _resolve(self, access: Access, ref: str) -> Job:
        """A job by id, by an id prefix among the jobs the caller may read, or by the id of the run it started."""
        try:
            return self.store.get_job(ref, projects=self.guard.projects(access, "jobs:read"))
        except NotFound:
            by_run = self.store.list_jobs(run_id=ref, limit=1)
            if by_run:
                return by_run[0]
            raise

    # -- cancel
    def cancel(self, access: Access, job_id: str) -> dict[str, Any]:
        """Cancel a waiting or running job (its process is stopped by the scheduler); a cancelled one stays so."""
        job = self._resolve(access, job_id)
        self._may(access, "jobs:cancel", job.project, "jobs.cancel", "job", job_id)
        if job.state == "cancelled":
            return job.to_json()
        with self.guard.audited(access, "job.cancel", f"job:{job.id}", project=job.project, was=job.state):
            done = self.store.transition_job(
                job.id,
                ("queued", "preempted", "running"),
                "cancelled",
                finished_at=datetime.now(UTC),
                reason=f"cancelled by {access.principal}",
            )
            if done is None:
                now = self.store.get_job(job.id)
                if now.state == "cancelled":
                    return now.to_json()
                raise Conflict(f"job {job.id} already {now.state}", hint="only queued or running jobs can be cancelled")
        self._poke()
        return done.to_json()

    # -- logs
    def log_lines(self, access: Access, ref: str, *, follow: bool = False, poll_s: float = 0.25) -> Iterator[str]:
        """The job's log (`aidc logs`), from the start; with ``follow``, until the job ends."""
        job = self._resolve(access, ref)
        self._may(access, "jobs:read", job.project, "jobs.logs", "job", ref)
        return self._tail(job.id, follow, poll_s)

    def _tail(self, job_id: str, follow: bool, poll_s: float) -> Iterator[str]:
        path = job_dir(self.home, job_id) / LOG_NAME
        offset = 0
        while True:
            if path.exists():
                with path.open("r", encoding="utf-8", errors="replace") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
                    offset = fh.tell()
                if chunk:
                    yield chunk
            if not follow:
                return
            if self.store.get_job(job_id).state in JOB_FINAL_STATES:
                follow = False  # one more read: what the job wrote as it ended
                continue
            time.sleep(poll_s)

    # -- quotas
    def quotas(self, access: Access) -> list[dict[str, Any]]:
        """Each project the caller may read jobs of, with its limits (None: no limit) and current holdings."""
        from aidc.jobs.queue import Resources, gpu_hours

        allowed = access.projects("jobs:read")
        set_ = {q.project: q for q in self.store.list_quotas()}
        running = self.store.list_jobs(states=("running",), limit=10000)
        month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        used = self.store.list_jobs(since=month, limit=10000)
        now = datetime.now(UTC)
        out = []
        for project in sorted(p.name for p in self.security.store.list_projects()):
            if allowed is not None and project not in allowed:
                continue
            quota = set_.get(project) or self.store.get_quota(project)
            held = sum((Resources.of(j) for j in running if j.project == project), Resources())
            out.append(
                quota.to_json()
                | {
                    "running_jobs": sum(1 for j in running if j.project == project),
                    "cpus_in_use": held.cpus,
                    "gpus_in_use": held.gpus,
                    "gpu_hours_this_month": round(
                        sum(gpu_hours(j, month, now) for j in used if j.project == project), 3
                    ),
                }
            )
        return out

    def set_quota(self, access: Access, project: str, **limits: float | int | None) -> dict[str, Any]:
        if project not in self._projects():
            raise not_found("project", project)
        for name, value in limits.items():
            if value is not None and value < 0:
                raise InvalidInput(f"{name} must be 0 or more (or unset for no limit)")
        with self.guard.audited(access, "quota.set", f"project:{project}", project=project, **limits):
            quota = self.store.set_quota(project, **limits)
        self._poke()
        return quota.to_json()
