"""`aidc doctor` as a newcomer runs it: every check listed, a failing one named with its fix, exit 1 only on failure."""

from __future__ import annotations

import json
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aidc import diagnostics
from aidc.cli.app import app
from aidc.platform import Platform

runner = CliRunner()
CHECK_NAMES = [
    "python",
    "torch",
    "ray",
    "gpu",
    "onnxruntime",
    "metadata store",
    "artifact store",
    "disk",
    "cpu and memory",
    "settings",
]


def test_doctor_json_lists_every_check_and_passes_here(aidc_home: Path) -> None:
    result = runner.invoke(app, ["doctor", "--json"])
    checks = json.loads(result.stdout)
    assert [c["name"] for c in checks] == CHECK_NAMES
    assert all(set(c) == {"name", "status", "detail", "hint"} and c["status"] in ("ok", "warn", "fail") for c in checks)
    failing = [c for c in checks if c["status"] == "fail"]
    assert not failing and result.exit_code == 0, failing
    by_name = {c["name"]: c for c in checks}
    assert str(aidc_home) in by_name["metadata store"]["detail"]
    assert "CPUExecutionProvider" in by_name["onnxruntime"]["detail"]
    # the artifact probe was deleted again: doctor leaves no artifact behind
    assert list(Platform().artifacts.iter_digests()) == []


def test_doctor_table_output(aidc_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    for name in CHECK_NAMES:
        assert name in result.output
    assert "✓ ok" in result.output


def test_unreachable_metadata_store_fails_with_hint_and_hides_password(
    aidc_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIDC_METADATA_URL", "postgresql+psycopg://aidc:s3cret@127.0.0.1:1/aidc")
    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "✗ fail" in result.output and "AIDC_METADATA_URL" in result.output  # the hint
    assert "s3cret" not in result.output and "aidc:***@127.0.0.1" in result.output
    assert "Traceback" not in result.output


def test_disk_thresholds(aidc_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    usage = namedtuple("usage", "total used free")
    platform = Platform()
    for free_gib, status in ((50, "ok"), (3, "warn"), (0.5, "fail")):
        monkeypatch.setattr(shutil, "disk_usage", lambda _p, f=free_gib: usage(100 * 2**30, 0, int(f * 2**30)))
        assert diagnostics.check_disk(platform)["status"] == status


def test_a_crashing_check_is_reported_not_raised(aidc_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: Platform) -> dict[str, object]:
        raise RuntimeError("probe exploded")

    monkeypatch.setattr(diagnostics, "CHECKS", [("python", diagnostics.check_python), ("broken", broken)])
    checks = diagnostics.run_checks(Platform())
    assert [(c["name"], c["status"]) for c in checks] == [("python", "ok"), ("broken", "fail")]
    assert "probe exploded" in checks[1]["detail"]


def test_redact_hides_passwords_only() -> None:
    assert diagnostics.redact("postgresql+psycopg://u:pw@db:5432/x") == "postgresql+psycopg://u:***@db:5432/x"
    assert diagnostics.redact("sqlite:////home/u/.aidc/aidc.db") == "sqlite:////home/u/.aidc/aidc.db"
    assert diagnostics.redact("postgresql://u@db/x") == "postgresql://u@db/x"
