"""A real Prometheus evaluates a rule `aidc alerts export` derived from the facility spec against a live server's
/metrics until it fires: the lab rack given a deliberately small budget (0.5 kW), this host's modelled power
(at least the spec's idle 1.6 kW) is over it."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.api.conftest import free_port, start_server, stop

from aidc.client.remote import RemoteClient

HOST = socket.gethostname()
LAB = Path(__file__).parents[2] / "examples" / "facilities" / "lab-two-servers.yaml"
READY_S = 120.0  # Prometheus's first sample takes ~6 s here; only a hang reaches this


def _firing(url: str, name: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        try:
            alerts = httpx.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
            found = [a for a in alerts if a["labels"]["alertname"] == name and a["state"] == "firing"]
            if found:
                return found
        except (httpx.HTTPError, ValueError, KeyError):  # still starting: "Service Unavailable", not JSON
            pass
        time.sleep(0.5)
    raise AssertionError(f"Prometheus never fired {name}")


def test_prometheus_fires_the_exported_rack_budget_rule_on_the_servers_metrics(tmp_path: Path) -> None:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        pytest.skip("needs Debian's prometheus (prometheus and promtool; .ci/run installs it)")
    spec = yaml.safe_load(LAB.read_text())
    spec["halls"][0]["racks"][0]["power_budget_kw"] = 0.5
    facility = tmp_path / "lab-small-budget.yaml"
    facility.write_text(yaml.safe_dump(spec))
    env = {
        "AIDC_TELEMETRY_INTERVAL_S": "1",
        "AIDC_FACILITY": str(facility),
        "AIDC_NODE_NAMES": json.dumps({HOST: "gpu-001"}),
    }
    home = tmp_path / "home"
    home.mkdir()
    token = secrets.token_urlsafe(32)
    proc, server = start_server(home, token, "--no-jobs", env=env)
    prom = None
    try:
        client = RemoteClient(server.url, token, home=tmp_path / "client-home")
        exported = yaml.safe_load(client.export_alert_rules())
        client.close()
        (budget,) = [r for g in exported["groups"] for r in g["rules"] if r["alert"] == "RackPowerOverBudget"]
        assert budget["expr"].endswith("> 500") and budget["labels"]["rack"] == "lab-rack" and budget["for"] == "2m"
        # the expression exactly as exported; only its `for:` shortened (a test does not wait two minutes)
        budget["for"] = "1s"
        rules = tmp_path / "rules.yml"
        rules.write_text(yaml.safe_dump(exported, sort_keys=False, allow_unicode=True))
        checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        (tmp_path / "token").write_text(token)
        (tmp_path / "prometheus.yml").write_text(
            f"""global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{rules}]
scrape_configs:
  - job_name: aidc
    metrics_path: /metrics
    authorization: {{type: Bearer, credentials_file: {tmp_path / "token"}}}
    static_configs: [{{targets: ['{server.url.removeprefix("http://")}']}}]
"""
        )
        port = free_port()
        prom = subprocess.Popen(
            [
                prometheus,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "prometheus.log").open("wb"),
        )
        (alert,) = _firing(f"http://127.0.0.1:{port}", "RackPowerOverBudget")
        assert alert["labels"]["rack"] == "lab-rack" and alert["labels"]["severity"] == "critical"
        assert float(alert["value"]) >= 1600  # this host's modelled power, at least the spec's idle
        assert "above its designed budget of 500 W" in alert["annotations"]["summary"]
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(timeout=10)
        stop(proc)
