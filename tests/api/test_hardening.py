"""The API as an attacker meets it: tokens checked before bodies are read, bodies capped, alias bombs refused,
token lifetimes bounded, wrong secrets throttled, forged forwarding headers ignored, floods sampled, headers set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aidc.api import create_app
from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings

PROXY = "10.0.0.7"


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A control plane with a 1 MB body cap that believes X-Forwarded-For only from PROXY."""
    platform = Platform(
        Settings(home=tmp_path_factory.mktemp("hardening"), max_body_mb=1, trusted_proxies=f"{PROXY}/32")
    )
    local = local_access()
    platform.security.create_project(local, "alpha")
    platform.security.create_principal(local, "ana")
    platform.security.grant(local, "ana", "researcher", "alpha")
    token = platform.security.create_token(local, name="ana", principal="ana", expires_days=1)["token"]

    class Door:
        pass

    d = Door()
    d.platform, d.token = platform, token  # type: ignore[attr-defined]
    d.auth = {"Authorization": f"Bearer {token}"}  # type: ignore[attr-defined]
    with TestClient(create_app(platform)) as client:
        d.client = client  # type: ignore[attr-defined]
        yield d
    platform.security.store.close()
    platform.close()


# -- 7: authenticate before the body; cap the body
def test_anonymous_malformed_body_gets_401_unparsed(door: Any) -> None:
    response = door.client.post("/api/v1/jobs", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 401  # not 422: nothing about the body is told to a stranger
    assert response.json()["error"]["code"] == "unauthenticated"


def test_anonymous_20_mb_body_gets_401(door: Any) -> None:
    big = b"x" * (20 * 2**20)
    response = door.client.post("/api/v1/jobs", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 401


def test_authenticated_body_over_the_cap_gets_413(door: Any) -> None:
    big = json.dumps({"pipeline": "x" * (2 * 2**20), "project": "alpha"})
    response = door.client.post("/api/v1/jobs", content=big, headers=door.auth | {"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_chunked_body_over_the_cap_gets_413(door: Any) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap counts what is read
        yield b'{"project": "alpha", "pipeline": "'
        for _ in range(3):
            yield b"x" * 2**20
        yield b'"}'

    response = door.client.post(
        "/api/v1/jobs", content=chunks(), headers=door.auth | {"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_malformed_body_with_a_token_is_still_422(door: Any) -> None:
    response = door.client.post(
        "/api/v1/jobs", content=b"{not json", headers=door.auth | {"Content-Type": "application/json"}
    )
    assert response.status_code == 422


# -- 8: YAML alias bombs
# 16 levels: 65,536 copies of [x, x] once expanded (without the fix the server builds them all before it finds
# the document is not a pipeline); every level more doubles it.
BOMB = "\n".join(["a0: &a0 [x, x]"] + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 17)]) + "\n"


def test_alias_bomb_is_refused_naming_line_and_column(door: Any) -> None:
    response = door.client.post("/api/v1/jobs", json={"pipeline": BOMB, "project": "alpha"}, headers=door.auth)
    job = response.json()
    assert job["state"] == "failed", job  # a spec that fails its check is recorded as a failed job
    error = job["last_error"]
    assert error["code"] == "invalid_spec"
    assert "YAML aliases: the document expands to" in error["message"]
    assert "pipeline.yaml:16:" in error["message"]  # the anchor repeated the most, where it is written


# -- 9: token lifetimes, no-store, throttling
def test_child_token_cannot_outlive_its_parent(door: Any) -> None:
    forever = door.client.post("/api/v1/tokens", json={"name": "forever", "expires_days": 0}, headers=door.auth)
    assert forever.status_code == 403
    longer = door.client.post("/api/v1/tokens", json={"name": "longer", "expires_days": 30}, headers=door.auth)
    assert longer.status_code == 403
    default = door.client.post("/api/v1/tokens", json={"name": "default"}, headers=door.auth)
    assert default.status_code == 201
    expires = datetime.fromisoformat(default.json()["expires_at"])
    assert expires <= datetime.now(UTC) + timedelta(days=1)  # cut to the parent's day, not the default 30


def test_child_token_cannot_widen_its_scopes(door: Any) -> None:
    narrow = door.client.post("/api/v1/tokens", json={"name": "ro", "scopes": ["runs:read"]}, headers=door.auth)
    headers = {"Authorization": f"Bearer {narrow.json()['token']}"}
    wider = door.client.post("/api/v1/tokens", json={"name": "rw", "scopes": ["jobs:submit"]}, headers=headers)
    assert wider.status_code == 403


def test_default_token_lifetime_is_under_90_days() -> None:
    assert 0 < Settings().token_ttl_days < 90


def test_responses_carrying_secrets_are_not_stored(door: Any) -> None:
    response = door.client.post("/api/v1/tokens", json={"name": "cache"}, headers=door.auth)
    assert response.status_code == 201 and "token" in response.json()
    assert response.headers["cache-control"] == "no-store"


def test_wrong_secrets_are_throttled_per_source_but_a_working_user_is_not(door: Any) -> None:
    security = door.platform.security
    token_id = door.token.split("_")[1]
    forged = f"aidc_{token_id}_" + "A" * 43
    attacker = TestClient(door.client.app, client=("192.0.2.66", 4000))
    codes = [
        attacker.get("/api/v1/whoami", headers={"Authorization": f"Bearer {forged}"}).status_code for _ in range(12)
    ]
    assert codes[:10] == [401] * 10
    assert codes[-1] == 429  # refused unhashed, with a time to come back
    refused = attacker.get("/api/v1/whoami", headers={"Authorization": f"Bearer {forged}"})
    assert 0 < int(refused.headers["retry-after"]) <= 66
    # the token id under attack still works for its owner, whose secret this server has verified before
    assert door.client.get("/api/v1/whoami", headers=door.auth).status_code == 200
    security.throttle.clock = lambda: 10**9  # … and the refusal does not last: a minute later it has drained
    assert security.throttle.retry_after(("source", "192.0.2.66")) == 0
    security.throttle.clock = __import__("time").monotonic


# -- 10: forwarded headers and floods
def test_x_forwarded_for_is_believed_only_from_a_configured_proxy(door: Any) -> None:
    door.client.get("/api/v1/whoami", headers={"X-Forwarded-For": "203.0.113.9"})
    via_proxy = TestClient(door.client.app, client=(PROXY, 4000))
    via_proxy.get("/api/v1/runs", headers={"X-Forwarded-For": "1.2.3.4, 198.51.100.5"})
    sources = {e.source for e in door.platform.security.audit_list(result="denied", limit=1000)}
    assert "203.0.113.9" not in sources  # a client naming itself is not believed
    assert "testclient" in sources
    assert "198.51.100.5" in sources  # the address the trusted proxy saw (not what the client wrote left of it)
    assert "1.2.3.4" not in sources


def test_a_flood_of_anonymous_requests_is_counted_not_written_row_by_row(door: Any) -> None:
    security = door.platform.security
    before = len(security.audit_list(limit=100_000))
    flood = TestClient(door.client.app, client=("192.0.2.99", 4000))
    for _ in range(300):
        assert flood.get("/api/v1/datasets").status_code == 401
    written = len(security.audit_list(limit=100_000)) - before
    assert written <= 3  # the route's sample, not 300 rows
    security.rejections.clock = lambda: 10**9  # the minute ends: the next refusal writes the count
    flood.get("/api/v1/datasets")
    security.rejections.clock = __import__("time").monotonic
    summary = security.audit_list(action="auth.rejected", limit=1)[0]
    assert summary.details["not_written"] >= 298
    assert summary.details["top_sources"]["192.0.2.99"] >= 298
    assert security.audit_verify().ok


# -- 11: security headers
def test_security_headers(door: Any) -> None:
    response = door.client.get("/api/v1/health")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "strict-transport-security" not in response.headers  # plain HTTP: HSTS would be ignored anyway
    https = TestClient(door.client.app, base_url="https://testserver")
    assert "max-age=" in https.get("/api/v1/health").headers["strict-transport-security"]
