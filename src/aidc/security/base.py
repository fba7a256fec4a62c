"""The SecurityStore contract: projects, principals, role bindings, API tokens, the audit chain, records' projects."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from aidc.security.records import ApiToken, AuditEntry, Principal, Project

# Records that belong to a project, by the kind name lineage and the API use for them.
PROJECT_RECORD_KINDS = ("run", "dataset_version", "model_version", "deployment")
DEFAULT_PROJECT = "default"


class SecurityStore(ABC):
    """Every method is one transaction. Audit entries are only ever appended (and pruned by retention)."""

    url: str

    # -- projects
    @abstractmethod
    def create_project(self, name: str, description: str = "") -> Project:
        """Conflict if it exists."""

    @abstractmethod
    def list_projects(self) -> list[Project]: ...

    # -- principals and their role bindings
    @abstractmethod
    def create_principal(self, name: str, kind: str) -> Principal:
        """Conflict if the name is taken."""

    @abstractmethod
    def get_principal(self, name: str) -> Principal: ...
    @abstractmethod
    def list_principals(self) -> list[Principal]: ...
    @abstractmethod
    def set_disabled(self, name: str, disabled: bool) -> Principal: ...
    @abstractmethod
    def grant(self, name: str, role: str, project: str) -> Principal:
        """Bind ``role`` on ``project`` (or ``*``); granting a binding it already has changes nothing."""

    @abstractmethod
    def revoke(self, name: str, role: str, project: str) -> Principal:
        """NotFound if the principal has no such binding."""

    # -- API tokens (hashes only)
    @abstractmethod
    def add_token(
        self, token_id: str, principal: str, name: str, secret_hash: str, scopes: list[str], expires_at: datetime | None
    ) -> ApiToken:
        """Conflict if ``token_id`` is taken."""

    @abstractmethod
    def get_token(self, token_id: str) -> ApiToken | None: ...
    @abstractmethod
    def list_tokens(self, principal: str | None = None) -> list[ApiToken]: ...
    @abstractmethod
    def revoke_token(self, token_id: str, at: datetime) -> ApiToken: ...
    @abstractmethod
    def touch_token(self, token_id: str, at: datetime) -> None: ...
    @abstractmethod
    def extend_token(self, token_id: str, expires_at: datetime) -> ApiToken:
        """Move a token's expiry to ``expires_at``; NotFound if there is no such token."""

    # -- the audit chain
    @abstractmethod
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
        """Append one entry, chained to the newest; concurrent writers each get their own sequence number."""

    @abstractmethod
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
        """The newest ``limit`` entries matching every filter given (``action`` matches a prefix), newest first."""

    @abstractmethod
    def iter_audit(self) -> Iterator[AuditEntry]:
        """Every entry, oldest first, streamed."""

    @abstractmethod
    def prune_audit(self, before: datetime, *, actor: str, source: str) -> AuditEntry | None:
        """Delete the entries older than ``before`` and append the ``audit.prune`` entry that accounts for them
        (the last deleted sequence number and hash) in the same transaction; None when nothing was that old."""

    # -- which project a run, dataset version, model version or deployment belongs to
    @abstractmethod
    def projects_of(self, kind: str, ids: list[str]) -> dict[str, str]: ...
    @abstractmethod
    def assign_project(self, kind: str, id_: str, project: str) -> str:
        """Move a record into ``project`` (which must exist); returns the project it was in."""

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        pass
