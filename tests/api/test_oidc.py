"""Single sign-on against a real (local) OIDC issuer: an HTTP server in this test serving discovery and a JWKS
with an RSA key made here; tokens signed by it are checked, mapped to aidc users, and audited."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey

from aidc.api import create_app
from aidc.platform import Platform
from aidc.security import oidc
from aidc.security.roles import local_access
from aidc.settings import Settings

AUDIENCE = "aidc-control-plane"


@dataclass
class Issuer:
    url: str
    keys: list[RSAKey]
    requests: list[str] = field(default_factory=list)

    def token(self, sub: str = "alice", *, key: RSAKey | None = None, kid: str | None = None, **claims: Any) -> str:
        key = key or self.keys[0]
        now = int(time.time())
        body = {"iss": self.url, "aud": AUDIENCE, "sub": sub, "iat": now, "nbf": now, "exp": now + 300} | claims
        return jwt.encode(
            {"alg": "RS256", "kid": kid or key.kid}, {k: v for k, v in body.items() if v is not None}, key
        )


@pytest.fixture()
def issuer() -> Iterator[Issuer]:
    state = Issuer("", [RSAKey.generate_key(2048, parameters={"kid": "k1"})])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            state.requests.append(self.path)
            if self.path == "/.well-known/openid-configuration":
                body = {
                    "issuer": state.url,
                    "jwks_uri": state.url + "/jwks",
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            elif self.path == "/jwks":
                body = {"keys": [k.as_dict(private=False) for k in state.keys]}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture()
def api(issuer: Issuer, tmp_path: Path) -> Iterator[tuple[TestClient, Platform]]:
    platform = Platform(Settings(home=tmp_path / "home", oidc_issuer=issuer.url, oidc_audience=AUDIENCE))
    local = local_access()
    platform.security.create_principal(local, "alice")
    platform.security.grant(local, "alice", "admin", "*")
    platform.security.create_principal(local, "bob")  # exists, but holds no role
    with TestClient(create_app(platform)) as client:
        yield client, platform
    platform.security.store.close()
    platform.close()


def _get(client: TestClient, path: str, token: str) -> Any:
    return client.get(f"/api/v1{path}", headers={"Authorization": f"Bearer {token}"})


def test_a_valid_token_acts_as_its_aidc_user_with_that_users_roles(
    issuer: Issuer, api: tuple[TestClient, Platform]
) -> None:
    client, platform = api
    me = _get(client, "/whoami", issuer.token("alice"))
    assert me.status_code == 200 and me.json()["principal"] == "alice"
    assert me.json()["roles"] == [{"role": "admin", "project": "*"}]
    made = client.post(
        "/api/v1/projects",
        json={"name": "vision", "description": ""},
        headers={"Authorization": f"Bearer {issuer.token('alice')}"},
    )
    assert made.status_code == 201
    entry = platform.security.audit_list(action="project.create")[0]
    assert entry.actor == "alice" and entry.details["token_id"] == "oidc"
    # RBAC still decides: bob signs in fine but has no role.
    assert _get(client, "/principals", issuer.token("bob")).status_code == 403
    assert issuer.requests.count("/.well-known/openid-configuration") == 1  # discovered once, then cached
    assert issuer.requests.count("/jwks") == 1


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "wrong audience",
        "wrong issuer",
        "bad signature",
        "unknown kid",
        "not yet valid",
        "unknown user",
        "no exp",
    ],
)
def test_bad_tokens_get_401_saying_why(issuer: Issuer, api: tuple[TestClient, Platform], case: str) -> None:
    client, platform = api
    now = int(time.time())
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # same kid, different key
    token, expected = {
        "expired": (issuer.token(exp=now - 600), "OIDC token expired at"),
        "wrong audience": (issuer.token(aud="another-app"), "claim aud = 'another-app' does not match audience"),
        "wrong issuer": (
            issuer.token(iss="https://evil.example"),
            "claim iss = 'https://evil.example' does not match issuer",
        ),
        "bad signature": (issuer.token(key=stranger), "signature does not verify"),
        "unknown kid": (issuer.token(key=stranger, kid="k9"), "key id 'k9', which the issuer's JWKS"),
        "not yet valid": (issuer.token(nbf=now + 3600), "not valid before"),
        "unknown user": (issuer.token("mallory"), "OIDC user 'mallory' is not an aidc user"),
        "no exp": (issuer.token(exp=None), "lacks the 'exp' claim"),
    }[case]
    response = _get(client, "/whoami", token)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert expected in response.json()["error"]["message"], response.json()
    denied = platform.security.audit_list(result="denied")
    assert denied and denied[0].actor == "anonymous"


def test_a_new_issuer_key_is_fetched_when_a_token_names_it(
    issuer: Issuer, api: tuple[TestClient, Platform], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = api
    monkeypatch.setattr(oidc, "REFETCH_AFTER_S", 0.0)  # not the 30 s a server waits between refetches
    assert _get(client, "/whoami", issuer.token("alice")).status_code == 200
    rotated = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    issuer.keys.append(rotated)  # the issuer rotates its signing key
    me = _get(client, "/whoami", issuer.token("alice", key=rotated))
    assert me.status_code == 200 and issuer.requests.count("/jwks") == 2
