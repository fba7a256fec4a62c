"""Tokens never appear in logs, audit entries, error messages or the database — only where they are handed out."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import pytest


def test_tokens_never_leak(world: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client, admin = world.client, world.headers("admin@*")
    made = client.post("/api/v1/principals/target/tokens", headers=admin, json={"name": "leak-check"}).json()
    fresh, revoked = made["token"], client.post("/api/v1/tokens", headers=admin, json={"name": "soon gone"}).json()
    client.delete(f"/api/v1/tokens/{revoked['id']}", headers=admin)
    token_id = fresh.split("_")[1]
    forged = f"aidc_{token_id}_" + "A" * 43  # a real id with a wrong secret
    secrets_ = [fresh, revoked["token"], forged, *world.tokens.values()]

    errors = []
    for token in (forged, revoked["token"], "not-even-a-token", fresh + "x"):
        for method, url in (("GET", "/api/v1/runs"), ("GET", "/api/v1/audit"), ("DELETE", "/api/v1/tokens/zzz")):
            response = client.request(method, url, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401
            errors.append(response.text)
    errors.append(client.get("/api/v1/principals", headers=world.headers("viewer@alpha")).text)
    errors.append(client.post("/api/v1/tokens", headers=admin, json={"name": fresh, "scopes": ["nope"]}).text)

    audit = "\n".join(e.model_dump_json() for e in world.platform.security.audit_export())
    db_path = world.platform.settings.metadata_url.removeprefix("sqlite:///")
    with sqlite3.connect(db_path) as conn:
        dump = "\n".join(conn.iterdump())
    for token in secrets_:
        secret = token.split("_", 2)[-1]
        for where, text in (("log", caplog.text), ("audit", audit), ("database", dump), ("errors", "\n".join(errors))):
            assert secret not in text, f"a token's secret is in the {where}"
    assert token_id in audit  # the non-secret id is what names a token
