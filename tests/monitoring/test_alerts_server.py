"""`aidc server` judges the alert rules while it serves: its collector samples this host (modelled power, placed in
the lab spec's rack), a site's rule fires, the site's webhook receives the signed notification, and `aidc alerts`
through the server lists and acknowledges the alert."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.api.conftest import start_server, stop

from aidc.client.remote import RemoteClient
from aidc.monitoring.alerts.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

HOST = socket.gethostname()
LAB = Path(__file__).parents[2] / "examples" / "facilities" / "lab-two-servers.yaml"
WAIT_S = 120.0  # a hang detector: the server's first rounds come within seconds
SITE = """\
rules:
  - name: RackDrawsPower
    severity: critical
    expr: {metric: node_power_watts, by: [rack], aggregate: sum, op: ">", value: 100}
    summary: "rack {rack} draws {value:.0f} W"
notifiers:
  - {name: hook, kind: webhook, url: "URL", secret_env: AIDC_TEST_HOOK_SECRET, backoff_s: 0.1}
routes:
  - {match: {alertname: RackDrawsPower}, notify: [hook], group_by: [rack]}
"""


class Hook(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        type(self).got.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def hook() -> Iterator[tuple[str, type[Hook]]]:
    handler = type("H", (Hook,), {"got": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/aidc", handler
    finally:
        server.shutdown()
        server.server_close()


def _until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {WAIT_S:.0f} s")


def test_the_server_fires_a_site_rule_notifies_its_webhook_and_lists_the_alert(
    tmp_path: Path, hook: tuple[str, type[Hook]]
) -> None:
    url, handler = hook
    site = tmp_path / "site-alerts.yaml"
    site.write_text(SITE.replace("URL", url))
    env = {
        "AIDC_TELEMETRY_INTERVAL_S": "1",
        "AIDC_ALERTS_INTERVAL_S": "1",
        "AIDC_FACILITY": str(LAB),
        "AIDC_NODE_NAMES": json.dumps({HOST: "gpu-001"}),
        "AIDC_ALERT_RULES": str(site),
        "AIDC_TEST_HOOK_SECRET": "hook-secret",
    }
    home = tmp_path / "home"
    home.mkdir()
    token = secrets.token_urlsafe(32)
    proc, server = start_server(home, token, "--no-jobs", env=env)
    client = RemoteClient(server.url, token, home=tmp_path / "client-home")
    try:
        headers, body = _until(lambda: handler.got[:1], "the webhook's notification")[0]
        assert headers[SIGNATURE_HEADER] == sign("hook-secret", headers[TIMESTAMP_HEADER], body)
        note = json.loads(body)
        assert note["status"] == "firing" and note["group"] == {"rack": "lab-rack"}
        assert note["alerts"][0]["summary"].startswith("rack lab-rack draws ")
        firing = _until(
            lambda: [a for a in client.list_alerts(state="firing") if a["labels"]["alertname"] == "RackDrawsPower"],
            "the alert through the server",
        )
        assert firing[0]["labels"]["rack"] == "lab-rack" and firing[0]["value"] > 100 and firing[0]["origin"] == "site"
        assert client.ack_alert(firing[0]["id"][:8])["acked_by"] == "admin"
        assert "alert: RackPowerOverBudget" in client.export_alert_rules()  # the spec's rules are the server's too
    finally:
        client.close()
        stop(proc)
