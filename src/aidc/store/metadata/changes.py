"""The metadata store's change feed: a token that moves whenever a watched table may have changed.

A reader that keeps what it read under a token may hand it out again for as long as the token is the same (the API's
read cache, aidc.api.read_cache). Every writer counts — this server's requests, its scheduler, job processes and CLI
commands on other hosts — so the feed asks the database, not this process:

- SQLite: ``PRAGMA data_version`` on a connection of the feed's own, which moves whenever another connection (of any
  process) commits. It is read for every token: a few microseconds, no I/O.
- PostgreSQL: a trigger on each watched table sends ``NOTIFY aidc_changes, '<table>'`` when a statement changes it
  (migration 0006), and a thread of this process LISTENs. A notification comes when the writer's transaction
  commits; until this process has read it, another process's write is not yet seen (a millisecond or so on one
  network). This process's own commits move the token themselves, so a client that wrote through this server reads
  its write back at once. While the listening connection is down there is no token: nothing may be reused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable, Iterable
from typing import Any, Protocol

from sqlalchemy import Engine, event

log = logging.getLogger("aidc.store.changes")

CHANNEL = "aidc_changes"
# The tables the API's cached reads are made of (runs, their stages, metrics and artifacts; model and dataset versions).
WATCHED = ("pipeline_runs", "stage_runs", "metrics", "artifacts", "model_versions", "datasets", "dataset_versions")


class ChangeFeed(Protocol):
    def token(self, tables: Iterable[str]) -> Hashable | None:
        """A value that stays the same while none of ``tables`` changes; None: changes cannot be vouched for now."""

    def watch(self, engine: Engine) -> None:
        """Count commits made through ``engine`` (in this process) at once, before any notification of them."""

    def close(self) -> None: ...


class SqliteChanges:
    """``PRAGMA data_version`` of a connection that never writes: every commit on the file moves it (all tables)."""

    def __init__(self, engine: Engine) -> None:
        self._fairy = _detached(engine)
        self._conn = self._fairy.dbapi_connection
        self._lock = threading.Lock()

    def token(self, tables: Iterable[str]) -> Hashable | None:
        with self._lock:
            cursor = self._conn.execute("PRAGMA data_version")
            return int(cursor.fetchone()[0])

    def watch(self, engine: Engine) -> None:
        """Nothing to do: the feed's connection sees this process's commits as it sees everyone's."""

    def close(self) -> None:
        with self._lock:
            self._fairy.close()


class PostgresChanges:
    """Generations per table from LISTEN aidc_changes, plus one for this process's own commits."""

    def __init__(self, engine: Engine, *, retry_s: float = 1.0) -> None:
        self._engine, self._retry_s = engine, retry_s
        self._lock = threading.Lock()
        self._tables: dict[str, int] = dict.fromkeys(WATCHED, 0)
        self._local = 0  # moved by every commit of a watched engine of this process, and by each (re)connection
        self._listening = False
        self._stop = threading.Event()
        self._fairy: Any = None
        self.watch(engine)
        self._thread = threading.Thread(target=self._listen_forever, name="aidc-change-feed", daemon=True)
        self._thread.start()

    def token(self, tables: Iterable[str]) -> Hashable | None:
        if not self._listening:
            return None
        return (self._local, *(self._tables[t] for t in tables))

    def wait_listening(self, timeout: float) -> bool:
        """Whether the feed is listening within ``timeout`` seconds (the server waits for it once at start)."""
        deadline = time.monotonic() + timeout
        while not self._listening and time.monotonic() < deadline:
            time.sleep(0.02)
        return self._listening

    def watch(self, engine: Engine) -> None:
        # A commit moves the token as it begins, and once more when its connection goes back to the pool — after the
        # database has made it visible. A read that began in between and saw the old rows is kept under a token
        # that is gone by the time anyone could ask for it again.
        event.listen(engine, "commit", self._committing)
        event.listen(engine.pool, "checkin", self._checked_in)

    def _bump_local(self) -> None:
        with self._lock:
            self._local += 1

    def _committing(self, conn: Any) -> None:
        conn.info["aidc_committed"] = True
        self._bump_local()

    def _checked_in(self, _dbapi_conn: Any, record: Any) -> None:
        if record is not None and record.info.pop("aidc_committed", False):
            self._bump_local()

    def _listen_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self._fairy = _detached(self._engine)
                conn = self._fairy.dbapi_connection
                conn.rollback()  # (the pool's ping may have begun a transaction)
                conn.autocommit = True
                conn.execute(f"LISTEN {CHANNEL}")
                self._bump_local()  # whatever changed while nobody listened is unknown: forget every token
                self._listening = True
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=1.0):
                        with self._lock:
                            if note.payload in self._tables:
                                self._tables[note.payload] += 1
                            else:  # a table this version does not know: move everything
                                self._local += 1
            except Exception as exc:  # noqa: BLE001 - the database went away: no tokens until it is back
                if not self._stop.is_set():
                    log.warning("change feed lost its database connection (%s); retrying in %.0f s", exc, self._retry_s)
            finally:
                self._listening = False
                if self._fairy is not None:
                    try:
                        self._fairy.close()
                    except Exception:  # noqa: BLE001
                        pass
                    self._fairy = None
            self._stop.wait(self._retry_s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _detached(engine: Engine) -> Any:
    """A connection made as the engine's pool makes them (same URL, arguments and connect hooks), kept apart from the
    pool: its ``dbapi_connection`` is the driver's; ``close()`` closes it."""
    fairy = engine.raw_connection()
    fairy.detach()
    return fairy


def change_feed(engine: Engine) -> ChangeFeed:
    if engine.dialect.name == "sqlite":
        return SqliteChanges(engine)
    return PostgresChanges(engine)
