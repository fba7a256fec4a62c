"""The server's memory of tokens it has verified: who each stands for, for a few seconds, keyed by an HMAC of it.

Verifying a token costs an argon2 hash (~50 ms) and three queries (token, principal, roles); a client sends the
same token on every request. So the caller a token was found to be is kept for ``ttl_s`` seconds (default 10),
under HMAC-SHA256(process secret, token) — never the token itself, and the key is useless outside this process.
A change made through this server (revoking a token, disabling a user, granting or revoking a role) forgets the
entries it concerns at once. A change made elsewhere (the CLI on the store, another server, a job) is seen through
the store's change feed when the server follows it (``follow``): an entry is kept only while the feed's token for
the security tables is what it was before the token was verified, so the next request after such a change asks
the store again. Without a feed, or while it cannot vouch, such a change takes effect within ``ttl_s``. A token's
expiry is checked on every request, cached or not.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from aidc.security.roles import Access

DEFAULT_TTL_S = 10.0
MAX_ENTRIES = 10_000  # a bound on memory; past it the cache starts over (each token then verifies once more)


@dataclass(frozen=True)
class _Entry:
    access: Access
    expires_at: datetime | None  # the token's own expiry
    fresh_until: float  # time.monotonic() after which the store is asked again
    seen: Hashable | None  # the change feed's token from before the verification


class VerifiedTokens:
    def __init__(self, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._secret = secrets.token_bytes(32)
        self._entries: dict[bytes, _Entry] = {}
        self._lock = threading.Lock()
        self._changes: Callable[[], Hashable | None] | None = None

    def follow(self, changes: Callable[[], Hashable | None] | None) -> None:
        """Keep an entry only while ``changes()`` (the change feed's token for the security tables) is unchanged;
        None: by ``ttl_s`` alone again."""
        with self._lock:
            self._changes = changes
            self._entries.clear()  # (kept under the old rule)

    def seen(self) -> Hashable | None:
        """What ``put`` needs from before the store is read: a change after this moment drops the entry."""
        changes = self._changes
        return changes() if changes is not None else None

    def key(self, token: str) -> bytes:
        return hmac.new(self._secret, token.encode(), hashlib.sha256).digest()

    def get(self, key: bytes, source: str, now: datetime | None = None) -> Access | None:
        """The caller ``key``'s token was verified to be, with this request's ``source``; None: ask the store."""
        entry, changes = self._entries.get(key), self._changes
        if entry is None:
            return None
        if (
            entry.fresh_until <= time.monotonic()
            or (entry.expires_at is not None and entry.expires_at <= (now or datetime.now(UTC)))
            or (changes is not None and changes() != entry.seen)
        ):
            with self._lock:
                self._entries.pop(key, None)
            return None
        return replace(entry.access, source=source)

    def put(self, key: bytes, access: Access, expires_at: datetime | None, seen: Hashable | None = None) -> None:
        """``seen``: what ``seen()`` said before the verification began."""
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = _Entry(access, expires_at, time.monotonic() + self.ttl_s, seen)

    def forget(self, *, token_id: str | None = None, principal: str | None = None) -> None:
        """Drop what is known of one token, or of every token of one principal."""
        with self._lock:
            for key, entry in list(self._entries.items()):
                if entry.access.token_id == token_id or entry.access.principal == principal:
                    del self._entries[key]
