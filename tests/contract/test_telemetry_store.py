"""The telemetry part of the MetadataStore contract, on SQLite and PostgreSQL: samples by series and time range,
retention that folds raw readings into 1-minute and then 1-hour means, and operators' node states."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aidc.store.metadata import MetadataStore, open_metadata_store
from aidc.store.metadata.records import Sample

DAY = 24 * 3600.0
T0 = 1_700_000_000.0 // 3600 * 3600  # an hour boundary


class TelemetryStoreContract:
    @pytest.fixture()
    def store(self) -> MetadataStore:
        raise NotImplementedError

    def test_samples_are_found_by_metric_node_labels_and_time_range(self, store: MetadataStore) -> None:
        store.add_samples(
            [
                Sample("n1", "node_power_watts", 300.0, T0, source="redfish"),
                Sample("n1", "node_power_watts", 310.0, T0 + 10, source="redfish"),
                Sample("n2", "node_power_watts", 200.0, T0 + 10, measured=False, source="model"),
                Sample("n1", "gpu_temperature_celsius", 60.0, T0 + 10, labels="gpu=0", source="nvml"),
                Sample("n1", "gpu_temperature_celsius", 70.0, T0 + 10, labels="gpu=1", source="nvml"),
            ]
        )
        assert [s.value for s in store.query_samples(metric="node_power_watts", node="n1")] == [300.0, 310.0]
        assert [s.value for s in store.query_samples(metric="node_power_watts", since=T0 + 5)] == [310.0, 200.0]
        assert [s.value for s in store.query_samples(metric="node_power_watts", until=T0 + 5)] == [300.0]
        hot = store.query_samples(metric="gpu_temperature_celsius", labels="gpu=1")
        assert [(s.value, s.source) for s in hot] == [(70.0, "nvml")]
        modelled = store.query_samples(node="n2")
        assert [(s.measured, s.source) for s in modelled] == [(False, "model")]
        assert len(store.query_samples(node=["n1", "n2"], metric=["node_power_watts"])) == 3

    def test_the_latest_reading_of_each_series(self, store: MetadataStore) -> None:
        store.add_samples([Sample("n1", "cpu", v, T0 + i) for i, v in enumerate((1.0, 2.0, 3.0))])
        store.add_samples([Sample("n1", "cpu", 9.0, T0 - 1000)])
        latest = store.latest_samples(within_s=60, now=T0 + 10)
        assert [(s.metric, s.value) for s in latest] == [("cpu", 3.0)]

    def test_trends_are_per_minute_means_of_each_node_worked_out_by_the_database(self, store: MetadataStore) -> None:
        store.add_samples([Sample("n1", "cpu", v, T0 + 10 * i) for i, v in enumerate((0.2, 0.4, 0.6, 0.8, 1.0, 1.2))])
        store.add_samples([Sample("n1", "cpu", 0.5, T0 + 60), Sample("n2", "cpu", 0.9, T0 + 5)])
        store.add_samples([Sample("n1", "power", 300.0, T0 + 70), Sample("n1", "cpu", 9.0, T0 - 600)])
        trends = store.sample_trends(["cpu", "power"], since=T0 - 1, bucket_s=60)
        assert [(n, m, at - T0, round(v, 6)) for n, m, at, v in trends] == [
            ("n1", "cpu", 0.0, 0.7),  # the first minute's six readings (the one before ``since`` left out)
            ("n1", "cpu", 60.0, 0.5),
            ("n1", "power", 60.0, 300.0),
            ("n2", "cpu", 0.0, 0.9),
        ]
        assert store.sample_trends([], since=T0) == []

    def test_retention_folds_raw_into_minutes_and_minutes_into_hours(self, store: MetadataStore) -> None:
        old = T0 - 40 * DAY  # past both retention periods
        store.add_samples([Sample("n1", "p", 100.0 + i, old + i * 10) for i in range(12)])  # 2 minutes of readings
        store.add_samples([Sample("n1", "p", 50.0, old + 30, measured=False)])  # one modelled reading in minute 1
        recent = T0 - 2 * DAY  # past the raw day, within the month
        store.add_samples([Sample("n1", "p", 10.0, recent), Sample("n1", "p", 20.0, recent + 20)])
        fresh = T0 - 60
        store.add_samples([Sample("n1", "p", 1.0, fresh)])
        done = store.fold_samples(now=T0)
        assert done["raw->60"] == 15 and done["60->3600"] == 2
        assert [s.value for s in store.query_samples(resolution=0)] == [1.0]  # the last day stays raw
        minutes = store.query_samples(resolution=60)
        assert [(s.at, s.value, s.count) for s in minutes] == [(recent // 60 * 60, 15.0, 2)]
        hours = store.query_samples(resolution=3600)
        assert len(hours) == 1 and hours[0].at == old // 3600 * 3600 and hours[0].count == 13
        assert hours[0].value == pytest.approx((sum(100.0 + i for i in range(12)) + 50.0) / 13)
        assert hours[0].measured is False  # one modelled reading makes the whole bucket modelled
        assert store.fold_samples(now=T0) == {"raw->60": 0, "60->3600": 0}  # folding again changes nothing

    def test_a_node_is_cordoned_drained_and_released(self, store: MetadataStore) -> None:
        assert store.cordoned_nodes() == set() and store.node_states() == []
        state = store.set_node_state("gpu-001", cordoned=True, reason="fan swap", by="alice", host="lab-box-7")
        assert (state.cordoned, state.drained, state.reason, state.changed_by) == (True, False, "fan swap", "alice")
        assert state.host == "lab-box-7"
        store.set_node_state("gpu-002", cordoned=True, drained=True, by="bob")
        assert store.cordoned_nodes() == {"gpu-001", "gpu-002"}
        released = store.set_node_state("gpu-001", cordoned=False, drained=True, by="alice")
        assert not released.cordoned and not released.drained  # drained means nothing on a node that takes work
        assert released.host == "lab-box-7"  # kept when a later change does not say
        assert store.cordoned_nodes() == {"gpu-002"}
        assert [s.node for s in store.node_states()] == ["gpu-001", "gpu-002"]

    def test_a_nodes_failures_are_kept_per_node_oldest_first_and_counted_since_a_time(
        self, store: MetadataStore
    ) -> None:
        from datetime import UTC, datetime, timedelta

        before = datetime.now(UTC) - timedelta(seconds=1)
        first = store.add_node_failure("gpu-001", "worker 1 (pid 7) died", host="lab-box-7", run_id="run-1")
        store.add_node_failure("gpu-002", "worker 0 died")
        store.add_node_failure("gpu-001", "x" * 900, run_id="run-2")  # a long reason is cut, not refused
        mine = store.node_failures(node="gpu-001")
        assert [(f.run_id, f.host) for f in mine] == [("run-1", "lab-box-7"), ("run-2", "")]
        assert mine[0].id == first.id and mine[0].reason == "worker 1 (pid 7) died" and len(mine[1].reason) == 500
        assert len(store.node_failures()) == 3
        assert len(store.node_failures(node="gpu-001", since=before)) == 2
        assert store.node_failures(node="gpu-001", since=datetime.now(UTC) + timedelta(seconds=60)) == []

    def test_the_migration_makes_the_tables_the_models_describe(self, store: MetadataStore) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        from aidc.store.metadata.schema import Base

        with store.engine.connect() as conn:  # type: ignore[attr-defined]
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        watched = ("telemetry_samples", "node_states", "node_failures")
        assert [d for d in diffs if any(t in str(d) for t in watched)] == []


class TestSqlite(TelemetryStoreContract):
    @pytest.fixture()
    def store(self, tmp_path: Path) -> MetadataStore:
        return open_metadata_store(f"sqlite:///{tmp_path / 'aidc.db'}")


@pytest.mark.postgres
class TestPostgres(TelemetryStoreContract):
    @pytest.fixture()
    def store(self, postgres_url: str) -> Iterator[MetadataStore]:
        from sqlalchemy import text

        s = open_metadata_store(postgres_url)
        with s.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(text("TRUNCATE telemetry_samples, node_states RESTART IDENTITY"))
        yield s
        with s.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(text("TRUNCATE telemetry_samples, node_states RESTART IDENTITY"))
        s.close()
