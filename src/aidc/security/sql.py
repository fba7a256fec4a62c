"""SqlSecurityStore: the SecurityStore on the metadata store's database (SQLite or PostgreSQL), same migrations."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from aidc.errors import Conflict, InvalidInput, NotFound
from aidc.security.audit import GENESIS, PRUNE, entry_hash
from aidc.security.base import PROJECT_RECORD_KINDS, SecurityStore
from aidc.security.records import ApiToken, AuditEntry, Principal, Project, RoleBinding
from aidc.security.schema import ApiTokenRow, AuditEntryRow, PrincipalRow, ProjectRow, RoleBindingRow
from aidc.store.metadata.schema import DatasetVersionRow, DeploymentRow, ModelVersionRow, PipelineRunRow
from aidc.store.metadata.sql import open_engine

T = TypeVar("T")
_PROJECT_ROWS: dict[str, Any] = {
    "run": PipelineRunRow,
    "dataset_version": DatasetVersionRow,
    "model_version": ModelVersionRow,
    "deployment": DeploymentRow,
}
_APPEND_ATTEMPTS = 50  # concurrent writers race for the next sequence number; the loser retries


class SqlSecurityStore(SecurityStore):
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_engine(url)  # the metadata store's database, migrated the same way
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def _unique(self, fn: Callable[[Session], T], conflict: str) -> T:
        try:
            with self._session() as s:
                return fn(s)
        except sa_exc.IntegrityError:
            raise Conflict(conflict) from None

    # -- projects
    def create_project(self, name: str, description: str = "") -> Project:
        def add(s: Session) -> Project:
            row = ProjectRow(name=name, description=description)
            s.add(row)
            s.flush()
            return Project.model_validate(row)

        return self._unique(add, f"project {name!r} already exists")

    def list_projects(self) -> list[Project]:
        with self._session() as s:
            return [Project.model_validate(row) for row in s.scalars(select(ProjectRow).order_by(ProjectRow.name))]

    # -- principals
    @staticmethod
    def _principal(s: Session, row: PrincipalRow) -> Principal:
        bindings = s.scalars(
            select(RoleBindingRow)
            .where(RoleBindingRow.principal_id == row.id)
            .order_by(RoleBindingRow.role, RoleBindingRow.project)
        )
        return Principal(
            name=row.name,
            kind=row.kind,
            disabled=row.disabled,
            created_at=row.created_at,
            roles=[RoleBinding(role=b.role, project=b.project) for b in bindings],
        )

    @staticmethod
    def _principal_row(s: Session, name: str) -> PrincipalRow:
        row = s.scalars(select(PrincipalRow).where(PrincipalRow.name == name)).first()
        if row is None:
            raise NotFound(f"no user or service account {name!r}", hint="list them with `aidc users list`")
        return row

    def create_principal(self, name: str, kind: str) -> Principal:
        def add(s: Session) -> Principal:
            row = PrincipalRow(name=name, kind=kind, disabled=False)
            s.add(row)
            s.flush()
            return self._principal(s, row)

        return self._unique(add, f"{name!r} already exists")

    def get_principal(self, name: str) -> Principal:
        with self._session() as s:
            return self._principal(s, self._principal_row(s, name))

    def list_principals(self) -> list[Principal]:
        with self._session() as s:
            return [self._principal(s, row) for row in s.scalars(select(PrincipalRow).order_by(PrincipalRow.name))]

    def set_disabled(self, name: str, disabled: bool) -> Principal:
        with self._session() as s:
            row = self._principal_row(s, name)
            row.disabled = disabled
            return self._principal(s, row)

    def grant(self, name: str, role: str, project: str) -> Principal:
        with self._session() as s:
            row = self._principal_row(s, name)
            if (
                s.scalars(
                    select(RoleBindingRow).where(
                        RoleBindingRow.principal_id == row.id,
                        RoleBindingRow.role == role,
                        RoleBindingRow.project == project,
                    )
                ).first()
                is None
            ):
                s.add(RoleBindingRow(principal_id=row.id, role=role, project=project))
                s.flush()
            return self._principal(s, row)

    def revoke(self, name: str, role: str, project: str) -> Principal:
        with self._session() as s:
            row = self._principal_row(s, name)
            gone = s.execute(
                delete(RoleBindingRow).where(
                    RoleBindingRow.principal_id == row.id,
                    RoleBindingRow.role == role,
                    RoleBindingRow.project == project,
                )
            )
            if not gone.rowcount:  # type: ignore[attr-defined]
                raise NotFound(
                    f"{name!r} has no role {role!r} on {project!r}", hint="see its roles with `aidc users list`"
                )
            return self._principal(s, row)

    # -- tokens
    @staticmethod
    def _token(row: ApiTokenRow, principal: str) -> ApiToken:
        return ApiToken(
            id=row.id,
            principal=principal,
            name=row.name,
            scopes=list(row.scopes),
            created_at=row.created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
            secret_hash=row.secret_hash,
        )

    def add_token(
        self, token_id: str, principal: str, name: str, secret_hash: str, scopes: list[str], expires_at: datetime | None
    ) -> ApiToken:
        def add(s: Session) -> ApiToken:
            owner = self._principal_row(s, principal)
            row = ApiTokenRow(
                id=token_id,
                principal_id=owner.id,
                name=name,
                secret_hash=secret_hash,
                scopes=scopes,
                expires_at=expires_at,
            )
            s.add(row)
            s.flush()
            return self._token(row, owner.name)

        return self._unique(add, f"token id {token_id!r} is taken")

    def _tokens(self, s: Session, *where: Any) -> list[ApiToken]:
        q = (
            select(ApiTokenRow, PrincipalRow.name)
            .join(PrincipalRow, ApiTokenRow.principal_id == PrincipalRow.id)
            .where(*where)
            .order_by(ApiTokenRow.created_at, ApiTokenRow.id)
        )
        return [self._token(row, name) for row, name in s.execute(q)]

    def get_token(self, token_id: str) -> ApiToken | None:
        with self._session() as s:
            found = self._tokens(s, ApiTokenRow.id == token_id)
            return found[0] if found else None

    def list_tokens(self, principal: str | None = None) -> list[ApiToken]:
        with self._session() as s:
            return self._tokens(s, *([PrincipalRow.name == principal] if principal else []))

    def revoke_token(self, token_id: str, at: datetime) -> ApiToken:
        with self._session() as s:
            row = s.get(ApiTokenRow, token_id)
            if row is None:
                raise NotFound(f"no token {token_id!r}", hint="list tokens with `aidc tokens list`")
            row.revoked_at = row.revoked_at or at
            s.flush()
            return self._tokens(s, ApiTokenRow.id == token_id)[0]

    def touch_token(self, token_id: str, at: datetime) -> None:
        with self._session() as s:
            row = s.get(ApiTokenRow, token_id)
            if row is not None:
                row.last_used_at = at

    def extend_token(self, token_id: str, expires_at: datetime) -> ApiToken:
        with self._session() as s:
            row = s.get(ApiTokenRow, token_id)
            if row is None:
                raise NotFound(f"no token {token_id!r}", hint="list tokens with `aidc tokens list`")
            row.expires_at = expires_at
            s.flush()
            return self._tokens(s, ApiTokenRow.id == token_id)[0]

    # -- audit
    @staticmethod
    def _append(s: Session, fields: dict[str, Any], last: tuple[int, str] | None = None) -> AuditEntry:
        if last is None:
            row = s.scalars(select(AuditEntryRow).order_by(AuditEntryRow.seq.desc()).limit(1)).first()
            last = (row.seq, row.hash) if row else (0, GENESIS)
        # What is hashed must be what reads back: plain JSON details, UTC time to the microsecond.
        fields = fields | {
            "seq": last[0] + 1,
            "at": fields["at"].astimezone(UTC),
            "details": json.loads(json.dumps(fields["details"], default=str)),
        }
        row = AuditEntryRow(**fields, prev_hash=last[1], hash=entry_hash(last[1], fields))
        s.add(row)
        s.flush()
        return AuditEntry.model_validate(row)

    def _retrying(self, fn: Callable[[Session], T]) -> T:
        for attempt in range(_APPEND_ATTEMPTS):
            try:
                with self._session() as s:
                    return fn(s)
            except (sa_exc.IntegrityError, sa_exc.OperationalError):
                # Another writer took the sequence number (PostgreSQL: unique violation; SQLite: a stale
                # snapshot or a held lock). Try again on a fresh snapshot.
                if attempt == _APPEND_ATTEMPTS - 1:
                    raise
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    def append_audit(
        self,
        *,
        at: datetime,
        actor: str,
        action: str,
        target: str,
        project: str | None,
        source: str,
        result: str,
        details: dict[str, Any],
    ) -> AuditEntry:
        fields = {
            "at": at,
            "actor": actor,
            "action": action,
            "target": target,
            "project": project,
            "source": source,
            "result": result,
            "details": details,
        }
        return self._retrying(lambda s: self._append(s, fields))

    def audit_entries(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        result: str | None = None,
        project: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        q = select(AuditEntryRow).order_by(AuditEntryRow.seq.desc()).limit(limit)
        if actor:
            q = q.where(AuditEntryRow.actor == actor)
        if action:
            q = q.where(AuditEntryRow.action.startswith(action, autoescape=True))
        if result:
            q = q.where(AuditEntryRow.result == result)
        if project:
            q = q.where(AuditEntryRow.project == project)
        if since:
            q = q.where(AuditEntryRow.at >= since.astimezone(UTC))
        if until:
            q = q.where(AuditEntryRow.at < until.astimezone(UTC))
        with self._session() as s:
            return [AuditEntry.model_validate(row) for row in s.scalars(q)]

    def iter_audit(self) -> Iterator[AuditEntry]:
        with self._sessions() as s:
            q = select(AuditEntryRow).order_by(AuditEntryRow.seq).execution_options(yield_per=1000)
            for row in s.scalars(q):
                yield AuditEntry.model_validate(row)

    def prune_audit(self, before: datetime, *, actor: str, source: str) -> AuditEntry | None:
        def prune(s: Session) -> AuditEntry | None:
            newest = s.scalars(select(AuditEntryRow).order_by(AuditEntryRow.seq.desc()).limit(1)).first()
            through = s.scalars(
                select(AuditEntryRow)
                .where(AuditEntryRow.at < before.astimezone(UTC))
                .order_by(AuditEntryRow.seq.desc())
                .limit(1)
            ).first()
            if newest is None or through is None:
                return None
            last, through_seq, through_hash = (newest.seq, newest.hash), through.seq, through.hash
            deleted = s.execute(delete(AuditEntryRow).where(AuditEntryRow.seq <= through_seq)).rowcount  # type: ignore[attr-defined]
            details = {
                "deleted": deleted,
                "through_seq": through_seq,
                "through_hash": through_hash,
                "older_than": before.astimezone(UTC).isoformat(),
            }
            return self._append(
                s,
                {
                    "at": datetime.now(UTC),
                    "actor": actor,
                    "action": PRUNE,
                    "target": "audit",
                    "project": None,
                    "source": source,
                    "result": "ok",
                    "details": details,
                },
                last,
            )

        return self._retrying(prune)

    # -- records' projects
    @staticmethod
    def _record_rows(kind: str) -> Any:
        if kind not in _PROJECT_ROWS:
            raise InvalidInput(
                f"records of kind {kind!r} have no project", hint=f"one of {', '.join(PROJECT_RECORD_KINDS)}"
            )
        return _PROJECT_ROWS[kind]

    @staticmethod
    def _keys(kind: str, ids: list[str]) -> list[Any]:
        return ids if kind == "run" else [int(i) for i in ids if str(i).isdigit()]

    def projects_of(self, kind: str, ids: list[str]) -> dict[str, str]:
        rows, keys, found = self._record_rows(kind), self._keys(kind, ids), {}
        with self._session() as s:
            for start in range(0, len(keys), 500):  # SQLite caps the parameters of one statement
                found.update(
                    {
                        str(i): p
                        for i, p in s.execute(
                            select(rows.id, rows.project).where(rows.id.in_(keys[start : start + 500]))
                        )
                    }
                )
        return found

    def assign_project(self, kind: str, id_: str, project: str) -> str:
        rows = self._record_rows(kind)
        with self._session() as s:
            if s.scalars(select(ProjectRow).where(ProjectRow.name == project)).first() is None:
                raise NotFound(f"no project {project!r}", hint="create it with `aidc projects create`")
            keys = self._keys(kind, [id_])
            row = s.get(rows, keys[0]) if keys else None
            if row is None:
                raise NotFound(f"no {kind.replace('_', ' ')} {id_!r}")
            before, row.project = row.project, project
            return str(before)
