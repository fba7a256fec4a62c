"""MetadataStore contract: every backend (SQLite, PostgreSQL) must behave the same way for these."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidc.errors import InvalidInput, NotFound
from aidc.store.metadata import MetadataStore, open_metadata_store


class MetadataStoreContract:
    @pytest.fixture()
    def store(self) -> MetadataStore:
        raise NotImplementedError

    def test_a_run_and_its_stages_round_trip(self, store: MetadataStore) -> None:
        store.create_run("run-1", "digits", {"stages": []}, "p.yaml")
        st = store.start_stage("run-1", "train", "train", cache_key="k1", log_path="/tmp/train.log")
        assert st.status == "running"
        store.finish_stage(st.id, "succeeded", outputs={"model": {"artifact": "sha256:ab"}})
        run = store.finish_run("run-1", "succeeded")
        assert run.status == "succeeded" and run.finished_at is not None
        [stage] = store.list_stages("run-1")
        assert stage.outputs == {"model": {"artifact": "sha256:ab"}} and stage.seconds is not None
        assert store.get_run("run-").id == "run-1"  # a unique prefix is enough
        assert store.find_cached_stage("k1").id == stage.id
        assert store.find_cached_stage("other") is None

    def test_restarting_a_stage_reuses_its_row(self, store: MetadataStore) -> None:
        store.create_run("r", "p", {}, None)
        first = store.start_stage("r", "train", "train", cache_key="k", log_path=None)
        store.finish_stage(first.id, "failed", error={"cause": "boom"})
        again = store.start_stage("r", "train", "train", cache_key="k", log_path=None)
        assert again.id == first.id and again.error is None and again.status == "running"
        assert store.find_cached_stage("k") is None  # failed stages are never a cache hit

    def test_unknown_run_is_not_found_with_a_hint(self, store: MetadataStore) -> None:
        with pytest.raises(NotFound) as exc:
            store.get_run("nope")
        assert "aidc runs list" in (exc.value.hint or "")

    def test_transaction_commits_all_or_nothing(self, store: MetadataStore) -> None:
        store.create_run("r", "p", {}, None)
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.register_dataset_version("digits", "sha256:1", schema={}, stats={}, class_balance={},
                                               fingerprint="f1", run_id="r")
                store.finish_run("r", "succeeded")
                raise RuntimeError("crash between writes")
        assert store.list_dataset_versions() == []
        assert store.get_run("r").status == "running"

    def test_metrics_are_kept_in_order_per_stage(self, store: MetadataStore) -> None:
        store.create_run("r", "p", {}, None)
        store.add_metrics("r", "train", [("loss", 0, 2.0), ("loss", 1, 1.0)])
        store.add_metrics("r", "evaluate", [("accuracy", 0, 0.97)])
        assert [(m.name, m.step, m.value) for m in store.metrics("r", stage="train")] == [("loss", 0, 2.0), ("loss", 1, 1.0)]
        assert len(store.metrics("r")) == 3

    def test_dataset_versions_count_up_and_identical_data_is_one_version(self, store: MetadataStore) -> None:
        a = store.register_dataset_version("digits", "sha256:a", schema={"x": "f32"}, stats={"n": 1},
                                           class_balance={"0": 1}, fingerprint="fa", run_id=None)
        b = store.register_dataset_version("digits", "sha256:b", schema={}, stats={}, class_balance={},
                                           fingerprint="fb", run_id=None)
        again = store.register_dataset_version("digits", "sha256:a", schema={}, stats={}, class_balance={},
                                               fingerprint="fa", run_id=None)
        assert (a.version, b.version, again.id) == (1, 2, a.id)
        assert store.get_dataset_version(a.id).schema_ == {"x": "f32"}
        assert [v.ref for v in store.list_dataset_versions("digits")] == ["digits:1", "digits:2"]

    def test_model_versions_and_stage_transitions(self, store: MetadataStore) -> None:
        v1 = store.register_model_version("cnn", onnx_digest="sha256:o1", checkpoint_digest="sha256:c1",
                                          run_id=None, dataset_version_id=None, metrics={"accuracy": 0.9})
        v2 = store.register_model_version("cnn", onnx_digest="sha256:o2", checkpoint_digest=None, run_id=None,
                                          dataset_version_id=None, metrics={}, stage="staging")
        assert (v1.version, v1.stage, v2.version, v2.stage) == (1, "none", 2, "staging")
        store.set_model_stage("cnn", 1, "production")
        store.set_model_stage("cnn", 2, "production")
        stages = {m.version: m.stage for m in store.list_model_versions("cnn")}
        assert stages == {1: "archived", 2: "production"}  # one production version per model
        assert store.get_model_version("cnn").version == 2
        with pytest.raises(InvalidInput):
            store.set_model_stage("cnn", 2, "prod")
        with pytest.raises(NotFound):
            store.get_model_version("cnn", 9)

    def test_deployments(self, store: MetadataStore) -> None:
        mv = store.register_model_version("m", onnx_digest=None, checkpoint_digest=None, run_id=None,
                                          dataset_version_id=None, metrics={})
        d = store.add_deployment("m", mv.id, "http://127.0.0.1:9000", pid=123)
        assert [x.id for x in store.list_deployments(status="running")] == [d.id]
        stopped = store.set_deployment_status(d.id, "stopped")
        assert stopped.stopped_at is not None and store.list_deployments(status="running") == []

    def test_lineage_walks_upstream_transitively(self, store: MetadataStore) -> None:
        store.add_lineage(("dataset_version", "1"), ("run", "r"), "input_to")
        store.add_lineage(("run", "r"), ("checkpoint", "sha256:c"), "produced")
        store.add_lineage(("checkpoint", "sha256:c"), ("onnx", "sha256:o"), "exported_to")
        store.add_lineage(("onnx", "sha256:o"), ("model_version", "7"), "registered_as")
        store.add_lineage(("onnx", "sha256:o"), ("model_version", "7"), "registered_as")  # idempotent
        chain = [(e.src_kind, e.dst_kind) for e in store.iter_all_lineage("model_version", "7")]
        assert chain == [("onnx", "model_version"), ("checkpoint", "onnx"), ("run", "checkpoint"),
                         ("dataset_version", "run")]

    def test_artifacts_are_recorded_per_run(self, store: MetadataStore) -> None:
        store.add_artifact("sha256:x", 10, "checkpoint", "epoch-1.pt", "file:///x", run_id="r", stage="train")
        store.add_artifact("sha256:y", 20, "onnx", "model.onnx", "file:///y", run_id="r", stage="export")
        assert [a.name for a in store.artifacts(run_id="r", kind="onnx")] == ["model.onnx"]

    def test_reopening_keeps_data(self, store: MetadataStore) -> None:
        store.create_run("r", "p", {"a": 1}, None)
        store.close()
        assert open_metadata_store(store.url).get_run("r").spec == {"a": 1}


class TestSqlite(MetadataStoreContract):
    @pytest.fixture()
    def store(self, tmp_path: Path) -> MetadataStore:
        return open_metadata_store(f"sqlite:///{tmp_path / 'aidc.db'}")

    def test_uses_write_ahead_logging(self, store: MetadataStore) -> None:
        with store.engine.connect() as conn:  # type: ignore[attr-defined]
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


@pytest.mark.postgres
class TestPostgres(MetadataStoreContract):
    @pytest.fixture()
    def store(self, postgres_url: str) -> MetadataStore:
        from sqlalchemy import text

        s = open_metadata_store(postgres_url)
        yield s
        with s.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(text("TRUNCATE lineage_edges, deployments, model_versions, dataset_versions, datasets, "
                              "metrics, stage_runs, pipeline_runs, artifacts RESTART IDENTITY CASCADE"))
        s.close()


def test_unsupported_url_says_which_are() -> None:
    with pytest.raises(InvalidInput) as exc:
        open_metadata_store("mysql://x")
    assert "sqlite" in (exc.value.hint or "")
