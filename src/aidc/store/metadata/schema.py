"""The metadata tables (SQLAlchemy 2 ORM); Alembic migrations are generated from these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class DatasetRow(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DatasetVersionRow(Base):
    __tablename__ = "dataset_versions"
    # 0012: a dataset's versions are numbered per project (identical data is one version within a project)
    __table_args__ = (
        UniqueConstraint("dataset_id", "project", "version", name="uq_dataset_versions_dataset_id_project_version"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    version: Mapped[int]
    artifact_digest: Mapped[str] = mapped_column(String(80))
    schema_: Mapped[dict[str, Any]] = mapped_column("schema")
    stats: Mapped[dict[str, Any]]
    class_balance: Mapped[dict[str, Any]]
    fingerprint: Mapped[str] = mapped_column(String(80), index=True)
    run_id: Mapped[str | None] = mapped_column(String(40))
    project: Mapped[str] = mapped_column(String(200), default="default", server_default="default", index=True)  # 0003
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PipelineRunRow(Base):
    __tablename__ = "pipeline_runs"
    # 0005: a project's newest runs first, read from the index instead of sorting all of the project's runs
    __table_args__ = (Index("ix_pipeline_runs_project_list", "project", "created_at", "id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(200), index=True)
    spec: Mapped[dict[str, Any]]
    spec_path: Mapped[str | None] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(20), index=True)
    error: Mapped[dict[str, Any] | None]
    report_path: Mapped[str | None] = mapped_column(String(1000))
    project: Mapped[str] = mapped_column(
        String(200), default="default", server_default="default"
    )  # 0003 (indexed by 0005)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]


class StageRunRow(Base):
    __tablename__ = "stage_runs"
    __table_args__ = (UniqueConstraint("run_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("pipeline_runs.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    cache_key: Mapped[str | None] = mapped_column(String(80), index=True)
    cached_from: Mapped[int | None]
    outputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[dict[str, Any] | None]
    log_path: Mapped[str | None] = mapped_column(String(1000))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class MetricRow(Base):
    __tablename__ = "metrics"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("pipeline_runs.id"), index=True)
    stage: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    step: Mapped[int]
    value: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ArtifactRow(Base):
    __tablename__ = "artifacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(80), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(300))
    uri: Mapped[str] = mapped_column(String(1000))
    run_id: Mapped[str | None] = mapped_column(String(40), index=True)
    stage: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    # 0005: a project's versions in list order (name, version), read from the index instead of sorted per request;
    # 0009: a model's name (and so its version numbers) is per project
    __table_args__ = (
        UniqueConstraint("project", "name", "version", name="uq_model_versions_project_name_version"),
        Index("ix_model_versions_project_list", "project", "name", "version"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int]
    stage: Mapped[str] = mapped_column(String(20), default="none")
    onnx_digest: Mapped[str | None] = mapped_column(String(80))
    checkpoint_digest: Mapped[str | None] = mapped_column(String(80))
    run_id: Mapped[str | None] = mapped_column(String(40))
    dataset_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    project: Mapped[str] = mapped_column(
        String(200), default="default", server_default="default"
    )  # 0003 (indexed by 0005)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeploymentRow(Base):
    __tablename__ = "deployments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    url: Mapped[str] = mapped_column(String(500))
    pid: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(20))
    project: Mapped[str] = mapped_column(String(200), default="default", server_default="default", index=True)  # 0003
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None]
    # 0002: replicas, resources, canary split and the controller that keeps them running
    replicas: Mapped[int] = mapped_column(default=1, server_default="1")
    resources: Mapped[dict[str, Any]] = mapped_column(default=dict)
    canary_model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    canary_percent: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    canary_policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    previous_model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    controller: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime | None]


class DeploymentReplicaRow(Base):
    __tablename__ = "deployment_replicas"
    __table_args__ = (UniqueConstraint("deployment_id", "model_version_id", "slot"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    slot: Mapped[int]
    status: Mapped[str] = mapped_column(String(20))
    url: Mapped[str | None] = mapped_column(String(500))
    pid: Mapped[int | None]
    node: Mapped[str | None] = mapped_column(String(200))
    restarts: Mapped[int] = mapped_column(default=0)
    message: Mapped[str | None] = mapped_column(String(1000))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeploymentEventRow(Base):
    __tablename__ = "deployment_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(String(1000))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LineageEdgeRow(Base):
    __tablename__ = "lineage_edges"
    __table_args__ = (UniqueConstraint("src_kind", "src_id", "dst_kind", "dst_id", "relation"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    src_kind: Mapped[str] = mapped_column(String(40))
    src_id: Mapped[str] = mapped_column(String(100), index=True)
    dst_kind: Mapped[str] = mapped_column(String(40))
    dst_id: Mapped[str] = mapped_column(String(100), index=True)
    relation: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobRow(Base):
    """A pipeline submitted to the server's queue (0004). ``state`` only ever changes by compare-and-set."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("submitter", "idempotency_key"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project: Mapped[str] = mapped_column(String(200), index=True)
    submitter: Mapped[str] = mapped_column(String(200), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    pipeline: Mapped[str] = mapped_column(String(200))  # the spec's pipeline name
    path_name: Mapped[str] = mapped_column(String(500))  # the file name it was submitted as
    spec_text: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(default=0)
    workers: Mapped[int] = mapped_column(default=1)
    cpus: Mapped[float] = mapped_column(Float, default=1.0)  # per worker
    gpus: Mapped[float] = mapped_column(Float, default=0.0)  # per worker
    state: Mapped[str] = mapped_column(String(20), index=True)
    run_id: Mapped[str | None] = mapped_column(String(40), index=True)
    worker: Mapped[str | None] = mapped_column(String(200))  # "host:pid:start-time" of the process running it
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[dict[str, Any] | None]
    reason: Mapped[str | None] = mapped_column(String(500))  # why it is still waiting, as the scheduler last saw
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProjectQuotaRow(Base):
    """What one project may hold at once and use per month (0004); NULL = no limit."""

    __tablename__ = "project_quotas"
    project: Mapped[str] = mapped_column(String(200), primary_key=True)
    max_gpus: Mapped[float | None] = mapped_column(Float)
    max_cpus: Mapped[float | None] = mapped_column(Float)
    max_jobs: Mapped[int | None]
    gpu_hours_per_month: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TableChangeRow(Base):
    """How often each watched table has changed (0007), counted by SQLite triggers: the change feed reads it when
    ``PRAGMA data_version`` says someone committed, to tell which tables moved (aidc.store.metadata.changes).
    PostgreSQL's feed is its notifications; there the table stays empty."""

    __tablename__ = "table_changes"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)


class TelemetrySampleRow(Base):
    """One reading of one metric on one node (0010): raw (``resolution`` 0), or the mean of a 1-minute (60) or
    1-hour (3600) bucket that retention folded raw readings into. ``at`` is Unix seconds (UTC): buckets and
    ranges are plain arithmetic on every database, and the rows map one to one onto a time-series backend's
    (series = metric + node + labels, a float value at a time)."""

    __tablename__ = "telemetry_samples"
    __table_args__ = (
        Index("ix_telemetry_samples_series", "metric", "node", "at"),
        Index("ix_telemetry_samples_retention", "resolution", "at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[float] = mapped_column(Float)
    node: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(100))
    labels: Mapped[str] = mapped_column(String(500), default="")  # "k=v,k2=v2", sorted: one series per text
    value: Mapped[float] = mapped_column(Float)
    measured: Mapped[bool] = mapped_column(default=True)  # False: modelled (power from utilisation and the spec)
    source: Mapped[str] = mapped_column(String(40), default="")  # psutil, redfish, rapl, nvml, model
    resolution: Mapped[int] = mapped_column(Integer, default=0)  # 0 raw, else the bucket's seconds
    count: Mapped[int] = mapped_column(Integer, default=1)  # readings a bucket averages


class NodeStateRow(Base):
    """An operator's hold on a node (0010): cordoned (no new jobs or replicas) and, when drained, since when."""

    __tablename__ = "node_states"
    node: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200), default="")  # its hostname when held: what Ray knows it by
    cordoned: Mapped[bool] = mapped_column(default=False)
    drained: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(String(500), default="")
    changed_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class NodeFailureRow(Base):
    """A node's failure as training saw it (0013): a worker that died there, or its node lost; what the automatic
    cordon counts within its window."""

    __tablename__ = "node_failures"
    __table_args__ = (Index("ix_node_failures_node_at", "node", "at"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    node: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reason: Mapped[str] = mapped_column(String(500), default="")
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AlertRow(Base):
    """One alert (0011): a rule's condition on one group of series (a rack, a node, a GPU), from pending through
    firing to resolved, with the value that fired it. ``fingerprint`` (rule + group labels) names the group: a rack
    that fails again opens a new row with the same fingerprint, so the history keeps both episodes."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_state", "state", "started_at"),
        Index("ix_alerts_fingerprint", "fingerprint", "state"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(String(20), default="site")  # facility (derived), platform, site (a file)
    severity: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))  # pending, firing, resolved
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    project: Mapped[str | None] = mapped_column(String(200), nullable=True)  # None: the data center's, not a project's
    summary: Mapped[str] = mapped_column(Text, default="")
    runbook: Mapped[str] = mapped_column(Text, default="")
    value: Mapped[float | None] = mapped_column(Float, nullable=True)  # what fired it (the worst seen while firing)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)  # condition first true (pending from)
    fired_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    acked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    acked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SilenceRow(Base):
    """A silence (0011): alerts whose labels match every matcher notify no one until ``expires_at``."""

    __tablename__ = "alert_silences"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    matchers: Mapped[dict[str, Any]] = mapped_column(default=dict)  # label → value ("=~" prefix: a regex)
    project: Mapped[str | None] = mapped_column(String(200), nullable=True)
    comment: Mapped[str] = mapped_column(String(1000), default="")
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    ended_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
