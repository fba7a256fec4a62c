"""Requests refused before anyone is authenticated: sampled into the audit chain, the rest counted.

Anyone can send requests without a valid token, so writing one audit row for each would let a flood fill the
disk (and the chain). In each window of ``window_s`` seconds the first ``per_action`` refusals of each route
(at most ``sample`` in all) are written as entries of their own — who, what, from where, why — and the rest
are only counted, by source; when a window
with uncounted refusals ends, one ``auth.rejected`` entry says how many there were and from where (the top
sources). Memory is bounded by ``max_sources``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

DEFAULT_SAMPLE = 100  # at most ~144,000 entries a day however hard the API is flooded
DEFAULT_PER_ACTION = 2
DEFAULT_WINDOW_S = 60.0
MAX_SOURCES = 1000
TOP_SOURCES = 20


class RejectionSampler:
    def __init__(
        self,
        *,
        sample: int = DEFAULT_SAMPLE,
        per_action: int = DEFAULT_PER_ACTION,
        window_s: float = DEFAULT_WINDOW_S,
        max_sources: int = MAX_SOURCES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sample, self.per_action, self.window_s = sample, per_action, window_s
        self.max_sources, self.clock = max_sources, clock
        self._lock = threading.Lock()
        self._start = clock()
        self._written = 0
        self._actions: Counter[str] = Counter()
        self._counted: Counter[str] = Counter()
        self._other = 0  # refusals from sources past max_sources

    def admit(self, source: str, action: str) -> tuple[bool, dict[str, Any] | None]:
        """(write this refusal as an entry of its own?, the summary of a window that has just ended, if any)."""
        with self._lock:
            summary = self._roll(self.clock())
            if self._written < self.sample and self._actions[action] < self.per_action:
                self._written += 1
                self._actions[action] += 1
                return True, summary
            if source in self._counted or len(self._counted) < self.max_sources:
                self._counted[source] += 1
            else:
                self._other += 1
            return False, summary

    def flush(self) -> dict[str, Any] | None:
        """The summary of the window so far if it counted anything (a server stopping, a periodic task)."""
        with self._lock:
            return self._roll(self.clock(), force=True)

    def _roll(self, now: float, *, force: bool = False) -> dict[str, Any] | None:
        if not force and now - self._start < self.window_s:
            return None
        total = sum(self._counted.values()) + self._other
        summary = (
            {
                "not_written": total,
                "written": self._written,
                "window_s": round(now - self._start, 1),
                "top_sources": dict(self._counted.most_common(TOP_SOURCES)),
                "other_sources": len(self._counted) > TOP_SOURCES or self._other > 0,
            }
            if total
            else None
        )
        self._start, self._written, self._counted, self._other = now, 0, Counter(), 0
        self._actions = Counter()
        return summary
