"""`aidc server`, `aidc login` and the security commands through a running server, as a user types them."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.conftest import LiveServer, start_server, stop, trusting
from typer.testing import CliRunner

from aidc.cli.app import app

runner = CliRunner()


@pytest.fixture()
def logged_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "client-home"
    monkeypatch.setenv("AIDC_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that Rich does not fold ids
    for var in ("AIDC_SERVER", "AIDC_TOKEN", "AIDC_METADATA_URL"):
        monkeypatch.delenv(var, raising=False)
    return home


def _aidc(*args: str, input: str | None = None) -> Any:
    result = runner.invoke(app, list(args), input=input)
    return result


def test_login_then_manage_a_service_account_through_the_server(live_server: LiveServer, logged_out: Path) -> None:
    result = _aidc("login", live_server.url, input=live_server.admin_token + "\n")
    # admin@* first; the package's schemathesis run, on the same server, may have granted admin more roles
    assert result.exit_code == 0 and "as admin (admin@*" in result.output
    creds = logged_out / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert live_server.admin_token not in result.output
    me = json.loads(_aidc("whoami", "--json").stdout)
    assert me["principal"] == "admin" and me["where"] == live_server.url

    assert _aidc("users", "create", "ci-bot", "--service", "--role", "viewer", "--project", "default").exit_code == 0
    made = json.loads(
        _aidc("tokens", "create", "pipeline", "--user", "ci-bot", "--scope", "runs:read", "--json").stdout
    )
    assert made["principal"] == "ci-bot" and made["scopes"] == ["runs:read"]
    bot = httpx.get(f"{live_server.url}/api/v1/runs", headers={"Authorization": f"Bearer {made['token']}"})
    assert bot.status_code == 200
    listed = _aidc("tokens", "list", "--user", "ci-bot")
    assert made["id"] in listed.output and made["token"] not in listed.output
    assert _aidc("tokens", "revoke", made["id"], "--user", "ci-bot").exit_code == 0
    bot = httpx.get(f"{live_server.url}/api/v1/runs", headers={"Authorization": f"Bearer {made['token']}"})
    assert bot.status_code == 401 and bot.headers["www-authenticate"] == "Bearer"

    denied = _aidc("audit", "list", "--actor", "anonymous", "--result", "denied", "--json")
    assert any(e["source"] == "127.0.0.1" for e in json.loads(denied.stdout))
    revoked = json.loads(_aidc("audit", "list", "--action", "token.revoke", "--json").stdout)[0]
    assert revoked["actor"] == "admin" and revoked["target"] == f"token:{made['id']}"
    assert _aidc("audit", "verify").exit_code == 0
    assert "logged out" in _aidc("logout").output and not creds.exists()


def test_a_wrong_token_is_refused_at_login_and_not_saved(live_server: LiveServer, logged_out: Path) -> None:
    wrong = "aidc_00000000_" + "B" * 43
    result = _aidc("login", live_server.url, input=wrong + "\n")
    assert result.exit_code == 1 and "invalid, expired or revoked" in result.output
    assert wrong not in result.output and not (logged_out / "credentials.json").exists()
    down = _aidc("login", "http://127.0.0.1:9", input=wrong + "\n")
    assert down.exit_code == 1 and "cannot reach" in down.output


def _self_signed(dir_: Path) -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = dir_ / "cert.pem", dir_ / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_first_start_prints_the_admin_token_once_and_serves_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    proc, server = start_server(
        tmp_path / "home", "", "--tls-cert", str(cert), "--tls-key", str(key), scheme="https", verify=str(cert)
    )
    try:
        printed = [line for line in server.log.read_text().splitlines() if line.startswith("aidc_")]
        assert len(printed) == 1
        me = httpx.get(
            f"{server.url}/api/v1/whoami", headers={"Authorization": f"Bearer {printed[0]}"}, verify=trusting(str(cert))
        )
        assert me.json()["principal"] == "admin"
    finally:
        stop(proc)
    proc, again = start_server(
        tmp_path / "home", "", "--tls-cert", str(cert), "--tls-key", str(key), scheme="https", verify=str(cert)
    )
    stop(proc)
    assert not [line for line in again.log.read_text().splitlines() if line.startswith("aidc_")]


def test_tls_needs_both_cert_and_key(tmp_path: Path, logged_out: Path) -> None:
    result = _aidc("server", "--tls-cert", str(tmp_path / "cert.pem"))
    assert result.exit_code == 2 and "--tls-cert and --tls-key go together" in result.output
