"""The jobs and project-quota tables of SqlMetadataStore: idempotent submission, compare-and-set state changes."""

from __future__ import annotations

from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from aidc.errors import Conflict, InvalidInput, NotFound
from aidc.store.metadata import records as r
from aidc.store.metadata.base import JOB_FIELDS, JOB_STATES
from aidc.store.metadata.schema import JobRow, ProjectQuotaRow

QUOTA_FIELDS = ("max_gpus", "max_cpus", "max_jobs", "gpu_hours_per_month")
# What makes a retried submission "the same": it must name the same work, or the key was reused by mistake.
SAME_SUBMISSION = ("project", "spec_text", "priority", "workers", "cpus", "gpus")


def _now() -> datetime:
    return datetime.now(UTC)


class SqlJobs:
    """Mixed into SqlMetadataStore; uses its ``_session`` and ``_sessions``."""

    _sessions: Any
    _session: Callable[[], AbstractContextManager[Session]]

    def submit_job(self, job: dict[str, Any]) -> tuple[r.Job, bool]:
        key = (job["submitter"], job["idempotency_key"])
        existing = self._find_by_key(*key)
        if existing is None:
            try:
                # its own transaction, never an enclosing one: a duplicate key must not roll back the caller's work
                with self._sessions() as s, s.begin():
                    row = JobRow(**({"state": "queued"} | job), attempts=0, created_at=_now(), updated_at=_now())
                    s.add(row)
                    s.flush()
                    return r.Job.model_validate(row), True
            except sa_exc.IntegrityError:  # a concurrent retry of the same submission won the insert
                existing = self._find_by_key(*key)
                if existing is None:
                    raise Conflict(f"job {job['id']} already exists", hint="submit again") from None
        differs = [f for f in SAME_SUBMISSION if getattr(existing, f) != job[f]]
        if differs:
            raise Conflict(
                f"idempotency key {key[1]!r} was already used for job {existing.id}, which differs in "
                f"{', '.join(differs)}",
                hint="use a new idempotency key for a different submission",
            )
        return existing, False

    def _find_by_key(self, submitter: str, key: str) -> r.Job | None:
        with self._session() as s:
            row = s.scalars(select(JobRow).where(JobRow.submitter == submitter, JobRow.idempotency_key == key)).first()
            return r.Job.model_validate(row) if row else None

    def get_job(self, job_id: str, *, projects: Collection[str] | None = None) -> r.Job:
        with self._session() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                q = select(JobRow).where(JobRow.id.startswith(job_id))
                if projects is not None:
                    q = q.where(JobRow.project.in_(list(projects)))
                rows = s.scalars(q.limit(2)).all()
                if len(rows) != 1:
                    raise NotFound(f"no job {job_id!r}", hint="list jobs with `aidc jobs list`")
                row = rows[0]
            return r.Job.model_validate(row)

    def list_jobs(
        self,
        *,
        project: str | None = None,
        states: tuple[str, ...] | None = None,
        run_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[r.Job]:
        q = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
        if project:
            q = q.where(JobRow.project == project)
        if states:
            q = q.where(JobRow.state.in_(states))
        if run_id:
            q = q.where(JobRow.run_id == run_id)
        if since is not None:
            q = q.where(or_(JobRow.finished_at.is_(None), JobRow.finished_at >= since))
        with self._session() as s:
            return [r.Job.model_validate(row) for row in s.scalars(q)]

    def transition_job(
        self, job_id: str, from_states: tuple[str, ...], to_state: str | None, **fields: Any
    ) -> r.Job | None:
        unknown = set(fields) - JOB_FIELDS
        if unknown or (to_state is not None and to_state not in JOB_STATES):
            raise InvalidInput(f"a job has no changeable field {', '.join(sorted(unknown)) or to_state}")
        values = dict(fields, updated_at=_now()) | ({"state": to_state} if to_state else {})
        with self._session() as s:
            # one UPDATE … WHERE state IN (…): atomic on SQLite and PostgreSQL alike, so two actors (the
            # scheduler, a cancel request, the job's own process) can never both win the same transition
            done = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state.in_(from_states))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = s.get(JobRow, job_id, populate_existing=True)
            return r.Job.model_validate(row)

    def get_quota(self, project: str) -> r.ProjectQuota:
        with self._session() as s:
            row = s.get(ProjectQuotaRow, project)
            return r.ProjectQuota.model_validate(row) if row else r.ProjectQuota(project=project)

    def set_quota(self, project: str, **limits: float | int | None) -> r.ProjectQuota:
        unknown = set(limits) - set(QUOTA_FIELDS)
        if unknown:
            raise InvalidInput(
                f"a quota has no limit {', '.join(sorted(unknown))}", hint=f"one of {', '.join(QUOTA_FIELDS)}"
            )
        with self._session() as s:
            row = s.get(ProjectQuotaRow, project)
            if row is None:
                row = ProjectQuotaRow(project=project)
                s.add(row)
            for name, value in limits.items():
                setattr(row, name, value)
            row.updated_at = _now()
            s.flush()
            return r.ProjectQuota.model_validate(row)

    def list_quotas(self) -> list[r.ProjectQuota]:
        with self._session() as s:
            return [
                r.ProjectQuota.model_validate(row)
                for row in s.scalars(select(ProjectQuotaRow).order_by(ProjectQuotaRow.project))
            ]
