"""The alert part of the MetadataStore contract, on SQLite and PostgreSQL: an alert's episode from pending through
firing to resolved, acknowledgement, project scope, and silences that expire or are ended."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aidc.errors import Conflict, NotFound
from aidc.store.metadata import MetadataStore, open_metadata_store

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def _alert(id_: str, **over: object) -> dict[str, object]:
    return {
        "id": id_,
        "fingerprint": "fp-" + id_,
        "rule": "RackPowerOverBudget",
        "origin": "facility",
        "severity": "critical",
        "state": "pending",
        "labels": {"rack": "lab-rack"},
        "project": None,
        "summary": "rack lab-rack draws 11 kW",
        "runbook": "shed load",
        "value": 11000.0,
        "threshold": 10000.0,
        "started_at": T0,
    } | over


class AlertStoreContract:
    @pytest.fixture()
    def store(self) -> MetadataStore:
        raise NotImplementedError

    def test_an_alert_goes_pending_firing_resolved_and_keeps_its_history(self, store: MetadataStore) -> None:
        store.save_alerts([_alert("a1")])
        assert [(a.id, a.state) for a in store.open_alerts()] == [("a1", "pending")]
        store.save_alerts([{"id": "a1", "state": "firing", "fired_at": T0 + timedelta(minutes=2), "value": 12000.0}])
        store.save_alerts([{"id": "a1", "state": "resolved", "resolved_at": T0 + timedelta(minutes=9)}])
        assert store.open_alerts() == []
        a = store.get_alert("a1")
        assert (a.state, a.value, a.labels) == ("resolved", 12000.0, {"rack": "lab-rack"})
        assert (a.started_at, a.fired_at, a.resolved_at) == (T0, T0 + timedelta(minutes=2), T0 + timedelta(minutes=9))
        store.save_alerts([_alert("a2", fingerprint="fp-a1", started_at=T0 + timedelta(hours=1))])  # it failed again
        assert [a.id for a in store.list_alerts()] == ["a2", "a1"]  # newest first
        assert [a.id for a in store.list_alerts(states=("resolved",))] == ["a1"]

    def test_alerts_are_found_by_a_prefix_and_acknowledged_once(self, store: MetadataStore) -> None:
        store.save_alerts([_alert("abc123"), _alert("abd456")])
        assert store.get_alert("abc").id == "abc123"
        with pytest.raises(NotFound):
            store.get_alert("ab")  # two match: not found, never a guess
        first = store.ack_alert("abc", "alice")
        again = store.ack_alert("abc123", "bob")
        assert (again.acked_by, again.acked_at) == ("alice", first.acked_at)

    def test_a_projects_alerts_are_kept_from_other_projects(self, store: MetadataStore) -> None:
        store.save_alerts([_alert("f1"), _alert("p1", project="vision"), _alert("p2", project="speech")])
        assert {a.id for a in store.list_alerts(projects=["vision"])} == {"f1", "p1"}
        assert {a.id for a in store.list_alerts()} == {"f1", "p1", "p2"}

    def test_silences_are_in_force_until_they_expire_or_are_ended(self, store: MetadataStore) -> None:
        now = datetime.now(UTC)
        s1 = store.add_silence(
            {
                "id": "s1",
                "matchers": {"rack": "lab-rack"},
                "created_by": "alice",
                "expires_at": now + timedelta(hours=1),
            }
        )
        store.add_silence({"id": "s2", "matchers": {"node": "=~gpu-.*"}, "expires_at": now - timedelta(minutes=1)})
        assert s1.matchers == {"rack": "lab-rack"} and s1.ended_at is None
        assert [s.id for s in store.list_silences(active_at=now)] == ["s1"]
        ended = store.end_silence("s1", "bob")
        assert ended.ended_by == "bob" and store.list_silences(active_at=now) == []
        with pytest.raises(Conflict):
            store.end_silence("s1", "bob")
        assert {s.id for s in store.list_silences()} == {"s1", "s2"}

    def test_the_migration_makes_the_tables_the_models_describe(self, store: MetadataStore) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        from aidc.store.metadata.schema import Base

        with store.engine.connect() as conn:  # type: ignore[attr-defined]
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert [d for d in diffs if "alert" in str(d)] == []


class TestSqlite(AlertStoreContract):
    @pytest.fixture()
    def store(self, tmp_path: Path) -> MetadataStore:
        return open_metadata_store(f"sqlite:///{tmp_path / 'aidc.db'}")


@pytest.mark.postgres
class TestPostgres(AlertStoreContract):
    @pytest.fixture()
    def store(self, postgres_url: str) -> Iterator[MetadataStore]:
        from sqlalchemy import text

        s = open_metadata_store(postgres_url)
        with s.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(text("TRUNCATE alerts, alert_silences"))
        yield s
        with s.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(text("TRUNCATE alerts, alert_silences"))
        s.close()
