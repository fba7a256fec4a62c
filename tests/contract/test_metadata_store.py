"""MetadataStore contract: every backend (SQLite, PostgreSQL) must behave the same way for these."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidc.errors import Conflict, InvalidInput, NotFound
from aidc.store.metadata import MetadataStore, open_metadata_store
from aidc.store.metadata.records import ModelVersion


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

    def test_a_cached_stage_is_reused_only_within_its_runs_project(self, store: MetadataStore) -> None:
        """A cache hit hands the new run the versions the earlier stage registered: never another project's."""
        from sqlalchemy import text

        for run_id, project in (("made-in-alpha", "alpha"), ("alpha-again", "alpha"), ("in-beta", "beta")):
            store.create_run(run_id, "p", {}, None)
            with store.engine.begin() as conn:  # type: ignore[attr-defined]  # (as `aidc projects assign`)
                conn.execute(text("UPDATE pipeline_runs SET project = :p WHERE id = :r"), {"p": project, "r": run_id})
        stage = store.start_stage("made-in-alpha", "data", "data", cache_key="k", log_path=None)
        store.finish_stage(stage.id, "succeeded", outputs={"data": {"dataset_version_id": 1}})
        assert store.find_cached_stage("k", project_of="alpha-again").id == stage.id
        assert store.find_cached_stage("k", project_of="in-beta") is None
        assert store.find_cached_stage("k").id == stage.id  # (no run named: any project, as the report's lookup)

    def test_the_migrations_make_exactly_the_tables_and_indexes_the_models_describe(self, store: MetadataStore) -> None:
        """Every table, column and index of the ORM models (security's included), and nothing more: what
        `alembic revision --autogenerate` compares, so a change to one without the other fails here."""
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        import aidc.security.schema  # noqa: F401 - its tables share Base
        from aidc.store.metadata.schema import Base

        with store.engine.connect() as conn:  # type: ignore[attr-defined]
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []

    def test_unknown_run_is_not_found_with_a_hint(self, store: MetadataStore) -> None:
        with pytest.raises(NotFound) as exc:
            store.get_run("nope")
        assert "aidc runs list" in (exc.value.hint or "")

    def test_transaction_commits_all_or_nothing(self, store: MetadataStore) -> None:
        store.create_run("r", "p", {}, None)
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.register_dataset_version(
                    "digits", "sha256:1", schema={}, stats={}, class_balance={}, fingerprint="f1", run_id="r"
                )
                store.finish_run("r", "succeeded")
                raise RuntimeError("crash between writes")
        assert store.list_dataset_versions() == []
        assert store.get_run("r").status == "running"

    def test_metrics_are_kept_in_order_per_stage(self, store: MetadataStore) -> None:
        store.create_run("r", "p", {}, None)
        store.add_metrics("r", "train", [("loss", 0, 2.0), ("loss", 1, 1.0)])
        store.add_metrics("r", "evaluate", [("accuracy", 0, 0.97)])
        assert [(m.name, m.step, m.value) for m in store.metrics("r", stage="train")] == [
            ("loss", 0, 2.0),
            ("loss", 1, 1.0),
        ]
        assert len(store.metrics("r")) == 3

    def test_dataset_versions_count_up_and_identical_data_is_one_version(self, store: MetadataStore) -> None:
        a = store.register_dataset_version(
            "digits",
            "sha256:a",
            schema={"x": "f32"},
            stats={"n": 1},
            class_balance={"0": 1},
            fingerprint="fa",
            run_id=None,
        )
        b = store.register_dataset_version(
            "digits", "sha256:b", schema={}, stats={}, class_balance={}, fingerprint="fb", run_id=None
        )
        again = store.register_dataset_version(
            "digits", "sha256:a", schema={}, stats={}, class_balance={}, fingerprint="fa", run_id=None
        )
        assert (a.version, b.version, again.id) == (1, 2, a.id)
        assert store.get_dataset_version(a.id).schema_ == {"x": "f32"}
        assert [v.ref for v in store.list_dataset_versions("digits")] == ["digits:1", "digits:2"]

    def test_dataset_versions_are_per_project(self, store: MetadataStore) -> None:
        """Identical data in another project is that project's own version 1: nothing of one project is handed to,
        numbered by or revealed to the other."""
        made = {
            project: store.register_dataset_version(
                "digits", "sha256:a", schema={}, stats={}, class_balance={}, fingerprint="fa", run_id=None,
                project=project,
            )
            for project in ("alpha", "beta")
        }  # fmt: skip
        assert made["alpha"].id != made["beta"].id
        assert [(v.project, v.version) for v in made.values()] == [("alpha", 1), ("beta", 1)]
        assert [v.id for v in store.list_dataset_versions("digits", projects=["beta"])] == [made["beta"].id]

    def test_model_versions_and_stage_transitions(self, store: MetadataStore) -> None:
        v1 = store.register_model_version(
            "cnn",
            onnx_digest="sha256:o1",
            checkpoint_digest="sha256:c1",
            run_id=None,
            dataset_version_id=None,
            metrics={"accuracy": 0.9},
        )
        v2 = store.register_model_version(
            "cnn",
            onnx_digest="sha256:o2",
            checkpoint_digest=None,
            run_id=None,
            dataset_version_id=None,
            metrics={},
            stage="staging",
        )
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

    def test_a_model_name_is_per_project(self, store: MetadataStore) -> None:
        def register(project: str) -> ModelVersion:
            return store.register_model_version(
                "shared",
                onnx_digest=None,
                checkpoint_digest=None,
                run_id=None,
                dataset_version_id=None,
                metrics={},
                project=project,
            )

        assert [register("alpha").version, register("alpha").version, register("beta").version] == [1, 2, 1]
        store.set_model_stage("shared", 1, "production", project="beta")
        store.set_model_stage("shared", 2, "production", project="alpha")
        store.set_model_stage("shared", 1, "production", project="alpha")  # archives alpha's 2, not beta's 1
        stages = {(m.project, m.version): m.stage for m in store.list_model_versions("shared")}
        assert stages == {("alpha", 1): "production", ("alpha", 2): "archived", ("beta", 1): "production"}
        assert store.get_model_version("shared", project="beta").version == 1
        with pytest.raises(Conflict, match="more than one project"):
            store.get_model_version("shared")  # which one? the caller must say

    def test_deployments(self, store: MetadataStore) -> None:
        mv = store.register_model_version(
            "m", onnx_digest=None, checkpoint_digest=None, run_id=None, dataset_version_id=None, metrics={}
        )
        d = store.add_deployment("m", mv.id, "http://127.0.0.1:9000", pid=123)
        assert [x.id for x in store.list_deployments(status="running")] == [d.id]
        stopped = store.set_deployment_status(d.id, "stopped")
        assert stopped.stopped_at is not None and store.list_deployments(status="running") == []
        assert (d.replicas, d.resources, d.controller, d.canary_model_version_id) == (1, {}, None, None)

    def test_a_deployment_moves_from_stable_to_canary_to_promoted(self, store: MetadataStore) -> None:
        v1, v2 = (
            store.register_model_version(
                "m", onnx_digest=f"sha256:{i}", checkpoint_digest=None, run_id=None, dataset_version_id=None, metrics={}
            )
            for i in (1, 2)
        )
        d = store.add_deployment(
            "m",
            v1.id,
            "http://127.0.0.1:9000",
            None,
            "starting",
            replicas=2,
            resources={"cpus": 0.5},
            controller="ns/deployment.m",
        )
        assert store.find_deployment("m").id == d.id and store.get_deployment(d.id).resources == {"cpus": 0.5}
        with store.transaction():
            canary = store.update_deployment(
                d.id,
                status="running",
                canary_model_version_id=v2.id,
                canary_percent=10.0,
                canary_policy={"min_requests": 20},
            )
            store.add_deployment_event(d.id, "canary", "m:2 takes 10%", {"percent": 10})
        assert (canary.status, canary.canary_percent, canary.canary_policy) == ("running", 10.0, {"min_requests": 20})
        assert canary.stopped_at is None and canary.updated_at is not None
        promoted = store.update_deployment(
            d.id,
            model_version_id=v2.id,
            previous_model_version_id=v1.id,
            canary_model_version_id=None,
            canary_percent=0.0,
        )
        assert (promoted.model_version_id, promoted.previous_model_version_id) == (v2.id, v1.id)
        assert promoted.canary_model_version_id is None
        with pytest.raises(InvalidInput, match="name"):
            store.update_deployment(d.id, name="other")
        store.add_deployment_event(d.id, "promoted", "m:2 is stable")
        assert [e.kind for e in store.deployment_events(d.id)] == ["canary", "promoted"]
        assert [e.kind for e in store.deployment_events(d.id, limit=1)] == ["promoted"]
        store.set_deployment_status(d.id, "stopped")
        with pytest.raises(NotFound, match="no deployment 'm'"):
            store.find_deployment("m")
        assert [x.id for x in store.list_deployments(name="m")] == [d.id]

    def test_replicas_are_upserted_per_version_and_slot(self, store: MetadataStore) -> None:
        mv = store.register_model_version(
            "m", onnx_digest=None, checkpoint_digest=None, run_id=None, dataset_version_id=None, metrics={}
        )
        d = store.add_deployment("m", mv.id, "http://127.0.0.1:9000", None)
        store.record_replica(d.id, mv.id, 1, status="starting")
        store.record_replica(d.id, mv.id, 0, status="ready", url="http://127.0.0.1:9001", pid=11, node="n1")
        again = store.record_replica(
            d.id,
            mv.id,
            1,
            status="ready",
            url="http://127.0.0.1:9002",
            pid=12,
            restarts=1,
            message="restarted after exit code -9",
        )
        replicas = store.list_replicas(d.id)
        assert [(x.slot, x.status, x.pid) for x in replicas] == [(0, "ready", 11), (1, "ready", 12)]
        assert again.restarts == 1 and "exit code" in (again.message or "")
        store.remove_replica(d.id, mv.id, 0)
        assert [x.slot for x in store.list_replicas(d.id)] == [1]
        with pytest.raises(NotFound):
            store.add_deployment_event(999, "created", "no such deployment")

    def test_deployments_written_before_0002_survive_the_migration(self, store: MetadataStore) -> None:
        from alembic import command
        from sqlalchemy import text

        from aidc.store.metadata.migrate import alembic_config, upgrade_to_head

        engine = store.engine  # type: ignore[attr-defined]
        cfg = alembic_config(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO model_versions (id, name, version, stage, metrics, created_at) "
                    "VALUES (1, 'm', 1, 'none', '{}', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO deployments (id, name, model_version_id, url, pid, status, created_at) "
                    "VALUES (1, 'm', 1, 'http://127.0.0.1:9000', 42, 'running', CURRENT_TIMESTAMP)"
                )
            )
        upgrade_to_head(engine)
        [d] = store.list_deployments()
        assert (d.pid, d.replicas, d.resources, d.canary_percent, d.canary_policy) == (42, 1, {}, 0.0, {})

    def test_lineage_walks_upstream_transitively(self, store: MetadataStore) -> None:
        store.add_lineage(("dataset_version", "1"), ("run", "r"), "input_to")
        store.add_lineage(("run", "r"), ("checkpoint", "sha256:c"), "produced")
        store.add_lineage(("checkpoint", "sha256:c"), ("onnx", "sha256:o"), "exported_to")
        store.add_lineage(("onnx", "sha256:o"), ("model_version", "7"), "registered_as")
        store.add_lineage(("onnx", "sha256:o"), ("model_version", "7"), "registered_as")  # idempotent
        chain = [(e.src_kind, e.dst_kind) for e in store.iter_all_lineage("model_version", "7")]
        assert chain == [
            ("onnx", "model_version"),
            ("checkpoint", "onnx"),
            ("run", "checkpoint"),
            ("dataset_version", "run"),
        ]

    def test_lineage_around_a_run_reaches_what_it_read_and_what_it_made(self, store: MetadataStore) -> None:
        store.add_lineage(("dataset_version", "1"), ("run", "r"), "input_to")
        store.add_lineage(("run", "r"), ("checkpoint", "sha256:c"), "produced")
        store.add_lineage(("checkpoint", "sha256:c"), ("onnx", "sha256:o"), "exported_to")
        store.add_lineage(("onnx", "sha256:o"), ("model_version", "7"), "registered_as")
        store.add_lineage(("dataset_version", "2"), ("run", "other"), "input_to")  # another run's: not around r
        store.add_lineage(("model_version", "7"), ("run", "tuned"), "initialised")  # a run made from r's model
        around = {
            (e.src_kind, e.src_id, e.dst_kind, e.dst_id)
            for e in store.lineage_around("run", "r", stop=["model_version"])
        }
        assert around == {
            ("dataset_version", "1", "run", "r"),
            ("run", "r", "checkpoint", "sha256:c"),
            ("checkpoint", "sha256:c", "onnx", "sha256:o"),
            ("onnx", "sha256:o", "model_version", "7"),
        }
        assert [e.dst_id for e in store.downstream("checkpoint", "sha256:c")] == ["sha256:o"]
        assert ("model_version", "7", "run", "tuned") in {
            (e.src_kind, e.src_id, e.dst_kind, e.dst_id) for e in store.lineage_around("run", "r")
        }  # without a stop, on into what was made from it

    def test_artifacts_are_recorded_per_run(self, store: MetadataStore) -> None:
        store.add_artifact("sha256:x", 10, "checkpoint", "epoch-1.pt", "file:///x", run_id="r", stage="train")
        store.add_artifact("sha256:y", 20, "onnx", "model.onnx", "file:///y", run_id="r", stage="export")
        assert [a.name for a in store.artifacts(run_id="r", kind="onnx")] == ["model.onnx"]

    def test_lists_limited_to_projects_are_filtered_by_the_store(self, store: MetadataStore) -> None:
        placed = {}
        for project in ("alpha", "beta", "default"):
            run = store.create_run(f"run-{project}", "digits", {}, None)
            dv = store.register_dataset_version(
                f"data-{project}",
                "sha256:1",
                schema={},
                stats={},
                class_balance={},
                fingerprint=f"fp-{project}",
                run_id=run.id,
            )
            mv = store.register_model_version(
                "shared-name",
                onnx_digest=None,
                checkpoint_digest=None,
                run_id=run.id,
                dataset_version_id=dv.id,
                metrics={},
            )
            dep = store.add_deployment(f"dep-{project}", mv.id, "http://127.0.0.1:9", None)
            placed[project] = (run.id, dv.id, mv.id, dep.id)
            if project != "default":  # the security store's `aidc projects assign`, as one UPDATE per record
                _assign(store, project, run.id, dv.id, mv.id, dep.id)
        for projects, expected in (
            (["alpha"], ["alpha"]),
            (["alpha", "beta"], ["alpha", "beta"]),
            ([], []),
            (["default"], ["default"]),
            (None, ["alpha", "beta", "default"]),
            (["nope"], []),
        ):
            want = {placed[p] for p in expected}
            runs = store.list_runs(projects=projects, limit=1000)
            datasets = store.list_dataset_versions(projects=projects)
            models = store.list_model_versions(projects=projects)
            deployments = store.list_deployments(projects=projects)
            got = {
                (r.id, d.id, m.id, x.id) for r, d, m, x in zip(runs[::-1], datasets, models, deployments, strict=True)
            }
            assert got == want, projects
        # the other filters and the limit still apply, after the project filter (not before: no lost rows)
        assert [r.id for r in store.list_runs(projects=["alpha", "beta"], limit=1)] == ["run-beta"]
        assert store.list_model_versions("shared-name", projects=["beta"])[0].id == placed["beta"][2]
        assert store.list_runs(projects=["alpha"], status="running")[0].id == "run-alpha"
        assert store.list_deployments(projects=["alpha"], name="dep-beta") == []
        # a deployment can be made in its project from the start (never visible to another project meanwhile)
        made = store.add_deployment("dep-new", placed["beta"][2], "http://127.0.0.1:9", None, project="beta")
        assert made.project == "beta" and [d.name for d in store.list_deployments(projects=["beta"])][-1] == "dep-new"
        assert store.add_deployment("dep-plain", placed["beta"][2], "u", None).project == "default"
        # a deployment name is per project: the same name in alpha is another deployment, found by its project
        twin = store.add_deployment("dep-new", placed["alpha"][2], "http://127.0.0.1:9", None, project="alpha")
        assert store.find_deployment("dep-new", project="beta").id == made.id
        assert store.find_deployment("dep-new", project="alpha").id == twin.id
        with pytest.raises(NotFound):
            store.find_deployment("dep-new", project="default")

    def test_json_lists_are_the_records_json(self, store: MetadataStore) -> None:
        """The API's lists (read without building records) say exactly what the records' JSON says, keys in order."""
        store.create_run("r-open", "digits", {"stages": [{"name": "données", "n": 1.5}]}, "p.yaml")
        store.create_run("r-done", "digits", {}, None)
        store.finish_run("r-done", "succeeded")
        store.create_run("r-failed", "other", {}, None)
        store.finish_run("r-failed", "failed", error={"code": "boom", "where": None})
        for i, name in enumerate(("data-a", "data-b", "data-a")):
            store.register_dataset_version(
                name,
                f"sha256:{i}",
                schema={"x": "int"},
                stats={"rows": i},
                class_balance={"0": 0.5},
                fingerprint=f"fp-{i}",
                run_id="r-done",
            )
            store.register_model_version(
                name.replace("data", "model"),
                onnx_digest=None,
                checkpoint_digest="sha256:c",
                run_id=None,
                dataset_version_id=1,
                metrics={"accuracy": 0.25 + i},
            )
        _assign(store, "alpha", "r-failed", 2, 2, 0)

        def same(got: list[dict], records: list) -> None:
            want = [r.model_dump(mode="json", by_alias=True) for r in records]
            assert got == want and [list(g) for g in got] == [list(w) for w in want]

        for projects in (None, ["alpha"], ["default", "alpha"], []):
            same(store.list_runs_json(projects=projects), store.list_runs(projects=projects))
            same(store.list_dataset_versions_json(projects=projects), store.list_dataset_versions(projects=projects))
            same(store.list_model_versions_json(projects=projects), store.list_model_versions(projects=projects))
        same(store.list_runs_json(status="failed"), store.list_runs(status="failed"))
        same(store.list_runs_json(pipeline="digits", limit=1), store.list_runs(pipeline="digits", limit=1))
        same(store.list_dataset_versions_json("data-a"), store.list_dataset_versions("data-a"))
        same(store.list_model_versions_json("model-b"), store.list_model_versions("model-b"))
        with store.transaction():  # inside a transaction: read on its connection
            same(store.list_runs_json(), store.list_runs())
        assert store.list_runs_json()[0]["finished_at"].endswith("Z")  # times are UTC, as the records say them
        assert "schema" in store.list_dataset_versions_json()[0]  # by alias, as the API shows datasets

    def test_run_details_json_is_the_records_json(self, store: MetadataStore) -> None:
        store.create_run("run-1", "digits", {"stages": [{"name": "train"}]}, "p.yaml")
        store.create_run("run-2", "digits", {}, None)
        done = store.start_stage("run-1", "data", "data", cache_key="k", log_path="/tmp/data.log")
        store.finish_stage(done.id, "succeeded", outputs={"rows": 1797})
        store.start_stage("run-1", "train", "train", cache_key=None, log_path=None)  # still running: no seconds
        store.add_metrics("run-1", "train", [("loss", 0, 2.5), ("loss", 1, 1e-05)])
        store.add_artifact("sha256:x", 10, "checkpoint", "epoch-1.pt", "file:///x", run_id="run-1", stage="train")
        store.finish_run("run-1", "failed", error={"code": "boom"})
        run = store.get_run("run-1")
        want = {
            "run": run.to_json(),
            "stages": [s.to_json() | {"seconds": s.seconds} for s in store.list_stages("run-1")],
            "metrics": [m.to_json() for m in store.metrics("run-1")],
            "artifacts": [a.to_json() for a in store.artifacts(run_id="run-1")],
            "key_metrics": {"loss": 1e-05},
        }
        got = store.run_details_json("run-1")
        assert got == want and [list(x) for x in got["stages"]] == [list(x) for x in want["stages"]]
        assert got["stages"][0]["seconds"] is not None and got["stages"][1]["seconds"] is None
        assert store.run_details_json("run-1")["run"]["id"] == "run-1"
        assert store.run_details_json("run-2")["stages"] == []
        with pytest.raises(NotFound):
            store.run_details_json("run-")  # a prefix of two runs names neither
        with pytest.raises(NotFound):
            store.run_details_json("nope")

    def test_reopening_keeps_data(self, store: MetadataStore) -> None:
        store.create_run("r", "p", {"a": 1}, None)
        store.close()
        assert open_metadata_store(store.url).get_run("r").spec == {"a": 1}


def _assign(
    store: MetadataStore, project: str, run_id: str, dataset_version_id: int, model_version_id: int, deployment_id: int
) -> None:
    from sqlalchemy import text

    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        for table, key in (
            ("pipeline_runs", run_id),
            ("dataset_versions", dataset_version_id),
            ("model_versions", model_version_id),
            ("deployments", deployment_id),
        ):
            conn.execute(text(f"UPDATE {table} SET project = :p WHERE id = :k"), {"p": project, "k": key})


class TestSqlite(MetadataStoreContract):
    @pytest.fixture()
    def store(self, tmp_path: Path) -> MetadataStore:
        return open_metadata_store(f"sqlite:///{tmp_path / 'aidc.db'}")

    def test_reads_are_answered_in_process(self, store: MetadataStore) -> None:
        assert store.reads_in_process  # the API may read on its event loop (api/routes/records.py)

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
            conn.execute(
                text(
                    "TRUNCATE lineage_edges, deployment_events, deployment_replicas, deployments, model_versions, dataset_versions, datasets, "
                    "metrics, stage_runs, pipeline_runs, artifacts RESTART IDENTITY CASCADE"
                )
            )
        s.close()

    def test_reads_wait_on_the_network(self, store: MetadataStore) -> None:
        assert not store.reads_in_process  # the API reads in its thread pool


def test_unsupported_url_says_which_are() -> None:
    with pytest.raises(InvalidInput) as exc:
        open_metadata_store("mysql://x")
    assert "sqlite" in (exc.value.hint or "")
