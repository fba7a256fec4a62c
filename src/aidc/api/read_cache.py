"""Answers of the read routes, kept while the store's change feed says nothing they were read from has changed.

Dashboards and CLIs poll the same lists over and over; reading and encoding them again costs 0.2–1 ms of CPU each
time, while checking that nothing changed costs microseconds. An answer is kept under the route, its parameters and
the projects the caller may read there (so one project's answer is never another's), together with the feed's
token for the tables it was read from; it is handed out again only while the token is the same
(aidc.store.metadata.changes says when that is). Everything else a request goes through still runs for every
request: authentication, the role check, and the audit entry of a denied read — answers that raised are never kept.

While one request reads an answer, others asking for the same one under the same token wait for it instead of
reading it too. Least recently used answers go once the kept ones hold ``max_bytes``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable

from aidc.store.metadata.changes import ChangeFeed

ENTRY_BYTES = 256  # what keeping one answer costs besides its body (its key, token and the dict's slot), roughly


class ReadCache:
    def __init__(self, feed: ChangeFeed | None, max_bytes: int) -> None:
        self.feed = feed if max_bytes > 0 else None
        self.max_bytes = max_bytes
        self.kept_bytes = 0
        self._kept: OrderedDict[Hashable, tuple[Hashable, bytes]] = OrderedDict()
        self._reading: dict[Hashable, tuple[Hashable, asyncio.Future[bytes]]] = {}

    async def answer(
        self, key: Hashable, tables: Iterable[str], read: Callable[[], Awaitable[bytes]]
    ) -> tuple[bytes, bool | None]:
        """(the answer, whether it was kept from before); None instead of a bool: keeping is off or cannot be
        vouched for now, and it was read afresh."""
        token = self.feed.token(tables) if self.feed is not None else None
        if token is None:
            return await read(), None
        kept = self._kept.get(key)
        if kept is not None and kept[0] == token:
            self._kept.move_to_end(key)
            return kept[1], True
        reading = self._reading.get(key)
        if reading is not None and reading[0] == token:
            try:
                return await asyncio.shield(reading[1]), True
            except Exception:  # noqa: BLE001 - that read's error was its caller's (an audited denial, say)
                return await read(), False  # this request meets its own, and its own audit entry
        pending: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._reading[key] = (token, pending)
        try:
            body = await read()
        except BaseException as exc:  # (cancelled too: whoever waits reads for itself)
            pending.set_exception(exc if isinstance(exc, Exception) else RuntimeError("the read was abandoned"))
            pending.exception()  # (retrieved: nobody may be waiting for it)
            raise
        finally:
            if self._reading.get(key, (None, None))[1] is pending:
                del self._reading[key]
        pending.set_result(body)
        self._keep(key, token, body)
        return body, False

    def _keep(self, key: Hashable, token: Hashable, body: bytes) -> None:
        if len(body) + ENTRY_BYTES > self.max_bytes:
            return
        old = self._kept.pop(key, None)
        if old is not None:
            self.kept_bytes -= len(old[1]) + ENTRY_BYTES
        self._kept[key] = (token, body)
        self.kept_bytes += len(body) + ENTRY_BYTES
        while self.kept_bytes > self.max_bytes:
            _, (_, gone) = self._kept.popitem(last=False)
            self.kept_bytes -= len(gone) + ENTRY_BYTES
