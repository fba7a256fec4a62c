"""The alert loop of the server: every interval, pull new readings from the sample store (and the server's own
job and serving signals), judge the rules, write the alerts that changed, notify for those not silenced.

``AlertSite`` is a site's alerts file: its own rules plus the notifiers and routes, in one YAML.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from aidc.monitoring.alerts.engine import Evaluator, matches, store_row
from aidc.monitoring.alerts.notify import DEFAULT_ROUTES, Dispatcher, NotifierSpec, Route
from aidc.monitoring.alerts.rules import AlertRule, RuleFile, combine, shipped_rules
from aidc.specfile import read_yaml, validate
from aidc.store.metadata import MetadataStore
from aidc.store.metadata.records import Sample, Silence

if TYPE_CHECKING:
    from aidc.facility.model import Facility

log = logging.getLogger("aidc.alerts")
PULL_OVERLAP_S = 5.0  # re-read this far back each pull: a collector's write that lands late (its clock, then its
# transaction) is still seen; readings already held are skipped by time


class AlertSite(RuleFile):
    """A site's alerts file: ``rules`` (added to the shipped and derived ones; same name replaces), ``notifiers``
    and ``routes``."""

    notifiers: list[NotifierSpec] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=lambda: list(DEFAULT_ROUTES))

    @model_validator(mode="after")
    def _routes_name_notifiers(self) -> AlertSite:
        names = {n.name for n in self.notifiers} | {"log"}
        for i, route in enumerate(self.routes):
            for name in route.notify:
                if name not in names:
                    raise ValueError(
                        f"routes[{i}] notifies {name!r}, which is not among the notifiers ({', '.join(sorted(names))})"
                    )
        return self


def load_site(path: str | Path | None) -> AlertSite:
    if path is None:
        return AlertSite()
    site = validate(AlertSite, read_yaml(path))
    site.rules = [r.model_copy(update={"origin": "site"}) for r in site.rules]
    return site


def all_rules(facility: Facility | None, site: AlertSite) -> list[AlertRule]:
    """Shipped platform rules, then the facility's derived ones, then the site's (a later name replaces)."""
    from aidc.monitoring.alerts.derived import facility_rules

    derived = facility_rules(facility) if facility is not None else []
    return combine(shipped_rules(), derived, site.rules)


def silence_matches(silence: Silence, labels: dict[str, Any]) -> bool:
    want = silence.matchers
    regexes = {v: re.compile(v[2:]) for v in want.values() if isinstance(v, str) and v.startswith("=~")}
    return matches({k: str(v) for k, v in labels.items()}, {k: str(v) for k, v in want.items()}, regexes)


class AlertRunner:
    """Evaluates every ``interval_s`` in a thread (or one ``round`` at a time, as tests and benchmarks do)."""

    def __init__(
        self,
        evaluator: Evaluator,
        store: MetadataStore,
        dispatcher: Dispatcher,
        *,
        interval_s: float = 10.0,
        signals: Sequence[Callable[[float], list[Sample]]] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.evaluator, self.store, self.dispatcher = evaluator, store, dispatcher
        self.interval_s, self.signals, self.clock = interval_s, list(signals), clock
        self.dispatcher.silenced = self.silenced
        self._pulled: float | None = None
        self._silences: list[Silence] = []
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0
        self.last_error: str | None = None
        evaluator.resume(store.open_alerts())

    def silenced(self, alert: dict[str, Any]) -> bool:
        return any(silence_matches(s, alert["labels"]) for s in self._silences)

    def pull(self, now: float) -> int:
        """New readings of the watched metrics from the store (since the last pull, with an overlap)."""
        since = now - max(self.evaluator.keep_s.values(), default=0.0) - self.interval_s * 3
        if self._pulled is not None:
            since = max(since, self._pulled - PULL_OVERLAP_S)
        samples = self.store.query_samples(metric=self.evaluator.metrics, since=since, until=now + 1e-6, resolution=0)
        self._pulled = now
        return self.evaluator.observe(samples)

    def round(self, now: float | None = None) -> list[dict[str, Any]]:
        """One evaluation: pull, add the server's signals, judge, store what changed, notify."""
        now = self.clock() if now is None else now
        self.pull(now)
        for signal in self.signals:
            self.evaluator.observe(signal(now))
        changes = self.evaluator.evaluate(now)
        if changes:
            self.store.save_alerts([store_row(c) for c in changes])
            self._silences = self.store.list_silences(active_at=datetime.fromtimestamp(now, UTC))
            self.dispatcher.dispatch(changes)
        self.rounds += 1
        return changes

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="aidc-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.dispatcher.close()

    def _loop(self) -> None:
        while not self._halt.is_set():
            started = time.monotonic()
            try:
                self.round()
                self.last_error = None
            except Exception as exc:  # the store away for a moment: the next round retries
                self.last_error = str(exc)
                log.exception("alert evaluation failed")
            self._halt.wait(max(0.0, self.interval_s - (time.monotonic() - started)))


def build_runner(
    store: MetadataStore,
    facility: Facility | None,
    site: AlertSite,
    *,
    interval_s: float = 10.0,
    signals: Sequence[Callable[[float], list[Sample]]] = (),
    env: dict[str, str] | None = None,
) -> AlertRunner:
    """The server's alert loop for this facility and site file."""
    from aidc.monitoring.alerts.derived import places

    evaluator = Evaluator(all_rules(facility, site), places=places(facility) if facility is not None else {})
    notifiers = {n.name: n.build(dict(os.environ) if env is None else env) for n in site.notifiers}
    dispatcher = Dispatcher(notifiers, site.routes)
    return AlertRunner(evaluator, store, dispatcher, interval_s=interval_s, signals=signals)
