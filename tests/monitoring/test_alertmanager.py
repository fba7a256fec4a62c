"""Firing alerts reach a real Alertmanager (Debian's prometheus-alertmanager, started on 127.0.0.1 by the test)
through its v2 API, and leave its active list when aidc says they resolved."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.conftest import free_port

from aidc.monitoring.alerts.notify import AlertmanagerNotifier, Notification

READY_S = 60.0  # a hang detector: on a busy 2-core machine a start takes a second or two


def _wait(check: Any, what: str, deadline_s: float = READY_S) -> Any:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            got = check()
            if got:
                return got
        except (httpx.HTTPError, ValueError):  # still starting: not an answer, or not JSON yet
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {deadline_s:.0f} s")
        time.sleep(0.1)


@pytest.fixture()
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager")
    if binary is None:
        pytest.skip("needs Debian's prometheus-alertmanager (.ci/run installs it)")
    config = tmp_path / "am.yml"
    config.write_text("route: {receiver: blackhole, group_wait: 1s}\nreceivers: [{name: blackhole}]\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip port on every interface
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, "alertmanager ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _alert(event: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": "a1",
        "event": event,
        "severity": "critical",
        "labels": {"alertname": "RackPowerOverBudget", "severity": "critical", "rack": "lab-rack"},
        "summary": "rack lab-rack draws 10600 W",
        "runbook": "shed load",
        "fired_at": now,
        "resolved_at": now if event == "resolved" else None,
    }


def test_a_firing_alert_arrives_and_a_resolved_one_leaves(alertmanager: str) -> None:
    notifier = AlertmanagerNotifier("am", alertmanager)
    notifier.send(Notification("firing", {"rack": "lab-rack"}, [_alert("firing")]))

    def active() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=2).json()
        return [a for a in got if a["labels"].get("alertname") == "RackPowerOverBudget"]

    (arrived,) = _wait(active, "the alert in Alertmanager")
    assert (
        arrived["labels"]["rack"] == "lab-rack" and arrived["annotations"]["summary"] == "rack lab-rack draws 10600 W"
    )
    assert arrived["status"]["state"] == "active"
    notifier.send(Notification("resolved", {"rack": "lab-rack"}, [_alert("resolved")]))
    _wait(lambda: not active(), "the resolved alert leaving Alertmanager's active list")
