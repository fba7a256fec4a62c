"""The telemetry tables of SqlMetadataStore: node samples with retention and downsampling, and node states.

Retention (``fold_samples``): raw readings are kept for a day, then folded into 1-minute means kept for 30 days,
then into 1-hour means kept for good. A bucket is keyed by its series (metric, node, labels) and its start; it keeps
how many readings it averages and whether every one of them was measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, select, text
from sqlalchemy.orm import Session

from aidc.store.metadata import records as r
from aidc.store.metadata.schema import NodeFailureRow, NodeStateRow, TelemetrySampleRow

RAW_KEEP_S = 24 * 3600.0  # raw readings: a day
MINUTE_KEEP_S = 30 * 24 * 3600.0  # 1-minute means: a month; 1-hour means after that
# (resolution folded, into resolution, after seconds)
RETENTION = ((0, 60, RAW_KEEP_S), (60, 3600, MINUTE_KEEP_S))
# floor(at / n) on both databases: CAST truncates on SQLite but rounds on PostgreSQL, so correct it
_FLOOR = "(CAST(at / {n} AS BIGINT) - CASE WHEN CAST(at / {n} AS BIGINT) > at / {n} THEN 1 ELSE 0 END)"
_COLUMNS = ("at", "node", "metric", "labels", "value", "measured", "source", "resolution", "count")


class SqlTelemetry:
    """Mixed into SqlMetadataStore; uses its ``_session``, ``_sessions`` and ``_reading``."""

    _sessions: Any
    _session: Callable[[], AbstractContextManager[Session]]
    _reading: Callable[[], AbstractContextManager[Any]]
    engine: Engine

    # -- samples
    def add_samples(self, samples: Iterable[r.Sample]) -> int:
        """One transaction through the driver itself (no per-row SQLAlchemy work: a collector of 10,000 nodes writes
        200,000 rows a round): executemany of tuples on SQLite, COPY on PostgreSQL."""
        rows = [tuple(getattr(s, c) for c in _COLUMNS) for s in samples]
        if not rows:
            return 0
        columns = ", ".join(f'"{c}"' for c in _COLUMNS)
        with self.engine.begin() as conn:
            raw = conn.connection.driver_connection
            if self.engine.dialect.name == "postgresql":
                with raw.cursor() as cur, cur.copy(f"COPY telemetry_samples ({columns}) FROM STDIN") as copy:  # type: ignore[union-attr]
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" for _ in _COLUMNS)
                raw.executemany(f"INSERT INTO telemetry_samples ({columns}) VALUES ({marks})", rows)  # type: ignore[union-attr]
        return len(rows)

    def query_samples(
        self,
        *,
        metric: str | Collection[str] | None = None,
        node: str | Collection[str] | None = None,
        labels: str | None = None,
        since: float | None = None,
        until: float | None = None,
        resolution: int | None = None,
        limit: int | None = None,
    ) -> list[r.Sample]:
        t = cast(Table, TelemetrySampleRow.__table__)
        q = select(*(t.c[c] for c in _COLUMNS))
        for column, value in (("metric", metric), ("node", node)):
            if isinstance(value, str):
                q = q.where(t.c[column] == value)
            elif value is not None:
                q = q.where(t.c[column].in_(sorted(set(value))))
        if labels is not None:
            q = q.where(t.c.labels == labels)
        if since is not None:
            q = q.where(t.c.at >= since)
        if until is not None:
            q = q.where(t.c.at < until)
        if resolution is not None:
            q = q.where(t.c.resolution == resolution)
        q = q.order_by(t.c.at, t.c.id)
        if limit is not None:
            q = q.limit(limit)
        with self._reading() as conn:
            # the driver's plain tuples, not SQLAlchemy rows: an energy report reads tens of thousands of readings,
            # and building a Row for each doubled the read's cost (columns in _COLUMNS' order; no type needs
            # converting but the boolean, which SQLite keeps as 0/1)
            cursor = conn.execute(q).cursor
            return [
                r.Sample(node, metric, value, at, labels, bool(measured), source, resolution, count)
                for at, node, metric, labels, value, measured, source, resolution, count in cursor.fetchall()
            ]

    def latest_samples(self, *, within_s: float = 120.0, now: float | None = None) -> list[r.Sample]:
        """The newest raw reading of each series seen in the last ``within_s`` seconds."""
        now = time.time() if now is None else now
        newest: dict[tuple[str, str, str], r.Sample] = {}
        for s in self.query_samples(since=now - within_s, resolution=0):
            newest[(s.node, s.metric, s.labels)] = s  # ordered by time: the last one wins
        return list(newest.values())

    def sample_trends(
        self, metrics: Collection[str], *, since: float, bucket_s: int = 60
    ) -> list[tuple[str, str, float, float]]:
        if not metrics:
            return []
        bucket = _FLOOR.format(n=float(bucket_s))
        names = sorted(set(metrics))
        marks = ", ".join(f":m{i}" for i in range(len(names)))
        params: dict[str, Any] = {f"m{i}": m for i, m in enumerate(names)} | {"since": since, "size": bucket_s}
        query = text(
            f"SELECT node, metric, {bucket} * :size AS start, AVG(value) FROM telemetry_samples "
            f"WHERE metric IN ({marks}) AND at >= :since AND resolution = 0 "
            f"GROUP BY node, metric, {bucket} ORDER BY node, metric, start"
        )
        with self._reading() as conn:
            return [(row[0], row[1], float(row[2]), float(row[3])) for row in conn.execute(query, params)]

    def fold_samples(self, now: float | None = None) -> dict[str, int]:
        """Apply retention: raw readings older than a day become 1-minute means, 1-minute means older than 30
        days become 1-hour means. Returns how many rows were folded at each step.

        Each step is two statements in one transaction, worked by the database itself (no rows through Python):
        INSERT … SELECT the bucket means GROUP BY series and bucket, then DELETE what they replace."""
        now = time.time() if now is None else now
        done: dict[str, int] = {}
        floor = _FLOOR
        for source, target, keep_s in RETENTION:
            cutoff = (now - keep_s) // target * target  # whole buckets only: a bucket is folded once, complete
            bucket = floor.format(n=float(target))
            params = {"source": source, "target": target, "cutoff": cutoff}
            with self.engine.begin() as conn:
                folded = conn.execute(
                    text(
                        "INSERT INTO telemetry_samples (at, node, metric, labels, value, measured, source, resolution, "
                        f"count) SELECT {bucket} * :target, node, metric, labels, SUM(value * count) / SUM(count), "
                        "CASE WHEN SUM(CASE WHEN measured THEN 0 ELSE 1 END) = 0 THEN TRUE ELSE FALSE END, "
                        "MIN(source), :target, SUM(count) FROM telemetry_samples "
                        f"WHERE resolution = :source AND at < :cutoff GROUP BY {bucket}, node, metric, labels"
                    ),
                    params,
                ).rowcount
                deleted = conn.execute(
                    text("DELETE FROM telemetry_samples WHERE resolution = :source AND at < :cutoff"), params
                ).rowcount
            done[f"{source or 'raw'}->{target}"] = deleted if folded else 0
        return done

    # -- node states: an operator's cordon and drain
    def set_node_state(
        self, node: str, *, cordoned: bool, drained: bool = False, reason: str = "", by: str = "", host: str = ""
    ) -> r.NodeState:
        """Cordon (no new work), drain (cordoned, its work asked to move) or release ``node``; one row per node.
        ``host``: its hostname, what Ray knows it by (the serving controller keeps replicas off it by that)."""
        with self._session() as s:
            row = s.get(NodeStateRow, node)
            if row is None:
                row = NodeStateRow(node=node)
                s.add(row)
            row.cordoned, row.drained = cordoned, drained and cordoned
            row.reason, row.changed_by = reason[:500], by[:200]
            if host or row.host is None:
                row.host = host[:200]
            row.updated_at = datetime.now(UTC)
            s.flush()
            return r.NodeState.model_validate(row)

    def node_states(self) -> list[r.NodeState]:
        with self._session() as s:
            return [
                r.NodeState.model_validate(row) for row in s.scalars(select(NodeStateRow).order_by(NodeStateRow.node))
            ]

    def cordoned_nodes(self) -> set[str]:
        """The names of the nodes that take no new jobs or replicas (what the scheduler asks each pass)."""
        with self._reading() as conn:
            return set(conn.scalars(select(NodeStateRow.node).where(NodeStateRow.cordoned.is_(True))))

    # -- node failures: what the automatic cordon counts
    def add_node_failure(self, node: str, reason: str, *, host: str = "", run_id: str | None = None) -> r.NodeFailure:
        with self._session() as s:
            row = NodeFailureRow(node=node[:200], host=host[:200], reason=reason[:500], run_id=run_id)
            s.add(row)
            s.flush()
            return r.NodeFailure.model_validate(row)

    def node_failures(self, *, node: str | None = None, since: datetime | None = None) -> list[r.NodeFailure]:
        query = select(NodeFailureRow).order_by(NodeFailureRow.at, NodeFailureRow.id)
        if node is not None:
            query = query.where(NodeFailureRow.node == node)
        if since is not None:
            query = query.where(NodeFailureRow.at >= since)
        with self._session() as s:
            return [r.NodeFailure.model_validate(row) for row in s.scalars(query)]
