"""The metadata store's change feed: a token that moves whenever a watched table may have changed.

A reader that keeps what it read under a token may hand it out again for as long as the token is the same (the API's
read cache, aidc.api.read_cache). Every writer counts — this server's requests, its scheduler, job processes and CLI
commands on other hosts — so the feed asks the database, not this process:

- SQLite: triggers count each watched table's changes in ``table_changes`` (migration 0007). The feed reads
  ``PRAGMA data_version`` on a connection of its own for every token — it moves whenever another connection, of any
  process, commits: a few microseconds, no I/O — and reads the counters again only when it has moved.
- PostgreSQL: a trigger on each watched table sends ``NOTIFY aidc_changes, '<table>'`` when a statement changes it
  (migrations 0006 and 0007), and a thread of this process LISTENs. A notification comes when the writer's transaction
  commits; until this process has read it, another process's write is not yet seen (a millisecond or so on one
  network). This process's own commits move the token themselves, for the tables their statements wrote, so a
  client that wrote through this server reads its write back at once. While the listening connection is down there
  is no token: nothing may be reused.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Iterable
from typing import Any, Protocol

from sqlalchemy import Engine, event

log = logging.getLogger("aidc.store.changes")

CHANNEL = "aidc_changes"
# The tables the API's kept answers are read from (runs, their stages, metrics and artifacts; model and dataset
# versions), and those whose changes alter who a verified token stands for (only revocation, expiry, disabling and
# role bindings count: not a token's last use). A table added here needs triggers in a new migration.
RECORD_TABLES = (
    "pipeline_runs",
    "stage_runs",
    "metrics",
    "artifacts",
    "model_versions",
    "datasets",
    "dataset_versions",
)
SECURITY_TABLES = ("api_tokens", "principals", "role_bindings")
WATCHED = RECORD_TABLES + SECURITY_TABLES
ALL = "*"  # (every watched table)


class ChangeFeed(Protocol):
    def token(self, tables: Iterable[str]) -> Hashable | None:
        """A value that stays the same while none of ``tables`` changes; None: changes cannot be vouched for now."""

    def watch(self, engine: Engine) -> None:
        """Count commits made through ``engine`` (in this process) at once, before any notification of them."""

    def close(self) -> None: ...


class SqliteChanges:
    """The triggers' counters, read again whenever ``PRAGMA data_version`` of a connection that never writes moves
    (every commit on the file, by anyone, moves it)."""

    def __init__(self, engine: Engine) -> None:
        self._fairy = _detached(engine)
        self._conn = self._fairy.dbapi_connection
        self._lock = threading.Lock()
        self._version: int | None = None
        self._counts: dict[str, int] = {}

    def token(self, tables: Iterable[str]) -> Hashable | None:
        with self._lock:
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._version:  # (read after the version: a commit in between is seen now or next time)
                self._counts = dict(self._conn.execute("SELECT name, generation FROM table_changes").fetchall())
                self._version = version
            return tuple(self._counts[t] for t in tables)

    def watch(self, engine: Engine) -> None:
        """Nothing to do: the feed's connection sees this process's commits as it sees everyone's."""

    def close(self) -> None:
        with self._lock:
            self._fairy.close()


class PostgresChanges:
    """A generation per table, moved by LISTEN aidc_changes and by this process's own commits."""

    def __init__(self, engine: Engine, *, retry_s: float = 1.0) -> None:
        self._engine, self._retry_s = engine, retry_s
        self._lock = threading.Lock()
        self._tables: dict[str, int] = dict.fromkeys(WATCHED, 0)
        self._listening = False
        self._stop = threading.Event()
        self._fairy: Any = None
        self.watch(engine)
        self._thread = threading.Thread(target=self._listen_forever, name="aidc-change-feed", daemon=True)
        self._thread.start()

    def token(self, tables: Iterable[str]) -> Hashable | None:
        if not self._listening:
            return None
        return tuple(self._tables[t] for t in tables)

    def watch(self, engine: Engine) -> None:
        # The watched tables a transaction writes are noted as its statements run; its commit moves their
        # generations as it begins, and once more when the connection goes back to the pool — after the database
        # has made it visible. A read that began in between and saw the old rows is kept under a token that is
        # gone by the time anyone could ask for it again. (Reads commit too, through the ORM: they move nothing.)
        event.listen(engine, "after_cursor_execute", self._executed)
        event.listen(engine, "commit", self._committing)
        event.listen(engine, "rollback", self._rolled_back)
        event.listen(engine.pool, "checkin", self._checked_in)

    def _executed(self, conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        if context is not None and (context.isinsert or context.isupdate or context.isdelete):
            table = getattr(getattr(getattr(context.compiled, "statement", None), "table", None), "name", ALL)
        elif statement.lstrip()[:6].upper() == "SELECT":
            return
        else:  # DDL, or SQL text: which tables it changes is unknown
            table = ALL
        if table == ALL or table in self._tables:
            conn.info.setdefault("aidc_wrote", set()).add(table)

    def _committing(self, conn: Any) -> None:
        wrote = conn.info.pop("aidc_wrote", None)
        if wrote:
            conn.info["aidc_committed"] = wrote
            self._move(wrote)

    def _rolled_back(self, conn: Any) -> None:
        conn.info.pop("aidc_wrote", None)

    def _checked_in(self, _dbapi_conn: Any, record: Any) -> None:
        wrote = record.info.pop("aidc_committed", None) if record is not None else None
        if wrote:
            self._move(wrote)

    def _move(self, tables: Iterable[str]) -> None:
        with self._lock:
            for table in self._tables if ALL in tables else tables:
                self._tables[table] += 1

    def _listen_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self._fairy = _detached(self._engine)
                conn = self._fairy.dbapi_connection
                conn.rollback()  # (the pool's ping may have begun a transaction)
                conn.autocommit = True
                conn.execute(f"LISTEN {CHANNEL}")
                self._move([ALL])  # whatever changed while nobody listened is unknown: forget every token
                self._listening = True
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=1.0):
                        self._move([note.payload if note.payload in self._tables else ALL])
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
