"""The role table and a caller's access, in-process: what each role may do where, as docs/control-plane.md lists it.

The authorization matrix (tests/api/test_authz_matrix.py) proves the same grants through the app's routes; this file
states them without the app, so it also runs under mutmut (docs/testing.md): every role's permissions written out
by hand from the docs' "Roles and projects" table, each grant and denial the matrix implies for a role bound to one
project and to every project, token scopes narrowing them, and who the anonymous and local callers are.
"""

from __future__ import annotations

import getpass
import socket
from datetime import datetime

import pytest

from aidc.security.roles import AUTHENTICATED, PERMISSIONS, PUBLIC, ROLES, SCOPES, Access, local_access

VIEWER = {"runs:read", "datasets:read", "models:read", "deployments:read", "jobs:read", "nodes:read", "alerts:read"}
# the docs' table, row by row
DOCUMENTED = {
    "viewer": VIEWER,
    "researcher": VIEWER | {"models:promote", "jobs:submit", "jobs:cancel"},  # "as viewer, and promote, submit, cancel"
    "operator": {  # read runs, models, deployments, jobs; manage deployments; cancel jobs; nodes and alerts; no datasets
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
    },
    "admin": VIEWER
    | {"models:promote", "jobs:submit", "jobs:cancel", "deployments:manage", "nodes:manage", "alerts:manage"}
    | {"principals:admin", "projects:admin", "audit:read", "quotas:admin", "keys:admin"},
}
# held only through a binding on every project ("bound on `*` also …"; quotas and master keys: the data center's)
ON_EVERY_PROJECT = {"principals:admin", "projects:admin", "audit:read", "quotas:admin", "keys:admin", "nodes:manage",
                    "alerts:manage"}  # fmt: skip


def user(*bindings: tuple[str, str], scopes: tuple[str, ...] = ("*",)) -> Access:
    return Access(principal="alice", kind="user", bindings=frozenset(bindings), scopes=scopes, source="10.0.0.7")


def test_each_role_holds_the_permissions_the_docs_list() -> None:
    assert {role: set(held) for role, held in ROLES.items()} == DOCUMENTED
    assert set(PERMISSIONS) == set().union(*DOCUMENTED.values())


@pytest.mark.parametrize("role", sorted(DOCUMENTED))
@pytest.mark.parametrize("permission", sorted(set().union(*DOCUMENTED.values())))
def test_a_role_bound_to_one_project_grants_its_project_permissions_there_only(role: str, permission: str) -> None:
    caller = user((role, "alpha"))
    granted = permission in DOCUMENTED[role] and permission not in ON_EVERY_PROJECT
    assert caller.allows(permission, "alpha") is granted
    assert caller.allows(permission) is granted  # "anywhere": the question a list route asks
    assert caller.allows(permission, "beta") is False
    assert caller.projects(permission) == (frozenset({"alpha"}) if granted else frozenset())


@pytest.mark.parametrize("role", sorted(DOCUMENTED))
@pytest.mark.parametrize("permission", sorted(set().union(*DOCUMENTED.values())))
def test_a_role_bound_on_every_project_grants_all_it_holds_everywhere(role: str, permission: str) -> None:
    caller = user((role, "*"))
    granted = permission in DOCUMENTED[role]
    assert caller.allows(permission, "beta") is granted
    assert caller.allows(permission) is granted
    assert caller.projects(permission) == (None if granted else frozenset())


def test_roles_in_several_projects_add_up_project_by_project() -> None:
    caller = user(("viewer", "alpha"), ("researcher", "beta"), ("operator", "gamma"))
    assert caller.projects("runs:read") == {"alpha", "beta", "gamma"}
    assert caller.projects("jobs:submit") == {"beta"}
    assert caller.projects("datasets:read") == {"alpha", "beta"}
    assert caller.projects("deployments:manage") == {"gamma"}
    assert caller.allows("jobs:submit", "alpha") is False
    assert caller.allows("jobs:submit", "beta") is True
    # an operator in one project is not the data center's operator
    assert caller.allows("nodes:manage") is False
    assert caller.projects("nodes:manage") == frozenset()


def test_a_role_bound_on_every_project_wins_over_one_project() -> None:
    caller = user(("viewer", "alpha"), ("viewer", "*"))
    assert caller.projects("runs:read") is None
    assert caller.allows("runs:read", "zeta") is True


def test_a_role_the_table_does_not_know_grants_nothing() -> None:
    caller = user(("superuser", "*"), ("superuser", "alpha"))
    assert [p for p in PERMISSIONS if caller.allows(p) or caller.allows(p, "alpha")] == []
    assert caller.projects("runs:read") == frozenset()


def test_a_token_scope_narrows_the_owners_roles() -> None:
    caller = user(("admin", "*"), scopes=("runs:read",))
    assert caller.allows("runs:read", "beta") is True
    assert caller.allows("models:read", "beta") is False
    assert caller.projects("models:read") == frozenset()
    assert {p for p in PERMISSIONS if caller.allows(p, "beta")} == {"runs:read"}


def test_an_area_scope_keeps_every_permission_of_that_area() -> None:
    caller = user(("researcher", "alpha"), scopes=("models:*", "jobs:read"))
    allowed = {p for p in PERMISSIONS if caller.allows(p, "alpha")}
    assert allowed == {"models:read", "models:promote", "jobs:read"}
    assert caller.in_scope("models:promote") is True
    assert caller.in_scope("modelsXpromote") is False  # a pattern, matched whole


def test_a_scope_never_grants_what_the_roles_do_not() -> None:
    caller = user(("viewer", "alpha"), scopes=("*",))
    assert caller.allows("models:promote", "alpha") is False
    assert caller.allows("keys:admin") is False


def test_scopes_a_token_may_name() -> None:
    assert SCOPES[0] == "*"
    assert {"models:*", "jobs:*", "keys:*"} <= set(SCOPES)
    assert set(PERMISSIONS) <= set(SCOPES)


def test_public_routes_are_open_to_anyone_and_authenticated_ones_to_any_token() -> None:
    nobody = Access.anonymous("203.0.113.9")
    assert nobody.allows(PUBLIC) is True
    assert nobody.allows(AUTHENTICATED) is False
    assert [p for p in PERMISSIONS if nobody.allows(p) or nobody.allows(p, "default")] == []
    # a token with no role at all still passes "authenticated" (whoami, its own tokens), and nothing else
    for kind in ("user", "service", "local"):
        bare = Access(principal="bob", kind=kind, scopes=())
        assert bare.allows(AUTHENTICATED) is True
        assert bare.allows(PUBLIC) is True
        assert bare.allows("runs:read") is False


def test_the_anonymous_caller_is_named_and_has_no_scopes() -> None:
    nobody = Access.anonymous("203.0.113.9")
    assert (nobody.principal, nobody.kind, nobody.bindings, nobody.scopes, nobody.source) == (
        "anonymous",
        "anonymous",
        frozenset(),
        (),
        "203.0.113.9",
    )
    assert (nobody.token_id, nobody.expires_at) == (None, None)


def test_the_local_cli_is_an_admin_on_every_project() -> None:
    cli = Access.local("ops", "cli@host-1")
    assert (cli.principal, cli.kind, cli.source, cli.scopes) == ("local:ops", "local", "cli@host-1", ("*",))
    assert cli.bindings == {("admin", "*")}
    assert all(cli.allows(p, "any-project") for p in PERMISSIONS)


def test_local_access_names_the_os_user_and_the_host() -> None:
    cli = local_access()
    assert cli.principal == f"local:{getpass.getuser()}"
    assert cli.source == f"cli@{socket.gethostname()}"
    assert cli.kind == "local"


def test_whoami_lists_roles_sorted_and_the_tokens_scopes() -> None:
    caller = Access(
        principal="ci-bot",
        kind="service",
        bindings=frozenset({("viewer", "vision"), ("researcher", "audio"), ("viewer", "audio")}),
        scopes=("runs:read", "models:*"),
        token_id="3f9a1c2e",
        source="10.0.0.8",
        expires_at=datetime(2027, 1, 1),
    )
    assert caller.to_json() == {
        "principal": "ci-bot",
        "kind": "service",
        "token_id": "3f9a1c2e",
        "roles": [
            {"role": "researcher", "project": "audio"},
            {"role": "viewer", "project": "audio"},
            {"role": "viewer", "project": "vision"},
        ],
        "scopes": ["runs:read", "models:*"],
    }
