"""The jobs part of the MetadataStore contract, on SQLite and PostgreSQL: idempotent submission, compare-and-set
state changes (two actors never both win one transition), quotas."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aidc.errors import Conflict, NotFound
from aidc.store.metadata import MetadataStore, open_metadata_store


def job(n: int | str, **changes: Any) -> dict[str, Any]:
    return {
        "id": f"job-{n}",
        "project": "p",
        "submitter": "alice",
        "idempotency_key": f"key-{n}",
        "pipeline": "digits",
        "path_name": "pipeline.yaml",
        "spec_text": "pipeline: digits\n",
        "priority": 0,
        "workers": 2,
        "cpus": 1.0,
        "gpus": 0.0,
    } | changes


class JobStoreContract:
    @pytest.fixture()
    def store(self) -> MetadataStore:
        raise NotImplementedError

    def test_a_submitted_job_is_queued_and_found_by_id_or_prefix(self, store: MetadataStore) -> None:
        made, created = store.submit_job(job(1))
        assert created and made.state == "queued" and made.attempts == 0 and made.total_cpus == 2.0
        assert store.get_job("job-1") == made == store.get_job("job-")
        with pytest.raises(NotFound) as exc:
            store.get_job("nope")
        assert "aidc jobs list" in (exc.value.hint or "")

    def test_the_same_key_from_the_same_submitter_returns_the_same_job(self, store: MetadataStore) -> None:
        first, _ = store.submit_job(job(1))
        again, created = store.submit_job(job(2, idempotency_key="key-1"))  # a retry makes a new id; the key wins
        assert not created and again.id == first.id
        other, created = store.submit_job(job(3, idempotency_key="key-1", submitter="bob"))  # keys are per submitter
        assert created and other.id == "job-3"
        with pytest.raises(Conflict, match="differs in priority"):
            store.submit_job(job(4, idempotency_key="key-1", priority=7))
        assert len(store.list_jobs()) == 2

    def test_concurrent_retries_make_one_job(self, store: MetadataStore) -> None:
        results: list[Any] = []

        def submit(i: int) -> None:
            results.append(store.submit_job(job(f"r{i}", idempotency_key="same")))

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({made.id for made, _ in results}) == 1 and sum(created for _, created in results) == 1
        assert len(store.list_jobs()) == 1

    def test_state_changes_are_compare_and_set(self, store: MetadataStore) -> None:
        store.submit_job(job(1))
        started = store.transition_job("job-1", ("queued", "preempted"), "running", attempts=1, worker="h:1:0")
        assert started is not None and started.state == "running" and started.worker == "h:1:0"
        assert store.transition_job("job-1", ("queued",), "running") is None  # already moved: the loser learns it
        assert store.transition_job("job-1", ("running",), None, run_id="run-9").run_id == "run-9"  # fields only
        assert store.transition_job("job-1", ("running",), "cancelled").state == "cancelled"
        assert store.transition_job("job-1", ("running",), "succeeded") is None  # the worker finishing late loses
        assert store.get_job("job-1").state == "cancelled"

    def test_only_one_of_many_racing_transitions_wins(self, store: MetadataStore) -> None:
        store.submit_job(job(1))
        wins: list[Any] = []
        threads = [
            threading.Thread(target=lambda: wins.append(store.transition_job("job-1", ("queued",), "running")))
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(w is not None for w in wins) == 1

    def test_jobs_are_listed_newest_first_with_filters(self, store: MetadataStore) -> None:
        for n, project in enumerate(["p", "q", "p"]):
            store.submit_job(job(n, project=project))
        store.transition_job("job-2", ("queued",), "running", run_id="run-x")
        assert [j.id for j in store.list_jobs(project="p")] == ["job-2", "job-0"]
        assert [j.id for j in store.list_jobs(states=("running",))] == ["job-2"]
        assert [j.id for j in store.list_jobs(run_id="run-x")] == ["job-2"]
        assert len(store.list_jobs(limit=1)) == 1

    def test_quotas_default_to_no_limit_and_change_one_limit_at_a_time(self, store: MetadataStore) -> None:
        assert store.get_quota("p").max_gpus is None
        store.set_quota("p", max_gpus=4, max_jobs=2)
        quota = store.set_quota("p", max_jobs=None, gpu_hours_per_month=100.0)
        assert (quota.max_gpus, quota.max_jobs, quota.gpu_hours_per_month) == (4.0, None, 100.0)
        assert [q.project for q in store.list_quotas()] == ["p"]

    def test_the_migration_makes_the_tables_the_models_describe(self, store: MetadataStore) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        from aidc.store.metadata.schema import Base

        with store.engine.connect() as conn:  # type: ignore[attr-defined]
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert [d for d in diffs if "jobs" in str(d) or "project_quotas" in str(d)] == []


class TestSqlite(JobStoreContract):
    @pytest.fixture()
    def store(self, tmp_path: Path) -> MetadataStore:
        return open_metadata_store(f"sqlite:///{tmp_path / 'aidc.db'}")


@pytest.mark.postgres
class TestPostgres(JobStoreContract):
    @pytest.fixture()
    def store(self, postgres_url: str) -> Iterator[MetadataStore]:
        from sqlalchemy import text

        s = open_metadata_store(postgres_url)
        yield s
        with s.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(text("TRUNCATE jobs, project_quotas"))
        s.close()
