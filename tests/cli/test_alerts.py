"""`aidc alerts list|show|ack|silence|unsilence|export` as a user runs them on the embedded default: tables and
--json alike, acknowledgements and silences audited, a bad matcher one line, and the export a rule file that
Prometheus's own checker (promtool) accepts — with the rules derived from the facility spec in it."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aidc.cli.app import app
from aidc.platform import Platform

LAB = Path(__file__).resolve().parents[2] / "examples" / "facilities" / "lab-two-servers.yaml"
runner = CliRunner()


def aidc(*args: str, ok: bool = True) -> str:
    result = runner.invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0, result.output
    return result.output


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AIDC_HOME", str(tmp_path))
    monkeypatch.setenv("AIDC_FACILITY", str(LAB))
    monkeypatch.setenv("COLUMNS", "250")
    for var in ("AIDC_METADATA_URL", "AIDC_ARTIFACT_URL", "AIDC_RAY_ADDRESS", "AIDC_SERVER", "AIDC_ALERT_RULES"):
        monkeypatch.delenv(var, raising=False)
    platform = Platform()
    try:
        platform.metadata.save_alerts(
            [
                {
                    "id": "5f3a9c0e11aa4b2c9d8e7f6a5b4c3d2e",
                    "fingerprint": "fp",
                    "rule": "RackPowerOverBudget:lab-rack",
                    "origin": "facility",
                    "severity": "critical",
                    "state": "firing",
                    "labels": {"alertname": "RackPowerOverBudget", "severity": "critical", "rack": "lab-rack"},
                    "summary": "rack lab-rack draws 10600 W, above its designed budget of 10000 W",
                    "runbook": "Cap power on its nodes.",
                    "value": 10_600.0,
                    "threshold": 10_000.0,
                    "started_at": datetime(2026, 12, 5, 9, 0, tzinfo=UTC),
                    "fired_at": datetime(2026, 12, 5, 9, 2, tzinfo=UTC),
                }
            ]
        )
    finally:
        platform.close()
    return tmp_path


def test_list_show_and_ack_an_alert() -> None:
    table = aidc("alerts", "list")
    assert "RackPowerOverBudget" in table and "rack=lab-rack" in table and "firing" in table and "5f3a9c0e11aa" in table
    (alert,) = json.loads(aidc("alerts", "list", "--json"))
    assert (alert["state"], alert["value"], alert["labels"]["rack"]) == ("firing", 10_600.0, "lab-rack")
    shown = aidc("alerts", "show", "5f3a")  # a unique prefix will do
    assert "above its designed budget" in shown and "Cap power on its nodes." in shown and "acknowledged   no" in shown
    acked = json.loads(aidc("alerts", "ack", "5f3a", "--json"))
    assert acked["acked_by"].startswith("local:") and acked["acked_at"]
    assert json.loads(aidc("alerts", "list", "--state", "resolved", "--json")) == []
    audit = json.loads(aidc("audit", "list", "--json"))
    assert any(e["action"] == "alerts.ack" and e["target"].startswith("alert 5f3a") for e in audit)


def test_silence_and_unsilence() -> None:
    out = aidc("alerts", "silence", "rack=lab-rack", "node=~gpu-.*", "--for", "2h", "--comment", "fan swap")
    assert out.startswith("silence ")
    (silence,) = json.loads(aidc("alerts", "list", "--silences", "--json"))
    assert silence["matchers"] == {"rack": "lab-rack", "node": "=~gpu-.*"} and silence["comment"] == "fan swap"
    assert "rack=lab-rack" in aidc("alerts", "list", "--silences")
    aidc("alerts", "unsilence", silence["id"])
    assert json.loads(aidc("alerts", "list", "--silences", "--json")) == []
    again = aidc("alerts", "unsilence", silence["id"], ok=False)
    assert "already ended" in again and "Traceback" not in again


def test_bad_input_is_one_line_with_a_hint() -> None:
    bad = aidc("alerts", "silence", "rack", ok=False)
    assert "bad matcher 'rack'" in bad and "LABEL=VALUE" in bad and "Traceback" not in bad
    assert "bad duration" in aidc("alerts", "silence", "rack=r1", "--for", "soon", ok=False)
    assert "unknown alert state" in aidc("alerts", "list", "--state", "burning", ok=False)
    assert "no alert 'nope'" in aidc("alerts", "show", "nope", ok=False)


def test_the_export_is_a_prometheus_rule_file_with_the_facility_rules(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("needs promtool (Debian's prometheus package; .ci/run installs it)")
    path = tmp_path / "aidc-rules.yml"
    aidc("alerts", "export", "--output", str(path))
    text = path.read_text()
    assert "alert: RackPowerOverBudget" in text and 'node=~"gpu\\\\-001|gpu\\\\-002|switch\\\\-001"' in text
    assert "alert: InletTemperatureAboveAllowable" in text and "> 35" in text
    assert "# Left out" in text and "JobFailed" in text  # what Prometheus cannot see is said, not guessed
    checked = subprocess.run([promtool, "check", "rules", "--lint-fatal", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
