"""Notifiers against real peers on 127.0.0.1: a webhook receiver that fails twice before accepting (retried with
backoff, HMAC-signed), an SMTP server (aiosmtpd) that receives the email, and the route that picks them."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from aidc.monitoring.alerts.notify import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Dispatcher,
    EmailNotifier,
    Notification,
    Route,
    WebhookNotifier,
    sign,
)


def _alert(node: str, severity: str = "critical", event: str = "firing") -> dict[str, Any]:
    return {
        "id": f"id-{node}",
        "event": event,
        "severity": severity,
        "rule": "InletTemperatureAboveAllowable",
        "rule_name": "InletTemperatureAboveAllowable",
        "labels": {"alertname": "InletTemperatureAboveAllowable", "severity": severity, "node": node, "rack": "r1"},
        "summary": f"inlet of {node} at 37 °C",
        "runbook": "check the cooling units",
        "value": 37.0,
        "fired_at": datetime(2026, 12, 5, 9, 0, tzinfo=UTC),
        "resolved_at": None,
    }


class Receiver(BaseHTTPRequestHandler):
    failures_left = 0
    got: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        cls.got.append((dict(self.headers), body))
        if cls.failures_left > 0:
            cls.failures_left -= 1
            self.send_response(503)
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    handler = type("R", (Receiver,), {"failures_left": 2, "got": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    finally:
        server.shutdown()
        server.server_close()


def test_a_webhook_is_retried_with_backoff_and_signed(receiver: tuple[str, type[Receiver]]) -> None:
    url, handler = receiver
    hook = WebhookNotifier("ops", url, secret="s3cret", attempts=4, backoff_s=0.01)
    hook.send(Notification("firing", {"rack": "r1"}, [_alert("n1"), _alert("n2")]))
    assert len(handler.got) == 3  # two 503s, then accepted
    headers, body = handler.got[-1]
    assert headers[SIGNATURE_HEADER] == sign("s3cret", headers[TIMESTAMP_HEADER], body)
    assert headers[SIGNATURE_HEADER] != sign("other", headers[TIMESTAMP_HEADER], body)
    doc = json.loads(body)
    assert doc["status"] == "firing" and doc["group"] == {"rack": "r1"}
    assert [a["labels"]["node"] for a in doc["alerts"]] == ["n1", "n2"] and doc["alerts"][0]["fired_at"].endswith("Z")


def test_a_webhook_that_never_accepts_fails_after_its_attempts(receiver: tuple[str, type[Receiver]]) -> None:
    url, handler = receiver
    handler.failures_left = 99
    with pytest.raises(RuntimeError, match="after 2 attempts: HTTP 503"):
        WebhookNotifier("ops", url, attempts=2, backoff_s=0.01).send(Notification("firing", {}, [_alert("n1")]))


def test_an_email_reaches_an_smtp_server() -> None:
    aiosmtpd = pytest.importorskip("aiosmtpd.controller", reason="the email test needs aiosmtpd")
    from aiosmtpd.handlers import Sink

    received: list[Any] = []

    class Keep(Sink):
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
            received.append(envelope)
            return "250 OK"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    controller = aiosmtpd.Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mail = EmailNotifier("oncall", "127.0.0.1", port, "aidc@dc.example", ["oncall@dc.example"])
        mail.send(Notification("firing", {"rack": "r1"}, [_alert("n1"), _alert("n2")]))
    finally:
        controller.stop()
    (envelope,) = received
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert envelope.rcpt_tos == ["oncall@dc.example"]
    assert message["Subject"] == "[FIRING] InletTemperatureAboveAllowable on rack=r1 (2 alert(s))"
    text = message.get_body().get_content()  # type: ignore[union-attr]
    assert "inlet of n2 at 37 °C" in text and "runbook: check the cooling units" in text


class Outbox:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        self.sent.append(notification)


def test_routes_pick_notifiers_by_severity_and_labels() -> None:
    pager, chat = Outbox("pager"), Outbox("chat")
    routes = [
        Route(match={"rack": "=~r[0-9]"}, min_severity="critical", notify=["pager"], group_by=["rack"]),
        Route(notify=["chat"], group_by=["node"]),
    ]
    d = Dispatcher({"pager": pager, "chat": chat}, routes)
    d.dispatch([_alert("n1"), _alert("n2"), _alert("n3", severity="warning"), _alert("n4", event="pending")])
    d.close()
    assert [len(n.alerts) for n in pager.sent] == [2]  # n1 and n2: one rack, one page
    assert [n.group for n in chat.sent] == [{"node": "n3"}]  # the warning; the pending one notifies no one
