"""Roles, permissions and the caller's access: the vocabulary the RBAC policy is written in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase

ALL_PROJECTS = "*"  # a role bound on "*" holds in every project
PUBLIC = "public"  # a route anyone may call, without a token
AUTHENTICATED = "authenticated"  # any valid token: whoami, one's own tokens, the projects one belongs to

# Held per project: a researcher bound to project "vision" reads vision's runs and no one else's.
PROJECT_PERMISSIONS = (
    "runs:read",
    "datasets:read",
    "models:read",
    "models:promote",
    "deployments:read",
    "deployments:manage",
    "jobs:read",
    "jobs:submit",
    "jobs:cancel",
    "nodes:read",  # the data center's nodes, power and energy: held in any project, it shows them all
    "alerts:read",  # the data center's alerts (and those of the projects held): held in any project
)
# Not about any one project's records: only a role bound on every project ("*") grants these.
GLOBAL_PERMISSIONS = (
    "principals:admin",
    "projects:admin",
    "audit:read",
    "quotas:admin",
    "keys:admin",
    "nodes:manage",  # cordon, drain, uncordon: every project's work moves
    "alerts:manage",  # acknowledge, silence: what the whole data center is told
)
PERMISSIONS = PROJECT_PERMISSIONS + GLOBAL_PERMISSIONS
# What a token's scopes may name: everything, one permission, or one area (models:* = models:read + models:promote).
SCOPES = ("*", *sorted({p.split(":")[0] + ":*" for p in PERMISSIONS}), *PERMISSIONS)

ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset(PERMISSIONS),
    # nodes, deployments and alerts; reads the runs and models it deploys, never the datasets
    "operator": frozenset(
        {
            "runs:read",
            "models:read",
            "deployments:read",
            "deployments:manage",
            "jobs:read",
            "jobs:cancel",
            "nodes:read",
            "nodes:manage",
            "alerts:read",
            "alerts:manage",
        }
    ),
    "researcher": frozenset(
        {
            "runs:read",
            "datasets:read",
            "models:read",
            "models:promote",
            "deployments:read",
            "jobs:read",
            "jobs:submit",
            "jobs:cancel",
            "nodes:read",
            "alerts:read",
        }
    ),
    "viewer": frozenset(
        {"runs:read", "datasets:read", "models:read", "deployments:read", "jobs:read", "nodes:read", "alerts:read"}
    ),
}
PRINCIPAL_KINDS = ("user", "service")
# Names of users, service accounts and projects: they appear in URLs, audit targets and role bindings.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,199}$"


@dataclass(frozen=True)
class Access:
    """Who is calling, with which roles where, through which token scopes, and from where.

    ``scopes`` narrow a token below its owner's roles (``runs:read``, ``models:*``); ``*`` keeps them all.
    """

    principal: str
    kind: str  # user | service | local (the CLI on the store itself) | anonymous
    bindings: frozenset[tuple[str, str]] = frozenset()  # (role, project)
    scopes: tuple[str, ...] = ("*",)
    token_id: str | None = None
    source: str = ""
    expires_at: datetime | None = None  # when the token this caller came with expires (None: never, or no token)

    @classmethod
    def anonymous(cls, source: str) -> Access:
        return cls(principal="anonymous", kind="anonymous", scopes=(), source=source)

    @classmethod
    def local(cls, user: str, source: str) -> Access:
        """The CLI working on the metadata store directly: whoever can open it may do anything."""
        return cls(
            principal=f"local:{user}", kind="local", bindings=frozenset({("admin", ALL_PROJECTS)}), source=source
        )

    def in_scope(self, permission: str) -> bool:
        return any(fnmatchcase(permission, scope) for scope in self.scopes)

    def projects(self, permission: str) -> frozenset[str] | None:
        """The projects where this caller holds ``permission``: None means every project."""
        if not self.in_scope(permission):
            return frozenset()
        held = {project for role, project in self.bindings if permission in ROLES.get(role, ())}
        if ALL_PROJECTS in held:
            return None
        return frozenset() if permission in GLOBAL_PERMISSIONS else frozenset(held)

    def allows(self, permission: str, project: str | None = None) -> bool:
        """Whether the caller holds ``permission`` in ``project`` (or, with no project, anywhere)."""
        if permission == PUBLIC:
            return True
        if permission == AUTHENTICATED:
            return self.kind != "anonymous"
        projects = self.projects(permission)
        if projects is None:
            return True
        return project in projects if project is not None else bool(projects)

    def to_json(self) -> dict[str, object]:
        return {
            "principal": self.principal,
            "kind": self.kind,
            "token_id": self.token_id,
            "roles": [{"role": r, "project": p} for r, p in sorted(self.bindings)],
            "scopes": list(self.scopes),
        }


def local_access() -> Access:
    """The CLI acting on this machine's store directly (no server): audited as ``local:<os user>`` from
    ``cli@<host>``; whoever can open the store may do anything."""
    import getpass
    import socket

    return Access.local(getpass.getuser(), f"cli@{socket.gethostname()}")
