"""Answers of the read routes, kept while the store's change feed says nothing they were read from has changed.

Dashboards and CLIs poll the same lists over and over; reading and encoding them again costs 0.2–1 ms of CPU each
time, while checking that nothing changed costs microseconds. An answer is kept under the route, its parameters and
the projects the caller may read there (so one project's answer is never another's), together with the feed's
token for the tables it was read from; it is handed out again only while the token is the same
(aidc.store.metadata.changes says when that is). Everything else a request goes through still runs for every
request: authentication, the role check, and the audit entry of a denied read — answers that raised are never kept.

While one request reads an answer, others asking for the same one under the same token wait for it instead of
reading it too. Least recently used answers go once ``entries`` are kept.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable

from aidc.store.metadata.changes import ChangeFeed


class ReadCache:
    def __init__(self, feed: ChangeFeed | None, entries: int) -> None:
        self.feed = feed if entries > 0 else None
        self.entries = entries
        self._kept: OrderedDict[Hashable, tuple[Hashable, bytes]] = OrderedDict()
        self._reading: dict[Hashable, tuple[Hashable, asyncio.Future[bytes]]] = {}

    async def answer(self, key: Hashable, tables: Iterable[str],
                     read: Callable[[], Awaitable[bytes]]) -> tuple[bytes, bool | None]:
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
        self._kept[key] = (token, body)
        self._kept.move_to_end(key)
        while len(self._kept) > self.entries:
            self._kept.popitem(last=False)
        return body, False

    def close(self) -> None:
        self._kept.clear()
        if self.feed is not None:
            self.feed.close()
