"""The remote client over HTTPS: a server with a self-signed certificate is trusted only through AIDC_CA_FILE;
and `aidc server` encrypts its artifacts by default, creating a private master key on first start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.api.conftest import start_server, stop
from tests.api.test_server_cli import _self_signed
from typer.testing import CliRunner

from aidc.cli.app import app

runner = CliRunner()


def test_login_over_tls_trusts_the_server_only_through_the_ca_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path)
    token = "t" * 40
    proc, server = start_server(
        tmp_path / "server-home",
        token,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        scheme="https",
        verify=str(cert),
    )
    try:
        monkeypatch.setenv("AIDC_HOME", str(tmp_path / "client-home"))
        for var in ("AIDC_SERVER", "AIDC_TOKEN", "AIDC_CA_FILE"):
            monkeypatch.delenv(var, raising=False)
        untrusted = runner.invoke(app, ["login", server.url], input=token + "\n")
        assert untrusted.exit_code == 1 and "is not trusted" in untrusted.output and "AIDC_CA_FILE" in untrusted.output

        monkeypatch.setenv("AIDC_CA_FILE", str(tmp_path / "missing.pem"))
        missing = runner.invoke(app, ["login", server.url], input=token + "\n")
        assert missing.exit_code == 2 and "no CA file" in missing.output

        monkeypatch.setenv("AIDC_CA_FILE", str(cert))
        trusted = runner.invoke(app, ["login", server.url], input=token + "\n")
        assert trusted.exit_code == 0, trusted.output
        me = json.loads(runner.invoke(app, ["whoami", "--json"]).stdout)
        assert me["principal"] == "admin" and me["where"] == server.url
    finally:
        stop(proc)
    log = server.log.read_text()
    key_file = tmp_path / "server-home" / "master.key"
    assert "created master key" in log and str(key_file) in log
    assert key_file.stat().st_mode & 0o777 == 0o600
