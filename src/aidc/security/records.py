"""What the security store hands back: projects, principals with their roles, API tokens, audit entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from aidc.store.metadata.records import Record


class Project(Record):
    name: str
    description: str
    created_at: datetime


class RoleBinding(Record):
    role: str
    project: str  # a project name, or "*" for every project


class Principal(Record):
    """A user or a service account (kind ``user`` | ``service``)."""

    name: str
    kind: str
    disabled: bool
    created_at: datetime
    roles: list[RoleBinding] = Field(default_factory=list)


class PublicApiToken(Record):
    """What anyone allowed to list a token sees of it (the API's TokenOut is exactly this)."""

    id: str
    principal: str
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiToken(PublicApiToken):
    """A token as stored: never the token itself, only its argon2 hash (left out of every dump)."""

    secret_hash: str = Field(exclude=True, repr=False)


class AuditEntry(Record):
    """One link of the audit chain; ``hash`` covers every other field and the previous entry's hash."""

    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    project: str | None
    source: str
    result: str  # ok | failed | denied
    details: dict[str, Any]
    prev_hash: str
    hash: str
