"""Failed secrets per key (a token id, a source address): a leaky bucket that refuses a key for a bounded while.

Each failure adds one to the key's bucket and the bucket drains one every ``drain_s`` seconds. Past ``limit`` the
key is refused (429, with Retry-After) without its secret being hashed — each argon2 check costs ~33 ms, so an
unthrottled flood of wrong secrets is also a flood of CPU. The bucket never holds more than ``limit + burst``:
a key is never refused for longer than ``burst × drain_s`` after its last failure, so nobody can lock a user out
for good, only for as long as they keep failing themselves. Memory is bounded by ``max_keys``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

DEFAULT_LIMIT = 10  # failures a key may have in hand before it is refused
DEFAULT_BURST = 10  # failures counted beyond the limit: the longest lock is burst × drain_s (60 s)
DEFAULT_DRAIN_S = 6.0  # one failure forgiven every 6 s: 10 a minute, sustained, is never refused
MAX_KEYS = 50_000


@dataclass
class _Bucket:
    level: float
    at: float


class Throttle:
    def __init__(
        self,
        *,
        limit: int = DEFAULT_LIMIT,
        burst: int = DEFAULT_BURST,
        drain_s: float = DEFAULT_DRAIN_S,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.burst, self.drain_s, self.max_keys, self.clock = limit, burst, drain_s, max_keys, clock
        self._buckets: dict[Hashable, _Bucket] = {}
        self._lock = threading.Lock()

    def _level(self, key: Hashable, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        level = max(0.0, bucket.level - (now - bucket.at) / self.drain_s)
        if level == 0.0:
            del self._buckets[key]
        return level

    def retry_after(self, key: Hashable) -> float:
        """Seconds until ``key`` may be tried again; 0 when it may now."""
        with self._lock:
            level = self._level(key, self.clock())
        return max(0.0, (level - self.limit + 1) * self.drain_s) if level >= self.limit else 0.0

    def failed(self, key: Hashable) -> None:
        with self._lock:
            now = self.clock()
            if key not in self._buckets and len(self._buckets) >= self.max_keys:
                # Forget the buckets that have drained; if none has, the oldest half (an attacker spraying
                # sources can only make the server forget, never remember without bound).
                for old in [k for k in self._buckets if self._level(k, now) == 0.0]:
                    self._buckets.pop(old, None)
                if len(self._buckets) >= self.max_keys:
                    for old in sorted(self._buckets, key=lambda k: self._buckets[k].at)[: self.max_keys // 2]:
                        del self._buckets[old]
            level = self._level(key, now)
            self._buckets[key] = _Bucket(min(level + 1.0, float(self.limit + self.burst)), now)
