"""Notifiers and routing: webhook (JSON, HMAC-signed, retried with backoff), email over SMTP, the log, and an
Alertmanager's API; routes pick notifiers by severity and labels and group a round's alerts so that one failing
rack is one notification, not one per node.

Sending runs on a background thread: a slow mail server or an unreachable webhook never delays the evaluation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import smtplib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from aidc.monitoring.alerts.engine import matches
from aidc.monitoring.alerts.rules import SEVERITIES

log = logging.getLogger("aidc.alerts")
SIGNATURE_HEADER = "X-Aidc-Signature"  # "sha256=" + HMAC-SHA256(secret, timestamp + "." + body), hex
TIMESTAMP_HEADER = "X-Aidc-Timestamp"


@dataclass
class Notification:
    """One message: the alerts of one group (one rack, one node…) that changed in one round."""

    status: Literal["firing", "resolved"]
    group: dict[str, str]
    alerts: list[dict[str, Any]]

    @property
    def title(self) -> str:
        names = sorted({a["labels"]["alertname"] for a in self.alerts})
        where = ", ".join(f"{k}={v}" for k, v in self.group.items()) or "the data center"
        return f"[{self.status.upper()}] {' / '.join(names)} on {where} ({len(self.alerts)} alert(s))"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "group": self.group,
            "title": self.title,
            "alerts": [
                {
                    "id": a["id"],
                    "alertname": a["labels"]["alertname"],
                    "severity": a["severity"],
                    "labels": a["labels"],
                    "summary": a.get("summary", ""),
                    "value": a.get("value"),
                    "state": a["event"],
                    "fired_at": _iso(a.get("fired_at")),
                    "resolved_at": _iso(a.get("resolved_at")),
                }
                for a in self.alerts
            ],
        }


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Notifier(Protocol):
    name: str

    def send(self, notification: Notification) -> None: ...


class LogNotifier:
    def __init__(self, name: str = "log") -> None:
        self.name = name

    def send(self, notification: Notification) -> None:
        level = logging.WARNING if notification.status == "firing" else logging.INFO
        log.log(level, "%s: %s", notification.title, "; ".join(a.get("summary", "") for a in notification.alerts))


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: a receiver recomputes it with the shared secret and compares."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookNotifier:
    """POSTs the notification as JSON; 5xx, 429 and connection errors are retried with exponential backoff."""

    def __init__(
        self, name: str, url: str, *, secret: str = "", attempts: int = 5, backoff_s: float = 0.5, timeout_s: float = 10
    ) -> None:
        self.name, self.url, self.secret = name, url, secret
        self.attempts, self.backoff_s, self.timeout_s = attempts, backoff_s, timeout_s

    def send(self, notification: Notification) -> None:
        import httpx

        body = json.dumps(notification.to_json(), sort_keys=True).encode()
        headers = {"Content-Type": "application/json"}
        if self.secret:
            ts = str(int(time.time()))
            headers |= {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(self.secret, ts, body)}
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                response = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout_s)
                if response.status_code < 300:
                    return
                if response.status_code < 500 and response.status_code != 429:
                    raise RuntimeError(f"webhook {self.name} refused the notification: HTTP {response.status_code}")
                why = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                why = str(exc) or type(exc).__name__
            if attempt < self.attempts:
                log.info("webhook %s: %s; retrying in %.1f s", self.name, why, delay)
                time.sleep(delay)
                delay *= 2
        raise RuntimeError(f"webhook {self.name} failed after {self.attempts} attempts: {why}")


class EmailNotifier:
    """One email per notification over SMTP (STARTTLS and login where configured)."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        sender: str,
        to: Sequence[str],
        *,
        starttls: bool = False,
        username: str = "",
        password: str = "",
        timeout_s: float = 10,
    ) -> None:
        self.name, self.host, self.port, self.sender, self.to = name, host, port, sender, list(to)
        self.starttls, self.username, self.password, self.timeout_s = starttls, username, password, timeout_s

    def send(self, notification: Notification) -> None:
        msg = EmailMessage()
        msg["Subject"] = notification.title
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        lines = []
        for a in notification.alerts:
            lines.append(f"- {a['labels']['alertname']} [{a['severity']}] {a.get('summary', '')}")
            if a.get("runbook"):
                lines.append(f"  runbook: {a['runbook']}")
        msg.set_content("\n".join(lines) + "\n")
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(msg)


class AlertmanagerNotifier:
    """Posts alerts to an Alertmanager's API (v2): it then groups, silences and routes them its own way."""

    def __init__(self, name: str, url: str, *, timeout_s: float = 10) -> None:
        self.name, self.url, self.timeout_s = name, url.rstrip("/"), timeout_s

    def send(self, notification: Notification) -> None:
        import httpx

        body = []
        for a in notification.alerts:
            item: dict[str, Any] = {
                "labels": {k: str(v) for k, v in a["labels"].items()},
                "annotations": {"summary": a.get("summary", ""), "runbook": a.get("runbook", "")},
                "startsAt": _iso(a.get("fired_at")) or _iso(datetime.now(UTC)),
            }
            if a["event"] == "resolved":
                item["endsAt"] = _iso(a.get("resolved_at"))
            body.append(item)
        response = httpx.post(f"{self.url}/api/v2/alerts", json=body, timeout=self.timeout_s)
        response.raise_for_status()


# ---------------------------------------------------------------- configuration: notifiers and routes


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NotifierSpec(_Spec):
    """A notifier in a site's alerts file; secrets come from the environment (``secret_env``, ``password_env``)."""

    name: str
    kind: Literal["webhook", "email", "log", "alertmanager"]
    url: str | None = None
    secret_env: str | None = None
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    sender: str = Field("aidc@localhost", alias="from")
    to: list[str] = Field(default_factory=list)
    starttls: bool = False
    username: str = ""
    password_env: str | None = None
    attempts: int = Field(5, ge=1)
    backoff_s: float = Field(0.5, ge=0)

    def build(self, env: dict[str, str]) -> Notifier:
        if self.kind == "log":
            return LogNotifier(self.name)
        if self.kind == "email":
            if not self.to:
                raise ValueError(f"notifier {self.name}: an email notifier needs `to`")
            password = env.get(self.password_env, "") if self.password_env else ""
            return EmailNotifier(
                self.name, self.smtp_host, self.smtp_port, self.sender, self.to,
                starttls=self.starttls, username=self.username, password=password,
            )  # fmt: skip
        if not self.url:
            raise ValueError(f"notifier {self.name}: a {self.kind} notifier needs `url`")
        if self.kind == "alertmanager":
            return AlertmanagerNotifier(self.name, self.url)
        secret = env.get(self.secret_env, "") if self.secret_env else ""
        return WebhookNotifier(self.name, self.url, secret=secret, attempts=self.attempts, backoff_s=self.backoff_s)


class Route(_Spec):
    """Alerts at or above ``min_severity`` whose labels match ``match`` go to ``notify``, grouped by ``group_by``."""

    match: dict[str, str] = Field(default_factory=dict)
    min_severity: Literal["info", "warning", "critical"] = "info"
    notify: list[str]
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "rack"])
    resolved: bool = Field(True, description="also say when the alerts resolve")
    stop: bool = Field(True, description="an alert this route took goes to no later route")

    def takes(self, alert: dict[str, Any], regexes: dict[str, Any]) -> bool:
        if SEVERITIES.index(alert["severity"]) < SEVERITIES.index(self.min_severity):
            return False
        return matches({k: str(v) for k, v in alert["labels"].items()}, self.match, regexes)


DEFAULT_ROUTES = [Route(notify=["log"])]


@dataclass
class Dispatcher:
    """Routes each round's firing and resolved alerts, groups them, and sends on a background thread."""

    notifiers: dict[str, Notifier]
    routes: list[Route] = field(default_factory=lambda: list(DEFAULT_ROUTES))
    silenced: Callable[[dict[str, Any]], bool] = lambda alert: False
    on_sent: Callable[[Notification, str, Exception | None], None] | None = None
    _queue: queue.Queue[tuple[Notifier, Notification] | None] = field(default_factory=queue.Queue)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.notifiers.setdefault("log", LogNotifier())
        import re

        self._regexes = {v: re.compile(v[2:]) for r in self.routes for v in r.match.values() if v.startswith("=~")}
        for route in self.routes:
            missing = [n for n in route.notify if n not in self.notifiers]
            if missing:
                raise ValueError(f"a route names notifiers that are not defined: {', '.join(missing)}")

    def plan(self, changes: Iterable[dict[str, Any]]) -> list[tuple[Notifier, Notification]]:
        """What this round sends: one notification per route, notifier, status and group."""
        groups: dict[tuple[int, str, tuple[tuple[str, str], ...]], list[dict[str, Any]]] = {}
        for alert in changes:
            if alert["event"] not in ("firing", "resolved") or self.silenced(alert):
                continue
            for i, route in enumerate(self.routes):
                if not route.takes(alert, self._regexes):
                    continue
                if alert["event"] == "firing" or route.resolved:
                    group = tuple((k, str(alert["labels"].get(k, ""))) for k in route.group_by)
                    groups.setdefault((i, alert["event"], group), []).append(alert)
                if route.stop:
                    break
        out = []
        for (i, status, group), alerts in groups.items():
            note = Notification(status, {k: v for k, v in group if v}, alerts)  # type: ignore[arg-type]
            out += [(self.notifiers[n], note) for n in self.routes[i].notify]
        return out

    def dispatch(self, changes: Iterable[dict[str, Any]]) -> int:
        planned = self.plan(changes)
        if planned and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="aidc-alert-notify", daemon=True)
            self._thread.start()
        for item in planned:
            self._queue.put(item)
        return len(planned)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            notifier, note = item
            error: Exception | None = None
            try:
                notifier.send(note)
            except Exception as exc:  # one broken notifier must not stop the others
                error = exc
                log.warning("notifier %s: %s", notifier.name, exc)
            if self.on_sent is not None:
                self.on_sent(note, notifier.name, error)

    def close(self, timeout_s: float = 30.0) -> None:
        """Send what is queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
            self._thread = None
