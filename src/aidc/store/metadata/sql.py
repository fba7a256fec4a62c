"""SqlMetadataStore: the MetadataStore on SQLAlchemy 2 — SQLite (WAL) by default, PostgreSQL via psycopg 3."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Select, bindparam, create_engine, event, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from aidc.errors import BackendUnavailable, Conflict, InvalidInput, NotFound
from aidc.store.metadata import records as r
from aidc.store.metadata.base import MODEL_STAGES, MetadataStore
from aidc.store.metadata.changes import ChangeFeed, change_feed
from aidc.store.metadata.migrate import upgrade_to_head
from aidc.store.metadata.schema import (
    ArtifactRow,
    DatasetRow,
    DatasetVersionRow,
    LineageEdgeRow,
    MetricRow,
    ModelVersionRow,
    PipelineRunRow,
    StageRunRow,
)
from aidc.store.metadata.sql_alerts import SqlAlerts
from aidc.store.metadata.sql_deployments import SqlDeployments
from aidc.store.metadata.sql_jobs import SqlJobs
from aidc.store.metadata.sql_telemetry import SqlTelemetry

R = TypeVar("R", bound=r.Record)


def _now() -> datetime:
    return datetime.now(UTC)


def _json_rows(conn: Connection, q: Any, params: dict[str, Any], record: type[r.Record]) -> list[dict[str, Any]]:
    """What ``[record.to_json() for each row]`` would give, read with Core: no ORM objects and no record validation
    (≈ 4× less CPU per row, what the API's list routes spend most of their time on). ``q`` selects the record's
    fields by name, in its field order (the JSON's key order); times are formatted as the records format them, and
    JSON columns are already JSON-ready as the database hands them back."""
    result = conn.execute(q, params)
    keys = tuple(result.keys())
    times = [key for key in record.time_fields() if key in keys]
    out = []
    for row in result.fetchall():
        item = dict(zip(keys, row, strict=False))
        for key in times:
            item[key] = r.json_time(item[key])
        out.append(item)
    return out


def _fields(table: Any, record: type[r.Record], **columns: Any) -> list[Any]:
    """``table``'s columns named as ``record``'s fields by alias, in field order; ``columns`` gives the ones stored
    elsewhere."""
    names = [field.alias or name for name, field in record.model_fields.items()]
    return [columns[name].label(name) if name in columns else table.c[name] for name in names]


# Connections kept open for reuse. The server runs each request's reads on one of up to 40 pool threads; with
# SQLAlchemy's default of 5 (+10 overflow), 16 concurrent requests opened and closed a connection on most requests
# (SQLite: a new file handle and three pragmas; PostgreSQL: a new backend). Idle connections cost little, and an
# engine opens them only as concurrency asks for them.
POOL_SIZE, MAX_OVERFLOW = 20, 20


# -- the list queries, built once per shape (which filters are set) with the values as bound parameters: building a
# select costs SQLAlchemy about as much CPU as SQLite takes to run a small one, on every request otherwise.
def _bound(values: dict[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """(which filters are set, their parameters); ``projects`` as a sorted list for an expanding IN."""
    params = {k: (sorted(set(v)) if k == "projects" else v) for k, v in values.items() if v is not None}
    return tuple(params), params


@functools.cache
def _select(kind: str, as_json: bool, filters: tuple[str, ...]) -> Any:
    q: Select[*tuple[Any, ...]]  # rows or named columns, as the caller reads them
    if kind == "runs":
        q = select(*_fields(PipelineRunRow.__table__, r.PipelineRun)) if as_json else select(PipelineRunRow)
        q = q.order_by(PipelineRunRow.created_at.desc(), PipelineRunRow.id.desc()).limit(bindparam("limit"))
        columns = {
            "projects": PipelineRunRow.project,
            "pipeline": PipelineRunRow.pipeline,
            "status": PipelineRunRow.status,
        }
    elif kind == "datasets":
        table = DatasetVersionRow.__table__
        q = (
            select(*_fields(table, r.DatasetVersion, dataset=DatasetRow.name)).select_from(table)
            if as_json
            else select(DatasetVersionRow, DatasetRow.name)
        )
        q = q.join(DatasetRow, DatasetRow.id == DatasetVersionRow.dataset_id).order_by(
            DatasetRow.name, DatasetVersionRow.version
        )
        columns = {"projects": DatasetVersionRow.project, "name": DatasetRow.name}
    else:
        q = select(*_fields(ModelVersionRow.__table__, r.ModelVersion)) if as_json else select(ModelVersionRow)
        q = q.order_by(ModelVersionRow.name, ModelVersionRow.version)
        columns = {"projects": ModelVersionRow.project, "name": ModelVersionRow.name}
    for key in filters:
        if key == "projects":  # the project isolation the API relies on, done by the database
            q = q.where(columns[key].in_(bindparam(key, expanding=True)))
        elif key != "limit":
            q = q.where(columns[key] == bindparam(key))
    return q


def _runs_select(
    as_json: bool, pipeline: str | None, status: str | None, limit: int, projects: Collection[str] | None
) -> tuple[Any, dict[str, Any]]:
    filters, params = _bound(
        {"projects": projects, "pipeline": pipeline or None, "status": status or None, "limit": limit}
    )
    return _select("runs", as_json, filters), params


def _datasets_select(as_json: bool, name: str | None, projects: Collection[str] | None) -> tuple[Any, dict[str, Any]]:
    filters, params = _bound({"projects": projects, "name": name or None})
    return _select("datasets", as_json, filters), params


def _models_select(as_json: bool, name: str | None, projects: Collection[str] | None) -> tuple[Any, dict[str, Any]]:
    filters, params = _bound({"projects": projects, "name": name or None})
    return _select("models", as_json, filters), params


@functools.cache
def _run_part(part: str) -> Any:
    """The selects of a run's details, by run id (``prefix``: a run whose id starts with it; ``prefix_in``: the same,
    among the runs of the projects bound as ``projects``)."""
    if part in ("run", "prefix", "prefix_in"):
        q = select(*_fields(PipelineRunRow.__table__, r.PipelineRun))
        if part == "run":
            return q.where(PipelineRunRow.id == bindparam("run_id"))
        q = q.where(PipelineRunRow.id.startswith(bindparam("run_id")))
        if part == "prefix_in":
            q = q.where(PipelineRunRow.project.in_(bindparam("projects", expanding=True)))
        return q.limit(2)
    parts: dict[str, tuple[Any, type[r.Record]]] = {
        "stages": (StageRunRow, r.StageRun),
        "metrics": (MetricRow, r.Metric),
        "artifacts": (ArtifactRow, r.Artifact),
    }
    row, record = parts[part]
    return select(*_fields(row.__table__, record)).where(row.run_id == bindparam("run_id")).order_by(row.id)


def make_engine(url: str) -> Engine:
    """An engine with the per-dialect settings we rely on (WAL and foreign keys on SQLite)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///"):
        db = Path(url[len("sqlite:///") :])
        db.parent.mkdir(parents=True, exist_ok=True)
        # Owner only: it holds the token hashes and the audit chain. SQLite gives its -wal and -shm files the
        # database file's mode, so creating this one 0600 is enough (an existing one is tightened). Never open
        # and close an existing one here: closing any descriptor of a file drops this process's POSIX locks on
        # it, SQLite's included (a "disk I/O error" for the engines already open).
        try:
            os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            info = db.stat()
            if info.st_mode & 0o077 and info.st_uid == os.getuid():
                db.chmod(0o600)
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if url.startswith("postgresql+psycopg://"):
        return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW)
    raise InvalidInput(
        f"unsupported metadata URL {url!r}", hint="use sqlite:///path/to/aidc.db or postgresql+psycopg://user@host/db"
    )


def open_engine(url: str) -> Engine:
    """The engine for ``url``, migrated to the newest schema; BackendUnavailable when the database is unreachable."""
    engine = make_engine(url)
    try:
        upgrade_to_head(engine)
    except sa_exc.OperationalError as exc:
        safe = engine.url.render_as_string(hide_password=True)
        raise BackendUnavailable(
            f"cannot open the metadata store {safe}: {exc.orig}",
            hint="check AIDC_METADATA_URL and that the database server is running",
        ) from None
    return engine


class SqlMetadataStore(SqlJobs, SqlDeployments, SqlTelemetry, SqlAlerts, MetadataStore):
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_engine(url)
        self.reads_in_process = self.engine.dialect.name == "sqlite"
        # PostgreSQL reads outside a transaction of their own: no BEGIN and ROLLBACK round trips around each one
        # (≈ 30% of a small read's time). Under READ COMMITTED every statement took its own snapshot anyway.
        self._read_engine = (
            self.engine if self.reads_in_process else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._local = threading.local()

    @property
    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def change_feed(self) -> ChangeFeed:
        return change_feed(self.engine)

    # -- transactions: writes join the enclosing transaction on this thread, else commit on their own
    @contextmanager
    def transaction(self) -> Iterator[None]:
        if getattr(self._local, "session", None) is not None:
            yield
            return
        with self._sessions() as session, session.begin():
            self._local.session = session
            try:
                yield
            finally:
                self._local.session = None

    @contextmanager
    def _session(self) -> Iterator[Session]:
        current = getattr(self._local, "session", None)
        if current is not None:
            yield current
            return
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A Core connection for reads: the enclosing transaction's on this thread, else one from the pool (no ORM
        session to build and commit: it costs as much as a small query)."""
        current = getattr(self._local, "session", None)
        if current is not None:
            yield current.connection()
            return
        with self._read_engine.connect() as conn:
            yield conn

    def _get(self, session: Session, row_type: type, key: Any, what: str) -> Any:
        row = session.get(row_type, key)
        if row is None:
            raise NotFound(f"no {what} {key!r}", hint=f"list them with `aidc {what.split()[0]}s list`")
        return row

    # -- runs
    def create_run(
        self, run_id: str, pipeline: str, spec: dict[str, Any], spec_path: str | None, *, project: str = "default"
    ) -> r.PipelineRun:
        with self._session() as s:
            row = PipelineRunRow(
                id=run_id, pipeline=pipeline, spec=spec, spec_path=spec_path, status="running", project=project
            )
            s.add(row)
            s.flush()
            return r.PipelineRun.model_validate(row)

    def get_run(self, run_id: str, *, projects: Collection[str] | None = None) -> r.PipelineRun:
        with self._session() as s:
            row = s.get(PipelineRunRow, run_id)
            if row is None:  # accept a unique prefix, as people copy short ids
                q = select(PipelineRunRow).where(PipelineRunRow.id.startswith(run_id))
                if projects is not None:
                    q = q.where(PipelineRunRow.project.in_(list(projects)))
                rows = s.scalars(q.limit(2)).all()
                if len(rows) != 1:
                    raise NotFound(f"no run {run_id!r}", hint="list runs with `aidc runs list`")
                row = rows[0]
            return r.PipelineRun.model_validate(row)

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int = 50,
        projects: Collection[str] | None = None,
    ) -> list[r.PipelineRun]:
        q, params = _runs_select(False, pipeline, status, limit, projects)
        with self._session() as s:
            return [r.PipelineRun.model_validate(row) for row in s.scalars(q, params)]

    def list_runs_json(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int = 50,
        projects: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        with self._reading() as conn:
            return _json_rows(conn, *_runs_select(True, pipeline, status, limit, projects), r.PipelineRun)

    def run_details_json(self, run_id: str, *, projects: Collection[str] | None = None) -> dict[str, Any]:
        with self._reading() as conn:  # one connection for the four reads
            found = _json_rows(conn, _run_part("run"), {"run_id": run_id}, r.PipelineRun)
            if not found:  # accept a unique prefix, as people copy short ids
                if projects is None:
                    found = _json_rows(conn, _run_part("prefix"), {"run_id": run_id}, r.PipelineRun)
                else:
                    params = {"run_id": run_id, "projects": list(projects)}
                    found = _json_rows(conn, _run_part("prefix_in"), params, r.PipelineRun)
                if len(found) != 1:
                    raise NotFound(f"no run {run_id!r}", hint="list runs with `aidc runs list`")
            params = {"run_id": found[0]["id"]}
            stages = _json_rows(conn, _run_part("stages"), params, r.StageRun)
            for stage in stages:
                stage["seconds"] = r.json_seconds(stage["started_at"], stage["finished_at"])
            metrics = _json_rows(conn, _run_part("metrics"), params, r.Metric)
            return {
                "run": found[0],
                "stages": stages,
                "metrics": metrics,
                "artifacts": _json_rows(conn, _run_part("artifacts"), params, r.Artifact),
                "key_metrics": r.key_metrics(metrics, stages),
            }

    def finish_run(self, run_id: str, status: str, *, error: dict[str, Any] | None = None) -> r.PipelineRun:
        with self._session() as s:
            row = self._get(s, PipelineRunRow, run_id, "run")
            row.status, row.error, row.finished_at = status, error, _now()
            return r.PipelineRun.model_validate(row)

    def reopen_run(self, run_id: str) -> r.PipelineRun:
        with self._session() as s:
            row = self._get(s, PipelineRunRow, run_id, "run")
            row.status, row.error, row.finished_at = "running", None, None
            return r.PipelineRun.model_validate(row)

    def set_run_report(self, run_id: str, path: str) -> None:
        with self._session() as s:
            self._get(s, PipelineRunRow, run_id, "run").report_path = path

    # -- stages
    def start_stage(
        self, run_id: str, name: str, kind: str, *, cache_key: str | None, log_path: str | None
    ) -> r.StageRun:
        with self._session() as s:
            row = s.scalars(select(StageRunRow).where(StageRunRow.run_id == run_id, StageRunRow.name == name)).first()
            if row is None:
                row = StageRunRow(run_id=run_id, name=name, kind=kind)
                s.add(row)
            row.status, row.cache_key, row.log_path = "running", cache_key, log_path
            row.error, row.outputs, row.cached_from, row.started_at, row.finished_at = None, {}, None, _now(), None
            s.flush()
            return r.StageRun.model_validate(row)

    def finish_stage(
        self,
        stage_run_id: int,
        status: str,
        *,
        outputs: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        cached_from: int | None = None,
    ) -> r.StageRun:
        with self._session() as s:
            row = self._get(s, StageRunRow, stage_run_id, "stage run")
            row.status, row.outputs, row.error = status, outputs or {}, error
            row.cached_from, row.finished_at = cached_from, _now()
            return r.StageRun.model_validate(row)

    def list_stages(self, run_id: str) -> list[r.StageRun]:
        with self._session() as s:
            rows = s.scalars(select(StageRunRow).where(StageRunRow.run_id == run_id).order_by(StageRunRow.id))
            return [r.StageRun.model_validate(row) for row in rows]

    def find_cached_stage(self, cache_key: str, *, project_of: str | None = None) -> r.StageRun | None:
        q = (
            select(StageRunRow)
            .where(StageRunRow.cache_key == cache_key, StageRunRow.status == "succeeded")
            .order_by(StageRunRow.id.desc())
            .limit(1)
        )
        if project_of is not None:
            project = select(PipelineRunRow.project).where(PipelineRunRow.id == project_of).scalar_subquery()
            q = q.join(PipelineRunRow, PipelineRunRow.id == StageRunRow.run_id).where(PipelineRunRow.project == project)
        with self._session() as s:
            row = s.scalars(q).first()
            return r.StageRun.model_validate(row) if row else None

    # -- metrics and artifacts
    def add_metrics(self, run_id: str, stage: str, points: Iterable[tuple[str, int, float]]) -> None:
        with self._session() as s:
            s.add_all(
                MetricRow(run_id=run_id, stage=stage, name=n, step=int(st), value=float(v)) for n, st, v in points
            )

    def metrics(self, run_id: str, *, stage: str | None = None) -> list[r.Metric]:
        q = select(MetricRow).where(MetricRow.run_id == run_id).order_by(MetricRow.id)
        if stage:
            q = q.where(MetricRow.stage == stage)
        with self._session() as s:
            return [r.Metric.model_validate(row) for row in s.scalars(q)]

    def add_artifact(
        self,
        digest: str,
        size: int,
        kind: str,
        name: str,
        uri: str,
        *,
        run_id: str | None = None,
        stage: str | None = None,
    ) -> r.Artifact:
        with self._session() as s:
            row = ArtifactRow(digest=digest, size=size, kind=kind, name=name, uri=uri, run_id=run_id, stage=stage)
            s.add(row)
            s.flush()
            return r.Artifact.model_validate(row)

    def artifacts(self, *, run_id: str | None = None, kind: str | None = None) -> list[r.Artifact]:
        q = select(ArtifactRow).order_by(ArtifactRow.id)
        if run_id:
            q = q.where(ArtifactRow.run_id == run_id)
        if kind:
            q = q.where(ArtifactRow.kind == kind)
        with self._session() as s:
            return [r.Artifact.model_validate(row) for row in s.scalars(q)]

    def digest_in_project(self, digest: str, project: str) -> bool:
        digest = digest if digest.startswith("sha256:") else f"sha256:{digest}"
        runs = select(PipelineRunRow.id).where(PipelineRunRow.project == project)
        queries = [
            select(ArtifactRow.id).where(ArtifactRow.digest == digest, ArtifactRow.run_id.in_(runs)),
            select(DatasetVersionRow.id).where(
                DatasetVersionRow.artifact_digest == digest, DatasetVersionRow.project == project
            ),
            select(ModelVersionRow.id).where(
                (ModelVersionRow.onnx_digest == digest) | (ModelVersionRow.checkpoint_digest == digest),
                ModelVersionRow.project == project,
            ),
        ]
        with self._session() as s:
            return any(s.execute(q.limit(1)).first() is not None for q in queries)

    # -- datasets
    @staticmethod
    def _dataset_version(row: DatasetVersionRow, name: str) -> r.DatasetVersion:
        return r.DatasetVersion(
            id=row.id,
            dataset=name,
            version=row.version,
            artifact_digest=row.artifact_digest,
            schema_=row.schema_,  # by field name (populate_by_name), which the type checker follows
            stats=row.stats,
            class_balance=row.class_balance,
            fingerprint=row.fingerprint,
            run_id=row.run_id,
            created_at=row.created_at,
            project=row.project,
        )

    def register_dataset_version(
        self,
        dataset: str,
        artifact_digest: str,
        *,
        schema: dict[str, Any],
        stats: dict[str, Any],
        class_balance: dict[str, Any],
        fingerprint: str,
        run_id: str | None,
        project: str = "default",
    ) -> r.DatasetVersion:
        with self._session() as s:
            ds = s.scalars(select(DatasetRow).where(DatasetRow.name == dataset)).first()
            if ds is None:
                ds = DatasetRow(name=dataset)
                s.add(ds)
                s.flush()
            mine = (DatasetVersionRow.dataset_id == ds.id, DatasetVersionRow.project == project)
            same = s.scalars(
                select(DatasetVersionRow).where(*mine, DatasetVersionRow.fingerprint == fingerprint)
            ).first()
            if same is not None:  # identical data is the same version within a project, however often it is prepared
                return self._dataset_version(same, dataset)
            latest = s.scalar(select(func.max(DatasetVersionRow.version)).where(*mine))
            row = DatasetVersionRow(
                dataset_id=ds.id,
                project=project,
                version=(latest or 0) + 1,
                artifact_digest=artifact_digest,
                schema_=schema,
                stats=stats,
                class_balance=class_balance,
                fingerprint=fingerprint,
                run_id=run_id,
            )
            s.add(row)
            s.flush()
            return self._dataset_version(row, dataset)

    def get_dataset_version(self, dataset_version_id: int) -> r.DatasetVersion:
        with self._session() as s:
            row = self._get(s, DatasetVersionRow, dataset_version_id, "dataset version")
            return self._dataset_version(row, self._get(s, DatasetRow, row.dataset_id, "dataset").name)

    def list_dataset_versions(
        self, dataset: str | None = None, *, projects: Collection[str] | None = None
    ) -> list[r.DatasetVersion]:
        q, params = _datasets_select(False, dataset, projects)
        with self._session() as s:
            return [self._dataset_version(row, name) for row, name in s.execute(q, params)]

    def list_dataset_versions_json(
        self, dataset: str | None = None, *, projects: Collection[str] | None = None
    ) -> list[dict[str, Any]]:
        with self._reading() as conn:
            return _json_rows(conn, *_datasets_select(True, dataset, projects), r.DatasetVersion)

    # -- models
    def register_model_version(
        self,
        name: str,
        *,
        onnx_digest: str | None,
        checkpoint_digest: str | None,
        run_id: str | None,
        dataset_version_id: int | None,
        metrics: dict[str, Any],
        stage: str = "none",
        project: str = "default",
    ) -> r.ModelVersion:
        self._check_stage(stage)
        with self._session() as s:
            latest = s.scalar(
                select(func.max(ModelVersionRow.version)).where(
                    ModelVersionRow.project == project, ModelVersionRow.name == name
                )
            )
            row = ModelVersionRow(
                project=project,
                name=name,
                version=(latest or 0) + 1,
                stage="none",
                onnx_digest=onnx_digest,
                checkpoint_digest=checkpoint_digest,
                run_id=run_id,
                dataset_version_id=dataset_version_id,
                metrics=metrics,
            )
            s.add(row)
            s.flush()
            if stage != "none":
                self._move_stage(s, row, stage)
            return r.ModelVersion.model_validate(row)

    def _find_model(self, s: Session, name: str, version: int | None, project: str | None) -> ModelVersionRow:
        q = select(ModelVersionRow).where(ModelVersionRow.name == name)
        if project is not None:
            q = q.where(ModelVersionRow.project == project)
        else:  # a name is per project: without one it must be unambiguous
            held = sorted(set(s.scalars(select(ModelVersionRow.project).where(ModelVersionRow.name == name))))
            if len(held) > 1:
                raise Conflict(
                    f"model {name!r} is in more than one project ({', '.join(held)})",
                    hint="name the project: --project P (HTTP: ?project=P)",
                )
        q = (
            q.where(ModelVersionRow.version == version)
            if version is not None
            else q.order_by(ModelVersionRow.version.desc())
        )
        row = s.scalars(q.limit(1)).first()
        if row is None:
            what = f"{name}:{version}" if version is not None else name
            raise NotFound(f"no model version {what!r}", hint="list models with `aidc models list`")
        return row

    def get_model_version(self, name: str, version: int | None = None, *, project: str | None = None) -> r.ModelVersion:
        with self._session() as s:
            return r.ModelVersion.model_validate(self._find_model(s, name, version, project))

    def get_model_version_by_id(self, model_version_id: int) -> r.ModelVersion:
        with self._session() as s:
            return r.ModelVersion.model_validate(self._get(s, ModelVersionRow, model_version_id, "model version"))

    def list_model_versions(
        self, name: str | None = None, *, projects: Collection[str] | None = None
    ) -> list[r.ModelVersion]:
        q, params = _models_select(False, name, projects)
        with self._session() as s:
            return [r.ModelVersion.model_validate(row) for row in s.scalars(q, params)]

    def list_model_versions_json(
        self, name: str | None = None, *, projects: Collection[str] | None = None
    ) -> list[dict[str, Any]]:
        with self._reading() as conn:
            return _json_rows(conn, *_models_select(True, name, projects), r.ModelVersion)

    @staticmethod
    def _check_stage(stage: str) -> None:
        if stage not in MODEL_STAGES:
            raise InvalidInput(f"unknown model stage {stage!r}", hint=f"use one of {', '.join(MODEL_STAGES)}")

    def _move_stage(self, s: Session, row: ModelVersionRow, stage: str) -> None:
        if stage == "production":  # one production version per model: the previous one is archived
            for other in s.scalars(
                select(ModelVersionRow).where(
                    ModelVersionRow.project == row.project,
                    ModelVersionRow.name == row.name,
                    ModelVersionRow.stage == "production",
                    ModelVersionRow.id != row.id,
                )
            ):
                other.stage = "archived"
        row.stage = stage

    def set_model_stage(self, name: str, version: int, stage: str, *, project: str | None = None) -> r.ModelVersion:
        self._check_stage(stage)
        with self._session() as s:
            row = self._find_model(s, name, version, project)
            if row.stage == "archived" and stage == "staging":
                raise Conflict(f"{name}:{version} is archived", hint="register a new version instead")
            self._move_stage(s, row, stage)
            return r.ModelVersion.model_validate(row)

    # -- lineage
    def add_lineage(self, src: tuple[str, str], dst: tuple[str, str], relation: str) -> None:
        with self._session() as s:
            exists = s.scalars(
                select(LineageEdgeRow.id).where(
                    LineageEdgeRow.src_kind == src[0],
                    LineageEdgeRow.src_id == str(src[1]),
                    LineageEdgeRow.dst_kind == dst[0],
                    LineageEdgeRow.dst_id == str(dst[1]),
                    LineageEdgeRow.relation == relation,
                )
            ).first()
            if exists is None:
                s.add(
                    LineageEdgeRow(
                        src_kind=src[0], src_id=str(src[1]), dst_kind=dst[0], dst_id=str(dst[1]), relation=relation
                    )
                )

    def downstream(self, kind: str, id_: str) -> list[r.LineageEdge]:
        q = (
            select(LineageEdgeRow)
            .where(LineageEdgeRow.src_kind == kind, LineageEdgeRow.src_id == str(id_))
            .order_by(LineageEdgeRow.id)
        )
        with self._session() as s:
            return [r.LineageEdge.model_validate(row) for row in s.scalars(q)]

    def upstream(self, kind: str, id_: str) -> list[r.LineageEdge]:
        q = (
            select(LineageEdgeRow)
            .where(LineageEdgeRow.dst_kind == kind, LineageEdgeRow.dst_id == str(id_))
            .order_by(LineageEdgeRow.id)
        )
        with self._session() as s:
            return [r.LineageEdge.model_validate(row) for row in s.scalars(q)]
