"""The metadata store's deployments on SQL: deployments, their replicas and what happened to them."""

from __future__ import annotations

from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aidc.errors import InvalidInput, NotFound
from aidc.store.metadata import records as r
from aidc.store.metadata.base import DEPLOYMENT_FIELDS
from aidc.store.metadata.schema import DeploymentEventRow, DeploymentReplicaRow, DeploymentRow


def _now() -> datetime:
    return datetime.now(UTC)


def _in_projects(q: Any, column: Any, projects: Collection[str] | None) -> Any:
    """Limit a query to records of ``projects`` (None: no limit): the project isolation the API relies on,
    done by the database instead of loading every record and dropping most of them."""
    return q if projects is None else q.where(column.in_(sorted(set(projects))))


class SqlDeployments:
    """Mixed into SqlMetadataStore; uses its ``_session`` and ``_get``."""

    _session: Callable[[], AbstractContextManager[Session]]
    _get: Callable[[Session, type, Any, str], Any]

    def add_deployment(
        self,
        name: str,
        model_version_id: int,
        url: str,
        pid: int | None,
        status: str = "running",
        *,
        replicas: int = 1,
        resources: dict[str, Any] | None = None,
        controller: str | None = None,
        project: str | None = None,
    ) -> r.Deployment:
        with self._session() as s:
            row = DeploymentRow(
                name=name,
                model_version_id=model_version_id,
                url=url,
                pid=pid,
                status=status,
                replicas=replicas,
                resources=resources or {},
                canary_policy={},
                controller=controller,
                **({"project": project} if project else {}),
            )
            s.add(row)
            s.flush()
            return r.Deployment.model_validate(row)

    @staticmethod
    def _set_status(row: DeploymentRow, status: str) -> None:
        row.status = status
        if status in ("stopped", "failed"):
            row.stopped_at = _now()

    def set_deployment_status(self, deployment_id: int, status: str) -> r.Deployment:
        with self._session() as s:
            row = self._get(s, DeploymentRow, deployment_id, "deployment")
            self._set_status(row, status)
            return r.Deployment.model_validate(row)

    def list_deployments(
        self, *, status: str | None = None, name: str | None = None, projects: Collection[str] | None = None
    ) -> list[r.Deployment]:
        q = _in_projects(select(DeploymentRow).order_by(DeploymentRow.id), DeploymentRow.project, projects)
        if status:
            q = q.where(DeploymentRow.status == status)
        if name:
            q = q.where(DeploymentRow.name == name)
        with self._session() as s:
            return [r.Deployment.model_validate(row) for row in s.scalars(q)]

    def get_deployment(self, deployment_id: int) -> r.Deployment:
        with self._session() as s:
            return r.Deployment.model_validate(self._get(s, DeploymentRow, deployment_id, "deployment"))

    def find_deployment(self, name: str, *, project: str | None = None) -> r.Deployment:
        q = (
            select(DeploymentRow)
            .where(DeploymentRow.name == name, DeploymentRow.status != "stopped")
            .order_by(DeploymentRow.id.desc())
            .limit(1)
        )
        if project is not None:
            q = q.where(DeploymentRow.project == project)
        with self._session() as s:
            row = s.scalars(q).first()
            if row is None:
                raise NotFound(f"no deployment {name!r}", hint="list them with `aidc deployments list`")
            return r.Deployment.model_validate(row)

    def update_deployment(self, deployment_id: int, **changes: Any) -> r.Deployment:
        unknown = set(changes) - DEPLOYMENT_FIELDS
        if unknown:
            raise InvalidInput(f"a deployment has no changeable field {', '.join(sorted(unknown))}")
        with self._session() as s:
            row = self._get(s, DeploymentRow, deployment_id, "deployment")
            for key, value in changes.items():
                if key == "status":
                    self._set_status(row, value)
                else:
                    setattr(row, key, value)
            row.updated_at = _now()
            return r.Deployment.model_validate(row)

    def record_replica(
        self,
        deployment_id: int,
        model_version_id: int,
        slot: int,
        *,
        status: str,
        url: str | None = None,
        pid: int | None = None,
        node: str | None = None,
        restarts: int = 0,
        message: str | None = None,
    ) -> r.DeploymentReplica:
        with self._session() as s:
            row = s.scalars(
                select(DeploymentReplicaRow).where(
                    DeploymentReplicaRow.deployment_id == deployment_id,
                    DeploymentReplicaRow.model_version_id == model_version_id,
                    DeploymentReplicaRow.slot == slot,
                )
            ).first()
            if row is None:
                row = DeploymentReplicaRow(deployment_id=deployment_id, model_version_id=model_version_id, slot=slot)
                s.add(row)
            row.status, row.url, row.pid, row.node = status, url, pid, node
            row.restarts, row.message, row.updated_at = restarts, message, _now()
            s.flush()
            return r.DeploymentReplica.model_validate(row)

    def remove_replica(self, deployment_id: int, model_version_id: int, slot: int) -> None:
        with self._session() as s:
            for row in s.scalars(
                select(DeploymentReplicaRow).where(
                    DeploymentReplicaRow.deployment_id == deployment_id,
                    DeploymentReplicaRow.model_version_id == model_version_id,
                    DeploymentReplicaRow.slot == slot,
                )
            ):
                s.delete(row)

    def list_replicas(self, deployment_id: int) -> list[r.DeploymentReplica]:
        q = (
            select(DeploymentReplicaRow)
            .where(DeploymentReplicaRow.deployment_id == deployment_id)
            .order_by(DeploymentReplicaRow.model_version_id, DeploymentReplicaRow.slot)
        )
        with self._session() as s:
            return [r.DeploymentReplica.model_validate(row) for row in s.scalars(q)]

    def add_deployment_event(
        self, deployment_id: int, kind: str, message: str, details: dict[str, Any] | None = None
    ) -> r.DeploymentEvent:
        with self._session() as s:
            self._get(s, DeploymentRow, deployment_id, "deployment")
            row = DeploymentEventRow(deployment_id=deployment_id, kind=kind, message=message, details=details or {})
            s.add(row)
            s.flush()
            return r.DeploymentEvent.model_validate(row)

    def deployment_events(self, deployment_id: int, *, limit: int = 100) -> list[r.DeploymentEvent]:
        q = (
            select(DeploymentEventRow)
            .where(DeploymentEventRow.deployment_id == deployment_id)
            .order_by(DeploymentEventRow.id.desc())
            .limit(limit)
        )
        with self._session() as s:
            return [r.DeploymentEvent.model_validate(row) for row in reversed(s.scalars(q).all())]
