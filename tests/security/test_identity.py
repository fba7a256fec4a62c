"""Tokens, bootstrap and roles as a user meets them: shown once, hashed, expiring, revocable, scoped; no lockout."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aidc.errors import Conflict, InvalidInput, PermissionDenied, Unauthenticated
from aidc.platform import Platform
from aidc.security.roles import Access, local_access
from aidc.security.service import Security
from aidc.settings import Settings


@pytest.fixture()
def platform(tmp_path: Path) -> Iterator[Platform]:
    p = Platform(Settings(home=tmp_path / "home"))
    yield p
    p.security.store.close()


def _user(
    security: Security, local: Access, name: str, role: str = "researcher", project: str = "default", **token: object
) -> str:
    security.create_principal(local, name)
    security.grant(local, name, role, project)
    return str(security.create_token(local, name="t", principal=name, **token)["token"])  # type: ignore[arg-type]


def test_first_start_makes_an_admin_whose_token_is_returned_once(platform: Platform) -> None:
    security, local = platform.security, local_access()
    token = security.bootstrap(local)
    assert token and re.fullmatch(r"aidc_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", token)  # 43 url-safe chars = 256 bits
    me = security.authenticate(token, "127.0.0.1")
    assert me.principal == "admin" and me.allows("principals:admin") and me.allows("runs:read", "any-project")
    assert security.bootstrap(local) is None  # never again, and the token is nowhere to be read back
    [stored] = security.list_tokens("admin")
    assert stored.secret_hash.startswith("$argon2id$") and token not in stored.secret_hash


def test_the_admin_token_can_be_given_instead(platform: Platform) -> None:
    security, local = platform.security, local_access()
    with pytest.raises(InvalidInput, match="shorter"):
        security.bootstrap(local, "too-short")
    with pytest.raises(InvalidInput) as short:
        security.bootstrap(local, "y" * 31)  # one short of the floor
    assert short.value.message == "AIDC_ADMIN_TOKEN is shorter than 32 characters"
    assert short.value.hint == (  # how to make a good one
        "use a long random value, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
    )
    assert not security.list_principals()  # refused before anything was made
    given = "operator-chosen-" + "x" * 32
    assert security.bootstrap(local, given) is None
    assert security.authenticate(given, "10.0.0.1").principal == "admin"


def test_an_admin_token_of_exactly_32_characters_is_accepted(platform: Platform) -> None:
    security, local = platform.security, local_access()
    given = "z" * 32
    assert security.bootstrap(local, given) is None
    assert security.authenticate(given, "10.0.0.1").principal == "admin"
    # listed under a non-secret id: "x" and the first 11 hex digits of the token's SHA-256 (an aidc token's own id
    # is the 8 hex digits it carries)
    [stored] = security.list_tokens("admin")
    assert stored.id == "x" + hashlib.sha256(given.encode()).hexdigest()[:11]


def test_wrong_revoked_expired_and_disabled_tokens_are_refused(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    security, local = platform.security, local_access()
    security.bootstrap(local)
    token = _user(security, local, "alice")
    assert security.authenticate(token, "x").principal == "alice"
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")  # right id, wrong secret
    with pytest.raises(Unauthenticated, match="invalid") as exc:
        security.authenticate(forged, "x")
    assert forged not in str(exc.value) and token not in str(exc.value)
    security.set_disabled(local, "alice", True)
    with pytest.raises(Unauthenticated, match="is disabled"):
        security.authenticate(token, "x")
    security.set_disabled(local, "alice", False)
    token_id = token.split("_")[1]
    security.revoke_token(local, token_id)
    with pytest.raises(Unauthenticated, match="is revoked"):
        security.authenticate(token, "x")
    soon = _user(security, local, "erin", expires_days=1)
    later = datetime.now(UTC) + timedelta(days=1, seconds=1)
    monkeypatch.setattr("aidc.security.service._now", lambda: later)
    with pytest.raises(Unauthenticated, match="is expired"):
        security.authenticate(soon, "x")
    never = _user(security, local, "bob", expires_days=0)
    assert security.list_tokens("bob")[0].expires_at is None and security.authenticate(never, "x")


def test_scopes_narrow_a_token_and_cannot_be_widened_by_it(platform: Platform) -> None:
    security, local = platform.security, local_access()
    token = _user(security, local, "carol", scopes=["runs:read"])
    me = security.authenticate(token, "x")
    assert me.allows("runs:read", "default") and not me.allows("models:read", "default")
    with pytest.raises(PermissionDenied):
        security.create_token(me, name="wider", scopes=["*"])
    assert security.create_token(me, name="same", scopes=["runs:read"])["scopes"] == ["runs:read"]
    with pytest.raises(InvalidInput, match="unknown scope"):
        security.create_token(local, name="x", principal="carol", scopes=["runs:write"])


def test_roles_hold_only_on_their_projects(platform: Platform) -> None:
    security, local = platform.security, local_access()
    security.create_project(local, "vision")
    me = security.authenticate(_user(security, local, "dan", "viewer", "vision"), "x")
    assert me.allows("runs:read", "vision") and not me.allows("runs:read", "default")
    assert not me.allows("models:promote", "vision") and me.projects("runs:read") == {"vision"}
    assert [p.name for p in security.list_projects(me)] == ["vision"]
    with pytest.raises(InvalidInput, match="unknown role"):
        security.grant(local, "dan", "owner", "vision")


def test_no_one_can_lock_the_platform_out(platform: Platform) -> None:
    security, local = platform.security, local_access()
    admin = security.authenticate(security.bootstrap(local) or "", "x")
    with pytest.raises(Conflict, match="last admin"):
        security.set_disabled(local, "admin", True)
    with pytest.raises(Conflict, match="last admin"):
        security.revoke_role(local, "admin", "admin", "*")
    with pytest.raises(Conflict, match="themselves"):
        security.set_disabled(admin, "admin", True)
    with pytest.raises(Conflict, match="this request is made with"):
        security.revoke_token(admin, admin.token_id or "")
    failed = security.audit_list(result="failed")
    assert {e.action for e in failed} == {"principal.disable", "role.revoke", "token.revoke"}
