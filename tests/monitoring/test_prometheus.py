"""A real Prometheus (Debian's `prometheus`) scrapes a live `aidc server`'s /metrics with a token, and a PromQL
query returns a run's energy and this host's power."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.conftest import JOB_SPEC, free_port, start_server, stop

from aidc.platform import Platform
from aidc.settings import Settings
from aidc.store.metadata.records import Sample

HOST = socket.gethostname()
LAB = Path(__file__).parents[2] / "examples" / "facilities" / "lab-two-servers.yaml"
# the server runs the lab spec, this host as its first server (named so by AIDC_NODE_NAMES)
ENV = {"AIDC_TELEMETRY_INTERVAL_S": "1", "AIDC_FACILITY": str(LAB), "AIDC_NODE_NAMES": json.dumps({HOST: "gpu-001"})}
READY_S = 120.0  # Prometheus's first sample takes ~6 s here; only a hang reaches this


def _query(url: str, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5).json()
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _until(url: str, promql: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        try:
            found = _query(url, promql)
            if found:
                return found
        except (httpx.HTTPError, ValueError, KeyError):  # still starting: "Service Unavailable", not JSON
            pass
        time.sleep(0.5)
    raise AssertionError(f"Prometheus never answered {promql}")


def test_prometheus_scrapes_the_server_and_promql_returns_a_runs_energy(tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("needs Debian's prometheus: apt-get install -y --no-install-recommends prometheus (.ci/run does)")
    home = tmp_path / "home"
    platform = Platform(Settings(home=home))
    store = platform.metadata
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    t0 = start.timestamp()
    # a 10-minute job that held the whole of this host while it drew 500 W (as its BMC would have read it)
    store.add_samples([Sample("gpu-001", "node_power_watts", 500.0, t0 + i * 10, source="redfish") for i in range(61)])
    store.add_samples([Sample("gpu-001", "node_cpu_count", 2.0, t0)])
    store.create_run("run-prom", "digits", {}, None)
    store.submit_job(
        {
            "id": "job-prom",
            "project": "default",
            "submitter": "t",
            "idempotency_key": "prom",
            "pipeline": "digits",
            "path_name": "p.yaml",
            "spec_text": JOB_SPEC,
            "priority": 0,
            "workers": 2,
            "cpus": 1.0,
            "gpus": 0.0,
        }
    )
    store.transition_job("job-prom", ("queued",), "running", run_id="run-prom", started_at=start, worker=f"{HOST}:1:0")
    store.transition_job("job-prom", ("running",), "succeeded", finished_at=start + timedelta(minutes=10))
    platform.close()

    token = secrets.token_urlsafe(32)
    proc, server = start_server(home, token, "--no-jobs", env=ENV)
    port = free_port()
    (tmp_path / "token").write_text(token)
    (tmp_path / "prometheus.yml").write_text(
        f"""global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: aidc
    metrics_path: /metrics
    authorization: {{type: Bearer, credentials_file: {tmp_path / "token"}}}
    static_configs: [{{targets: ['{server.url.removeprefix("http://")}']}}]
"""
    )
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
    url = f"http://127.0.0.1:{port}"
    try:
        energy = _until(url, 'aidc_run_energy_joules_total{run="run-prom"}')
        # 500 W × 600 s = 300 kJ
        assert float(energy[0]["value"][1]) == pytest.approx(300_000.0)
        assert energy[0]["metric"]["project"] == "default" and energy[0]["metric"]["measured"] == "true"
        power = _until(url, 'aidc_node_power_watts{node="gpu-001"}')
        # the server's own collector, sampling this host every second: no sensor here, so modelled from CPU use
        # between the spec's idle and maximum power
        assert 1600 <= float(power[0]["value"][1]) <= 2800 and power[0]["metric"]["measured"] == "false"
        up = _until(url, 'up{job="aidc"}')
        assert up[0]["value"][1] == "1"
    finally:
        prom.terminate()
        prom.wait(timeout=10)
        stop(proc)
