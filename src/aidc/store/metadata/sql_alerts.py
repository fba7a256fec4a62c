"""The alert tables of SqlMetadataStore: alert history (pending → firing → resolved, acknowledged) and silences."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from aidc.errors import Conflict, NotFound
from aidc.store.metadata import records as r
from aidc.store.metadata.schema import AlertRow, SilenceRow

ALERT_STATES = ("pending", "firing", "resolved")


def _now() -> datetime:
    return datetime.now(UTC)


class SqlAlerts:
    """Mixed into SqlMetadataStore; uses its ``_session``."""

    _session: Callable[[], AbstractContextManager[Session]]

    def save_alerts(self, alerts: Iterable[dict[str, Any]]) -> None:
        with self._session() as s:
            for alert in alerts:
                row = s.get(AlertRow, alert["id"])
                if row is None:
                    s.add(AlertRow(**(alert | {"updated_at": _now()})))
                else:
                    for key, value in alert.items():
                        setattr(row, key, value)
                    row.updated_at = _now()

    def open_alerts(self) -> list[r.Alert]:
        with self._session() as s:
            rows = s.scalars(select(AlertRow).where(AlertRow.state.in_(("pending", "firing"))))
            return [r.Alert.model_validate(row) for row in rows]

    def list_alerts(
        self,
        *,
        states: Collection[str] | None = None,
        projects: Collection[str] | None = None,
        limit: int = 100,
    ) -> list[r.Alert]:
        q = select(AlertRow)
        if states is not None:
            q = q.where(AlertRow.state.in_(list(states)))
        if projects is not None:
            q = q.where(or_(AlertRow.project.is_(None), AlertRow.project.in_(list(projects))))
        q = q.order_by(AlertRow.started_at.desc(), AlertRow.id.desc()).limit(limit)
        with self._session() as s:
            return [r.Alert.model_validate(row) for row in s.scalars(q)]

    def _alert_row(self, s: Session, alert_id: str) -> AlertRow:
        row = s.get(AlertRow, alert_id)
        if row is None and alert_id:
            rows = s.scalars(select(AlertRow).where(AlertRow.id.startswith(alert_id)).limit(2)).all()
            row = rows[0] if len(rows) == 1 else None
        if row is None:
            raise NotFound(f"no alert {alert_id!r}", hint="list alerts with `aidc alerts list`")
        return row

    def get_alert(self, alert_id: str) -> r.Alert:
        with self._session() as s:
            return r.Alert.model_validate(self._alert_row(s, alert_id))

    def ack_alert(self, alert_id: str, by: str) -> r.Alert:
        with self._session() as s:
            row = self._alert_row(s, alert_id)
            if row.acked_at is None:  # acknowledging twice keeps the first person and time
                row.acked_by, row.acked_at = by[:200], _now()
            s.flush()
            return r.Alert.model_validate(row)

    def add_silence(self, silence: dict[str, Any]) -> r.Silence:
        with self._session() as s:
            row = SilenceRow(**({"created_at": _now()} | silence))
            s.add(row)
            s.flush()
            return r.Silence.model_validate(row)

    def list_silences(self, *, active_at: datetime | None = None) -> list[r.Silence]:
        q = select(SilenceRow)
        if active_at is not None:
            q = q.where(SilenceRow.ended_at.is_(None), SilenceRow.expires_at > active_at)
        with self._session() as s:
            return [r.Silence.model_validate(row) for row in s.scalars(q.order_by(SilenceRow.created_at.desc()))]

    def _silence_row(self, s: Session, silence_id: str) -> SilenceRow:
        row = s.get(SilenceRow, silence_id)
        if row is None and silence_id:
            rows = s.scalars(select(SilenceRow).where(SilenceRow.id.startswith(silence_id)).limit(2)).all()
            row = rows[0] if len(rows) == 1 else None
        if row is None:
            raise NotFound(f"no silence {silence_id!r}", hint="list silences with `aidc alerts list --silences`")
        return row

    def get_silence(self, silence_id: str) -> r.Silence:
        with self._session() as s:
            return r.Silence.model_validate(self._silence_row(s, silence_id))

    def end_silence(self, silence_id: str, by: str) -> r.Silence:
        with self._session() as s:
            row = self._silence_row(s, silence_id)
            if row.ended_at is not None:
                raise Conflict(f"silence {row.id} already ended at {row.ended_at:%Y-%m-%d %H:%M} by {row.ended_by}")
            row.ended_by, row.ended_at = by[:200], _now()
            s.flush()
            return r.Silence.model_validate(row)
