"""What the metadata store hands back: plain, JSON-ready records of runs, datasets, models and lineage."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Record(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        """SQLite hands timestamps back without a zone; every stored time is UTC, so say so."""
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    @functools.cache
    def time_fields(cls) -> tuple[str, ...]:
        """The fields that hold a time (``datetime`` or ``datetime | None``): what json_time formats."""
        return tuple(
            name
            for name, field in cls.model_fields.items()
            if field.annotation is datetime or datetime in get_args(field.annotation)
        )


def json_time(value: datetime | None) -> str | None:
    """A stored time exactly as ``Record.to_json`` writes it (ISO 8601; a naive time is UTC; UTC is ``Z``), for
    reads that go straight from rows to JSON without building records."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.isoformat() + "Z"
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def json_seconds(start: str | None, end: str | None) -> float | None:
    """Seconds between two json_time strings, the same float as subtracting the times themselves."""
    if not (start and end):
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def key_metrics(metrics: list[dict[str, Any]], stages: list[dict[str, Any]]) -> dict[str, float]:
    """A run's headline numbers (what `aidc runs show` lists): the last value (highest step) of each recorded metric,
    then the last evaluate stage's scores on the test split as ``test_<name>``."""
    last: dict[str, tuple[int, float]] = {}
    for m in metrics:
        if m["name"] not in last or m["step"] >= last[m["name"]][0]:
            last[m["name"]] = (m["step"], m["value"])
    found = {name: value for name, (_, value) in last.items()}
    evaluation: dict[str, Any] = next(
        (
            s["outputs"]["metrics"]
            for s in reversed(stages)
            if s["kind"] == "evaluate" and (s["outputs"] or {}).get("metrics")
        ),
        {},
    )
    return found | {f"test_{k}": v for k, v in evaluation.items() if isinstance(v, float)}


class DatasetVersion(Record):
    id: int
    dataset: str
    version: int
    artifact_digest: str
    schema_: dict[str, Any] = Field(alias="schema")
    stats: dict[str, Any]
    class_balance: dict[str, Any]
    fingerprint: str
    run_id: str | None
    created_at: datetime
    project: str = "default"  # which project it belongs to (`aidc projects assign`; the API shows only yours)

    model_config = ConfigDict(from_attributes=True, frozen=True, populate_by_name=True)

    @property
    def ref(self) -> str:
        return f"{self.dataset}:{self.version}"


class PipelineRun(Record):
    id: str
    pipeline: str
    spec: dict[str, Any]
    spec_path: str | None
    status: str  # running | succeeded | failed
    error: dict[str, Any] | None
    report_path: str | None
    created_at: datetime
    finished_at: datetime | None
    project: str = "default"


class StageRun(Record):
    id: int
    run_id: str
    name: str
    kind: str
    status: str  # pending | running | succeeded | failed | cached
    cache_key: str | None
    cached_from: int | None
    outputs: dict[str, Any]
    error: dict[str, Any] | None
    log_path: str | None
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class Metric(Record):
    run_id: str
    stage: str
    name: str
    step: int
    value: float


class Artifact(Record):
    id: int
    digest: str
    size: int
    kind: str
    name: str
    uri: str
    run_id: str | None
    stage: str | None
    created_at: datetime


class ModelVersion(Record):
    id: int
    name: str
    version: int
    stage: str  # none | staging | production | archived
    onnx_digest: str | None
    checkpoint_digest: str | None
    run_id: str | None
    dataset_version_id: int | None
    metrics: dict[str, Any]
    created_at: datetime
    project: str = "default"

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


class Deployment(Record):
    """A served model: the stable version, plus a canary version taking ``canary_percent`` of the traffic.

    ``url`` is the one address users call (the router of a managed deployment, or the single endpoint the
    pipeline started); ``controller`` names the Ray actor that keeps a managed deployment's replicas running
    (None for a single endpoint process, whose ``pid`` is then the server's).
    """

    id: int
    name: str
    model_version_id: int
    url: str
    pid: int | None
    status: str  # starting | running | stopped | failed
    created_at: datetime
    stopped_at: datetime | None
    replicas: int = 1
    resources: dict[str, Any] = Field(default_factory=dict)  # per replica {"cpus", "gpus"}; "host" of the URL
    canary_model_version_id: int | None = None
    canary_percent: float = 0.0
    canary_policy: dict[str, Any] = Field(default_factory=dict)
    previous_model_version_id: int | None = None  # what `rollback` returns to once a canary was promoted
    controller: str | None = None
    updated_at: datetime | None = None
    project: str = "default"


class DeploymentReplica(Record):
    """One server process of a deployment, as its controller last saw it."""

    id: int
    deployment_id: int
    model_version_id: int
    slot: int
    status: str  # starting | ready | unhealthy | stopping
    url: str | None
    pid: int | None
    node: str | None
    restarts: int
    message: str | None
    updated_at: datetime


class DeploymentEvent(Record):
    """Something that happened to a deployment: created, scaled, canary started, promoted, rolled back…"""

    id: int
    deployment_id: int
    kind: str
    message: str
    details: dict[str, Any]
    created_at: datetime


class LineageEdge(Record):
    src_kind: str
    src_id: str
    dst_kind: str
    dst_id: str
    relation: str


class Job(Record):
    """A submitted pipeline in the server's queue: queued → running → succeeded | failed | cancelled, and
    running → preempted → running again (resuming its run) when a higher-priority job needs the room."""

    id: str
    project: str
    submitter: str
    idempotency_key: str
    pipeline: str
    path_name: str
    spec_text: str
    priority: int
    workers: int
    cpus: float  # per worker
    gpus: float  # per worker
    state: str
    run_id: str | None
    worker: str | None
    attempts: int
    last_error: dict[str, Any] | None
    reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @property
    def total_cpus(self) -> float:
        return self.cpus * self.workers

    @property
    def total_gpus(self) -> float:
        return self.gpus * self.workers

    def to_json(self) -> dict[str, Any]:
        """Everything but the spec text (``aidc jobs show`` asks for it separately)."""
        return self.model_dump(mode="json", exclude={"spec_text"})


class ProjectQuota(Record):
    project: str
    max_gpus: float | None = None
    max_cpus: float | None = None
    max_jobs: int | None = None
    gpu_hours_per_month: float | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """One telemetry reading: ``metric`` on ``node`` (``labels``: "k=v,…", e.g. "gpu=0") at Unix time ``at``.

    ``measured`` is False where the value was modelled (power from utilisation and the spec's nominal and
    maximum power); ``resolution`` 0 is a raw reading, 60 or 3600 the mean of that many seconds' readings.
    A plain dataclass, not a Record: a collector writes tens of thousands a second.
    """

    node: str
    metric: str
    value: float
    at: float
    labels: str = ""
    measured: bool = True
    source: str = ""
    resolution: int = 0
    count: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "metric": self.metric,
            "labels": self.labels,
            "value": self.value,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat().replace("+00:00", "Z"),
            "measured": self.measured,
            "source": self.source,
            "resolution": self.resolution,
        }


def label_text(labels: dict[str, str] | None) -> str:
    """Labels as the store keeps them: "k=v,k2=v2", sorted by key, so one series has one text."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels)) if labels else ""


def parse_labels(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if "=" in part)


class NodeState(Record):
    """An operator's hold on a node: cordoned (no new jobs or replicas), drained (its jobs asked to requeue)."""

    node: str
    host: str
    cordoned: bool
    drained: bool
    reason: str
    changed_by: str
    updated_at: datetime


class NodeFailure(Record):
    """One failure of a node as training saw it (a worker process that died there, or the node lost)."""

    id: int
    node: str
    host: str
    at: datetime
    reason: str
    run_id: str | None


class Alert(Record):
    """One episode of an alert rule's condition on one group of series: pending → firing → resolved."""

    id: str
    fingerprint: str
    rule: str
    origin: str
    severity: str
    state: str
    labels: dict[str, Any]
    project: str | None
    summary: str
    runbook: str
    value: float | None
    threshold: float | None
    started_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    acked_by: str | None
    acked_at: datetime | None
    updated_at: datetime


class Silence(Record):
    """Alerts whose labels match every matcher notify no one from ``created_at`` until ``expires_at`` (or ended)."""

    id: str
    matchers: dict[str, Any]
    project: str | None
    comment: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    ended_by: str | None
    ended_at: datetime | None
