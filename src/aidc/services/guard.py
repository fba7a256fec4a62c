"""The one authorization guard every service verb goes through: the caller's project scope and the audit entry.

A record of a project the caller cannot see is NotFound with the very message a missing record gets, so ids and
names cannot be probed; the attempt is audited as denied. A caller who can see a record but not change it is told
so (PermissionDenied, naming the project). Every change is audited as ``ok`` or ``failed`` in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any

from aidc.errors import AidcError, NotFound, PermissionDenied
from aidc.security.roles import Access
from aidc.security.service import Security

JSON = dict[str, Any]

# Where denials go while a caller defers their audit entries (see Guard.deferring_denials); None: written at once.
_deferred: ContextVar[list[Callable[[], None]] | None] = ContextVar("aidc_deferred_denials", default=None)


# The metadata store's own words for a missing record, by kind: a hidden record gets exactly these.
_LISTED_WITH = {
    "run": "list runs with `aidc runs list`",
    "model": "list models with `aidc models list`",
    "model version": "list models with `aidc models list`",
    "deployment": "list them with `aidc deployments list`",
    "job": "list jobs with `aidc jobs list`",
    "project": "list projects with `aidc projects list`",
    "node": "list nodes with `aidc nodes list`",
    "alert": "list alerts with `aidc alerts list`",
    "silence": "list silences with `aidc alerts list --silences`",
}


def not_found(kind: str, key: str) -> NotFound:
    """The one answer for a record that is missing and for one the caller may not see: the same words either way."""
    return NotFound(f"no {kind} {key!r}", hint=_LISTED_WITH[kind])


class Guard:
    def __init__(self, security: Security) -> None:
        self.security = security

    # -- scope
    @staticmethod
    def projects(access: Access, permission: str) -> list[str] | None:
        """The projects a list should be limited to for ``access`` (None: every project)."""
        allowed = access.projects(permission)
        return None if allowed is None else sorted(allowed)

    def require(
        self, access: Access, permission: str, project: str, action: str, target: str, hidden: NotFound
    ) -> None:
        """Pass when ``access`` holds ``permission`` in ``project``; else audit the denial and raise ``hidden`` (it
        cannot see the record: the error a missing one gets) or PermissionDenied (it can see it but not do this)."""
        if access.allows(permission, project):
            return
        readable = access.allows(permission.split(":")[0] + ":read", project)
        error: AidcError
        if readable:
            error = PermissionDenied(
                f"{access.principal} may not change {target} (project {project})",
                hint="ask an admin for a role that may: `aidc users grant`",
            )
        else:
            error = hidden
        self._deny(access, action, target, error, project)
        raise error

    def require_somewhere(self, access: Access, permission: str, action: str, target: str) -> None:
        """Pass when ``access`` holds ``permission`` in some project (a global one: on every project); else audit
        the denial and raise PermissionDenied. For what belongs to the data center, not to a project (nodes)."""
        if access.allows(permission):
            return
        error = PermissionDenied(
            f"{access.principal} may not {action.split('.')[-1]} {target}",
            hint=f"this needs {permission}: ask an admin for a role that has it (`aidc users grant`)",
        )
        self._deny(access, action, target, error, None)
        raise error

    def visible(
        self, access: Access, permission: str, kind: str, item: JSON, action: str, target: str, hidden: NotFound
    ) -> JSON:
        """``item`` (a record's JSON) with its ``project``, once ``access`` may ``permission`` there."""
        project = item.get("project") or self.security.project_of(kind, str(item["id"]))
        self.require(access, permission, project, action, target, hidden)
        return item | {"project": project}

    def _deny(self, access: Access, action: str, target: str, error: AidcError, project: str | None) -> None:
        write = partial(self.security.denied, access, action, target, error, project=project)
        pending = _deferred.get()
        if pending is None:
            write()
        else:
            pending.append(write)

    @staticmethod
    @contextmanager
    def deferring_denials() -> Iterator[list[Callable[[], None]]]:
        """Within the block, the audit entries of denied reads are collected (to be written by the caller, e.g. off
        the API's event loop) instead of written at once."""
        pending: list[Callable[[], None]] = []
        reset = _deferred.set(pending)
        try:
            yield pending
        finally:
            _deferred.reset(reset)

    # -- audit
    def audited(
        self, access: Access, action: str, target: str, *, project: str | None = None, **details: Any
    ) -> AbstractContextManager[dict[str, Any]]:
        """Audit the block as ``ok``, or as ``failed`` with the error's code; the block may add details."""
        return self.security.audited(access, action, target, project=project, **details)

    def record(self, access: Access, action: str, target: str, **details: Any) -> None:
        self.security.record(access, action, target, **details)
