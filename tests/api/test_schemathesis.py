"""API fuzzing: schemathesis generates requests from the OpenAPI schema against a running `aidc server`, as an
admin, and checks every answer (no 5xx, responses match the schema, bad input refused, auth enforced)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.api.conftest import LiveServer  # noqa: F401  (fixture type)
from tests.pace import HANG_S


def test_fuzzing_finds_no_server_error_and_no_schema_violation(live_server: LiveServer, tmp_path: Path) -> None:
    pytest.importorskip("schemathesis")
    schemathesis = Path(sys.executable).with_name("schemathesis")
    # Bounded by example count, not time: the phases that generate from the schema, without stateful chains.
    cmd = [
        str(schemathesis),
        "run",
        f"{live_server.url}/openapi.json",
        "--checks",
        "all",
        "-H",
        f"Authorization: Bearer {live_server.admin_token}",
        "-n",
        "5",
        "--seed",
        "1",
        "--generation-database",
        "none",
        "--phases",
        "examples,coverage,fuzzing",
        "--no-color",
    ]
    result = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=HANG_S,
        cwd=tmp_path,
        env=live_server.env | {"SCHEMATHESIS_HOOKS": ""},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert live_server.admin_token not in result.stdout + live_server.log.read_text()
