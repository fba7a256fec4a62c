"""The server remembers verified tokens for a few seconds: what a user notices is that revoking, disabling and
role changes still take effect — at once through the same server, within the cache's seconds from elsewhere."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from aidc.errors import Unauthenticated
from aidc.security.roles import Access
from aidc.security.service import Security
from aidc.security.sql import SqlSecurityStore

LOCAL = Access.local("tester", "test")


@pytest.fixture()
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'aidc.db'}"


def _user(security: Security, name: str = "alice") -> str:
    security.create_project(LOCAL, "vision")
    security.create_principal(LOCAL, name)
    security.grant(LOCAL, name, "viewer", "vision")
    return str(security.create_token(LOCAL, name="t", principal=name)["token"])


def test_a_revoked_token_stops_working_at_once_through_the_same_server(url: str) -> None:
    server = Security(SqlSecurityStore(url), auth_cache_s=300)
    token = _user(server)
    me = server.authenticate(token, "10.0.0.1")
    assert me.principal == "alice" and server.authenticate(token, "10.0.0.2").source == "10.0.0.2"
    server.revoke_token(LOCAL, me.token_id or "")
    with pytest.raises(Unauthenticated, match="revoked"):
        server.authenticate(token, "10.0.0.1")


def test_a_disabled_user_stops_working_at_once_and_role_changes_show_at_once(url: str) -> None:
    server = Security(SqlSecurityStore(url), auth_cache_s=300)
    token = _user(server)
    assert not server.authenticate(token, "x").allows("models:promote", "vision")
    server.grant(LOCAL, "alice", "researcher", "vision")
    assert server.authenticate(token, "x").allows("models:promote", "vision")
    server.set_disabled(LOCAL, "alice", True)
    with pytest.raises(Unauthenticated, match="alice is disabled"):
        server.authenticate(token, "x")


def test_a_revocation_made_elsewhere_takes_effect_within_the_cache_time(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aidc.security import auth_cache

    later = 0.0  # the cache's clock, moved on by the test instead of waiting for it

    monkeypatch.setattr(auth_cache, "time", SimpleNamespace(monotonic=lambda: time.monotonic() + later))
    server = Security(SqlSecurityStore(url), auth_cache_s=300)
    token = _user(server)
    token_id = server.authenticate(token, "x").token_id or ""
    elsewhere = Security(SqlSecurityStore(url))  # e.g. `aidc tokens revoke` on the server's host, no login
    elsewhere.revoke_token(LOCAL, token_id)
    assert server.authenticate(token, "x").token_id == token_id  # (kept: the store is not asked yet)
    later = 301.0  # the cache time is over
    with pytest.raises(Unauthenticated, match="revoked"):
        server.authenticate(token, "x")
    uncached = Security(SqlSecurityStore(url), auth_cache_s=0)  # 0: the store is asked on every request
    with pytest.raises(Unauthenticated):
        uncached.authenticate(token, "x")


def test_a_wrong_token_is_never_taken_for_a_cached_one(url: str) -> None:
    server = Security(SqlSecurityStore(url), auth_cache_s=300)
    token = _user(server)
    server.authenticate(token, "x")
    for wrong in (token[:-1] + ("A" if token[-1] != "A" else "B"), token + "x", token.split("_", 2)[0]):
        with pytest.raises(Unauthenticated) as exc:
            server.authenticate(wrong, "x")
        assert token.split("_", 2)[2] not in str(exc.value)


def test_the_cache_holds_no_token(url: str) -> None:
    server = Security(SqlSecurityStore(url), auth_cache_s=300)
    token = _user(server)
    server.authenticate(token, "x")
    held = repr(server.verified._entries) + repr(server._verified)
    assert token not in held and token.split("_", 2)[2] not in held
