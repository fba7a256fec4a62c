"""Alerts: the verbs on the data center's alerts — list, show, acknowledge — and on silences, and the rules as a
Prometheus rule file. Viewers see; operators acknowledge and silence; every change is audited.

The data center's alerts (a rack, a room, a node) are seen by anyone holding alerts:read in some project; an alert
of a project's work (a job failed) only by those who may read that project, and is *not found* for the rest.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aidc.errors import InvalidInput
from aidc.security.roles import Access
from aidc.services.guard import Guard, not_found
from aidc.settings import Settings
from aidc.store.metadata import MetadataStore
from aidc.store.metadata.records import Alert

if TYPE_CHECKING:
    from aidc.facility.model import Facility

JSON = dict[str, Any]
JSONS = list[JSON]  # (a method below is called `list`)
STATES = ("pending", "firing", "resolved", "inactive")
MAX_SILENCE_S = 90 * 86400.0  # a silence longer than a quarter is a rule to change, not a silence
LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_matchers(items: list[str]) -> dict[str, str]:
    """``rack=r1``, ``node=~gpu-0.*``, ``severity!=info`` → the silence's matchers."""
    out: dict[str, str] = {}
    for item in items:
        m = re.fullmatch(r"\s*([^=!~\s]+)\s*(=~|!=|=)\s*(.*?)\s*", item)
        if not m or not LABEL.match(m.group(1)):
            raise InvalidInput(
                f"bad matcher {item!r}", where="matchers", hint="write LABEL=VALUE, LABEL=~REGEX or LABEL!=VALUE"
            )
        key, op, value = m.groups()
        if op == "=~":
            try:
                re.compile(value)
            except re.error as exc:
                raise InvalidInput(f"bad regex in {item!r}: {exc}", where="matchers") from None
        out[key] = value if op == "=" else op + value
    return out


class AlertService:
    def __init__(
        self, store: MetadataStore, guard: Guard, facility: Callable[[], Facility | None], settings: Settings
    ) -> None:
        self.store, self.guard, self.settings = store, guard, settings
        self._facility = facility

    def _visible(self, access: Access, alert: Alert, key: str) -> JSON:
        if alert.project is not None and not access.allows("alerts:read", alert.project):
            self.guard.require(
                access, "alerts:read", alert.project, "alerts.read", f"alert {key}", not_found("alert", key)
            )
        return alert.to_json()

    # -- read
    def list(self, access: Access, *, state: str | None = None, limit: int = 100) -> list[JSON]:
        self.guard.require_somewhere(access, "alerts:read", "alerts.read", "alerts")
        if state is not None and state not in STATES:
            raise InvalidInput(f"unknown alert state {state!r}", where="state", hint=f"one of {', '.join(STATES)}")
        if not 1 <= limit <= 10_000:
            raise InvalidInput(f"limit {limit} is out of range", where="limit", hint="1 to 10000")
        # inactive (cleared before it fired) only when asked for: it never notified anyone
        states = (state,) if state else ("pending", "firing", "resolved")
        alerts = self.store.list_alerts(states=states, projects=self.guard.projects(access, "alerts:read"), limit=limit)
        return [a.to_json() for a in alerts]

    def show(self, access: Access, alert_id: str) -> JSON:
        self.guard.require_somewhere(access, "alerts:read", "alerts.read", f"alert {alert_id}")
        return self._visible(access, self.store.get_alert(alert_id), alert_id)

    def silences(self, access: Access, *, active: bool = True) -> JSONS:
        self.guard.require_somewhere(access, "alerts:read", "alerts.read", "silences")
        found = self.store.list_silences(active_at=datetime.now(UTC) if active else None)
        allowed = self.guard.projects(access, "alerts:read")
        return [s.to_json() for s in found if s.project is None or allowed is None or s.project in allowed]

    # -- an operator's verbs
    def ack(self, access: Access, alert_id: str) -> JSON:
        self.guard.require_somewhere(access, "alerts:read", "alerts.ack", f"alert {alert_id}")
        alert = self.store.get_alert(alert_id)
        self._visible(access, alert, alert_id)
        self.guard.require_somewhere(access, "alerts:manage", "alerts.ack", f"alert {alert.id}")
        with self.guard.audited(access, "alerts.ack", f"alert {alert.id}", project=alert.project, rule=alert.rule):
            return self.store.ack_alert(alert.id, access.principal).to_json()

    def silence(self, access: Access, matchers: dict[str, str], *, duration_s: float, comment: str = "") -> JSON:
        """Alerts whose labels match every matcher notify no one for ``duration_s`` (they are still recorded)."""
        self.guard.require_somewhere(access, "alerts:manage", "alerts.silence", "silences")
        if not matchers:
            raise InvalidInput("a silence needs at least one matcher", where="matchers", hint="e.g. rack=r12")
        parse_matchers([f"{k}={v}" if not v.startswith(("=~", "!=")) else f"{k}{v}" for k, v in matchers.items()])
        if not 0 < duration_s <= MAX_SILENCE_S:
            raise InvalidInput(
                f"a silence of {duration_s:g} s is out of range", where="duration", hint="from 1s to 90d, e.g. 2h"
            )
        now = datetime.now(UTC)
        sid = secrets.token_hex(8)
        with self.guard.audited(access, "alerts.silence", f"silence {sid}", matchers=matchers, duration_s=duration_s):
            return self.store.add_silence(
                {
                    "id": sid,
                    "matchers": matchers,
                    "comment": comment[:1000],
                    "created_by": access.principal[:200],
                    "created_at": now,
                    "expires_at": now + timedelta(seconds=duration_s),
                }
            ).to_json()

    def unsilence(self, access: Access, silence_id: str) -> JSON:
        self.guard.require_somewhere(access, "alerts:manage", "alerts.unsilence", f"silence {silence_id}")
        silence = self.store.get_silence(silence_id)
        with self.guard.audited(access, "alerts.unsilence", f"silence {silence.id}"):
            return self.store.end_silence(silence.id, access.principal).to_json()

    # -- the rules
    def prometheus_rules(self, access: Access) -> str:
        """Every rule this server judges (shipped, site, derived from its facility) as a Prometheus rule file."""
        from aidc.monitoring.alerts.derived import places
        from aidc.monitoring.alerts.export import prometheus_rule_file
        from aidc.monitoring.alerts.runner import all_rules, load_site

        self.guard.require_somewhere(access, "alerts:read", "alerts.read", "alert rules")
        facility = self._facility()
        rules = all_rules(facility, load_site(self.settings.alert_rules or None))
        return prometheus_rule_file(
            rules, places(facility) if facility is not None else {}, interval_s=self.settings.alerts_interval_s
        )
