"""The MetadataStore contract: runs, stages, metrics, artifacts, datasets, models, deployments, lineage."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

from aidc.store.metadata.records import (
    Alert,
    Artifact,
    DatasetVersion,
    Deployment,
    DeploymentEvent,
    DeploymentReplica,
    Job,
    LineageEdge,
    Metric,
    ModelVersion,
    NodeFailure,
    NodeState,
    PipelineRun,
    ProjectQuota,
    Sample,
    Silence,
    StageRun,
    key_metrics,
)

if TYPE_CHECKING:
    from aidc.store.metadata.changes import ChangeFeed

RUN_STATES = ("running", "succeeded", "failed")
STAGE_STATES = ("pending", "running", "succeeded", "cached", "failed")
MODEL_STAGES = ("none", "staging", "production", "archived")
# What update_deployment may change; the rest of a deployment (name, created_at) is fixed at creation.
JobState = Literal["queued", "running", "preempted", "succeeded", "failed", "cancelled"]
JOB_STATES: tuple[str, ...] = get_args(JobState)
JOB_FINAL_STATES = ("succeeded", "failed", "cancelled")
# What transition_job may set alongside the state; the rest of a job is fixed at submission.
JOB_FIELDS = frozenset({"run_id", "worker", "attempts", "last_error", "reason", "started_at", "finished_at"})
DEPLOYMENT_FIELDS = frozenset(
    {
        "url",
        "pid",
        "status",
        "replicas",
        "resources",
        "model_version_id",
        "canary_model_version_id",
        "canary_percent",
        "canary_policy",
        "previous_model_version_id",
        "controller",
    }
)


class MetadataStore(ABC):
    """Every write may join an enclosing ``with store.transaction():`` block, which commits all or nothing."""

    url: str
    # Whether reads are answered in this process without waiting on anything (an embedded database such as SQLite):
    # then a read is bounded CPU work the server may do on its event loop instead of handing it to a thread.
    reads_in_process: bool = False

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]: ...

    def change_feed(self) -> ChangeFeed | None:
        """A feed of changes to the store by anyone (aidc.store.metadata.changes), for readers that keep what they
        read; None: the backend has none, and nothing read may be reused."""
        return None

    # -- pipeline runs and their stages
    @abstractmethod
    def create_run(
        self, run_id: str, pipeline: str, spec: dict[str, Any], spec_path: str | None, *, project: str = "default"
    ) -> PipelineRun:
        """A new run, in ``project`` from the start (what it registers is numbered within that project)."""

    @abstractmethod
    def get_run(self, run_id: str, *, projects: Collection[str] | None = None) -> PipelineRun:
        """A run by id, or by a unique prefix of its id among the runs of ``projects`` (None: every project)."""

    @abstractmethod
    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int = 50,
        projects: Collection[str] | None = None,
    ) -> list[PipelineRun]:
        """Newest first; ``projects``: only runs in these projects (None: every project, []: none)."""

    def list_runs_json(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int = 50,
        projects: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        """``list_runs`` as ``to_json()`` dicts; a backend may read them without building records (the API's lists)."""
        return [
            run.to_json() for run in self.list_runs(pipeline=pipeline, status=status, limit=limit, projects=projects)
        ]

    def run_details_json(self, run_id: str, *, projects: Collection[str] | None = None) -> dict[str, Any]:
        """A run with its stages (and each one's seconds), metrics and artifacts, JSON-ready (`aidc runs show`, the
        API's GET /runs/{id}); a unique prefix of the id among the runs of ``projects`` is enough."""
        run = self.get_run(run_id, projects=projects)
        stages = [s.to_json() | {"seconds": s.seconds} for s in self.list_stages(run.id)]
        metrics = [m.to_json() for m in self.metrics(run.id)]
        return {
            "run": run.to_json(),
            "stages": stages,
            "metrics": metrics,
            "artifacts": [a.to_json() for a in self.artifacts(run_id=run.id)],
            "key_metrics": key_metrics(metrics, stages),
        }

    @abstractmethod
    def finish_run(self, run_id: str, status: str, *, error: dict[str, Any] | None = None) -> PipelineRun: ...
    @abstractmethod
    def reopen_run(self, run_id: str) -> PipelineRun: ...
    @abstractmethod
    def set_run_report(self, run_id: str, path: str) -> None: ...
    @abstractmethod
    def start_stage(
        self, run_id: str, name: str, kind: str, *, cache_key: str | None, log_path: str | None
    ) -> StageRun: ...
    @abstractmethod
    def finish_stage(
        self,
        stage_run_id: int,
        status: str,
        *,
        outputs: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        cached_from: int | None = None,
    ) -> StageRun: ...
    @abstractmethod
    def list_stages(self, run_id: str) -> list[StageRun]: ...
    @abstractmethod
    def find_cached_stage(self, cache_key: str, *, project_of: str | None = None) -> StageRun | None:
        """The newest succeeded stage with this cache key; ``project_of``: only from runs in the project of that
        run. A run that reuses a stage gets its outputs — dataset and model versions of the project the stage ran
        in — so the pipeline runner never looks beyond the run's own project."""

    # -- metrics and artifacts
    @abstractmethod
    def add_metrics(self, run_id: str, stage: str, points: Iterable[tuple[str, int, float]]) -> None: ...
    @abstractmethod
    def metrics(self, run_id: str, *, stage: str | None = None) -> list[Metric]: ...
    @abstractmethod
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
    ) -> Artifact: ...
    @abstractmethod
    def artifacts(self, *, run_id: str | None = None, kind: str | None = None) -> list[Artifact]: ...

    def digest_in_project(self, digest: str, project: str) -> bool:
        """Whether the artifact ``digest`` is one of ``project``'s: recorded by one of its runs, or the data of one of
        its dataset or model versions (what a job of the project may read back)."""
        raise NotImplementedError(f"{type(self).__name__} cannot tell an artifact's project")

    # -- datasets
    @abstractmethod
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
    ) -> DatasetVersion:
        """A new version of ``dataset`` in ``project`` (numbered within it), or the project's version of identical
        data (same fingerprint) when there is one."""

    @abstractmethod
    def get_dataset_version(self, dataset_version_id: int) -> DatasetVersion: ...
    @abstractmethod
    def list_dataset_versions(
        self, dataset: str | None = None, *, projects: Collection[str] | None = None
    ) -> list[DatasetVersion]:
        """By name and version; ``projects`` as for list_runs."""

    def list_dataset_versions_json(
        self, dataset: str | None = None, *, projects: Collection[str] | None = None
    ) -> list[dict[str, Any]]:
        """``list_dataset_versions`` as ``model_dump(mode="json", by_alias=True)`` dicts (``schema``, not ``schema_``)."""
        return [
            d.model_dump(mode="json", by_alias=True) for d in self.list_dataset_versions(dataset, projects=projects)
        ]

    # -- models
    @abstractmethod
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
    ) -> ModelVersion:
        """The next version of model ``name`` in ``project``: a name is per project, and so are its numbers."""

    @abstractmethod
    def get_model_version(self, name: str, version: int | None = None, *, project: str | None = None) -> ModelVersion:
        """Version ``version`` (None: the newest) of ``name`` in ``project``; without a project the name must be in
        one project only (Conflict otherwise)."""

    @abstractmethod
    def get_model_version_by_id(self, model_version_id: int) -> ModelVersion: ...
    @abstractmethod
    def list_model_versions(
        self, name: str | None = None, *, projects: Collection[str] | None = None
    ) -> list[ModelVersion]:
        """By name and version; ``projects`` as for list_runs."""

    def list_model_versions_json(
        self, name: str | None = None, *, projects: Collection[str] | None = None
    ) -> list[dict[str, Any]]:
        """``list_model_versions`` as ``to_json()`` dicts."""
        return [m.to_json() for m in self.list_model_versions(name, projects=projects)]

    @abstractmethod
    def set_model_stage(self, name: str, version: int, stage: str, *, project: str | None = None) -> ModelVersion:
        """Move a version to ``stage``; production archives the previous production version of the same name in the
        same project only."""

    # -- deployments, their replicas and what happened to them
    @abstractmethod
    def add_deployment(
        self,
        name: str,
        model_version_id: int,
        url: str,
        pid: int | None,
        status: str = "running",
        *,
        replicas: int = 1,
        resources: dict[str, Any] | None = None,
        controller: str | None = None,
        project: str | None = None,
    ) -> Deployment:
        """``project``: where it belongs from its first moment (default: project "default")."""

    @abstractmethod
    def set_deployment_status(self, deployment_id: int, status: str) -> Deployment: ...
    @abstractmethod
    def list_deployments(
        self, *, status: str | None = None, name: str | None = None, projects: Collection[str] | None = None
    ) -> list[Deployment]:
        """Oldest first; ``projects`` as for list_runs."""

    @abstractmethod
    def get_deployment(self, deployment_id: int) -> Deployment: ...
    @abstractmethod
    def find_deployment(self, name: str, *, project: str | None = None) -> Deployment:
        """The newest deployment called ``name`` that is not stopped — in ``project`` where one is given (a name is
        per project: two projects may each have a deployment of the same name); NotFound otherwise."""

    @abstractmethod
    def update_deployment(self, deployment_id: int, **changes: Any) -> Deployment:
        """Change the fields named in DEPLOYMENT_FIELDS; InvalidInput for any other."""

    @abstractmethod
    def record_replica(
        self,
        deployment_id: int,
        model_version_id: int,
        slot: int,
        *,
        status: str,
        url: str | None = None,
        pid: int | None = None,
        node: str | None = None,
        restarts: int = 0,
        message: str | None = None,
    ) -> DeploymentReplica:
        """Insert or update the replica (deployment, model version, slot)."""

    @abstractmethod
    def remove_replica(self, deployment_id: int, model_version_id: int, slot: int) -> None: ...
    @abstractmethod
    def list_replicas(self, deployment_id: int) -> list[DeploymentReplica]: ...
    @abstractmethod
    def add_deployment_event(
        self, deployment_id: int, kind: str, message: str, details: dict[str, Any] | None = None
    ) -> DeploymentEvent: ...
    @abstractmethod
    def deployment_events(self, deployment_id: int, *, limit: int = 100) -> list[DeploymentEvent]:
        """The newest ``limit`` events, oldest first."""

    # -- jobs and project quotas (the server's queue)
    @abstractmethod
    def submit_job(self, job: dict[str, Any]) -> tuple[Job, bool]:
        """Insert a queued job in one transaction; with the (submitter, idempotency_key) of an existing job,
        return that one instead. The bool says whether this call created it."""

    @abstractmethod
    def get_job(self, job_id: str, *, projects: Collection[str] | None = None) -> Job:
        """A job by id, or by a unique id prefix among the jobs of ``projects`` (None: every project); NotFound
        otherwise."""

    @abstractmethod
    def list_jobs(
        self,
        *,
        project: str | None = None,
        states: tuple[str, ...] | None = None,
        run_id: str | None = None,
        since: Any = None,
        limit: int = 100,
    ) -> list[Job]:
        """Newest first; ``since``: only jobs not finished before that time (for usage accounting)."""

    @abstractmethod
    def transition_job(
        self, job_id: str, from_states: tuple[str, ...], to_state: str | None, **fields: Any
    ) -> Job | None:
        """Compare-and-set: change the job (to ``to_state``, or just ``fields`` with None) only if its state is
        one of ``from_states``; None when it was not (someone else moved it first)."""

    @abstractmethod
    def get_quota(self, project: str) -> ProjectQuota:
        """The project's quota; no limits when none was set."""

    @abstractmethod
    def set_quota(self, project: str, **limits: float | int | None) -> ProjectQuota: ...
    @abstractmethod
    def list_quotas(self) -> list[ProjectQuota]: ...

    # -- lineage
    @abstractmethod
    def add_lineage(self, src: tuple[str, str], dst: tuple[str, str], relation: str) -> None: ...
    @abstractmethod
    def upstream(self, kind: str, id_: str) -> list[LineageEdge]: ...
    @abstractmethod
    def downstream(self, kind: str, id_: str) -> list[LineageEdge]:
        """The edges out of (kind, id_): what it fed or produced."""

    # -- telemetry: node samples (raw a day, 1-minute means a month, 1-hour means after) and node states
    @abstractmethod
    def add_samples(self, samples: Iterable[Sample]) -> int:
        """Store readings (one transaction); how many."""

    @abstractmethod
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
    ) -> list[Sample]:
        """Readings by series and time range (Unix seconds, ``since`` ≤ at < ``until``), oldest first."""

    @abstractmethod
    def latest_samples(self, *, within_s: float = 120.0, now: float | None = None) -> list[Sample]: ...
    @abstractmethod
    def sample_trends(
        self, metrics: Collection[str], *, since: float, bucket_s: int = 60
    ) -> list[tuple[str, str, float, float]]:
        """(node, metric, bucket start, mean) of the raw readings of ``metrics`` since ``since``, in ``bucket_s``
        buckets, worked out by the database (a sparkline of 100 nodes without 10,000 rows through Python); ordered
        by node, metric and time. Readings with labels (a GPU's) are averaged with their node's others."""

    @abstractmethod
    def fold_samples(self, now: float | None = None) -> dict[str, int]:
        """Retention: raw older than a day → 1-minute means; those older than 30 days → 1-hour means."""

    @abstractmethod
    def set_node_state(
        self, node: str, *, cordoned: bool, drained: bool = False, reason: str = "", by: str = "", host: str = ""
    ) -> NodeState:
        """Cordon (no new jobs or replicas), drain, or release (``cordoned=False``) a node, by name."""

    @abstractmethod
    def node_states(self) -> list[NodeState]: ...
    @abstractmethod
    def cordoned_nodes(self) -> set[str]: ...
    @abstractmethod
    def add_node_failure(self, node: str, reason: str, *, host: str = "", run_id: str | None = None) -> NodeFailure:
        """Keep one failure of ``node`` (by aidc's name for it): the history the automatic cordon counts."""

    @abstractmethod
    def node_failures(self, *, node: str | None = None, since: datetime | None = None) -> list[NodeFailure]:
        """A node's failures (None: every node's), oldest first; ``since``: those at or after it."""

    # -- alerts: history (pending → firing → resolved, acknowledged) and silences
    @abstractmethod
    def save_alerts(self, alerts: Iterable[dict[str, Any]]) -> None:
        """Insert or update alerts by ``id`` (one transaction): what the evaluator writes each round it changes."""

    @abstractmethod
    def open_alerts(self) -> list[Alert]:
        """The alerts pending or firing now (what an evaluator resumes from after a restart)."""

    @abstractmethod
    def list_alerts(
        self,
        *,
        states: Collection[str] | None = None,
        projects: Collection[str] | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Newest first; ``projects`` (None: all) keeps the data center's alerts and those of these projects."""

    @abstractmethod
    def get_alert(self, alert_id: str) -> Alert:
        """By id or a unique prefix of it; NotFound otherwise."""

    @abstractmethod
    def ack_alert(self, alert_id: str, by: str) -> Alert: ...
    @abstractmethod
    def add_silence(self, silence: dict[str, Any]) -> Silence: ...
    @abstractmethod
    def list_silences(self, *, active_at: datetime | None = None) -> list[Silence]:
        """Every silence (newest first), or those in force at ``active_at`` (not ended, not expired)."""

    @abstractmethod
    def get_silence(self, silence_id: str) -> Silence: ...
    @abstractmethod
    def end_silence(self, silence_id: str, by: str) -> Silence: ...

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        pass

    def lineage_around(self, kind: str, id_: str, *, stop: Collection[str] = ()) -> list[LineageEdge]:
        """Every edge upstream of (kind, id_) and downstream of it, transitively (a run: the dataset it read, the
        checkpoint, ONNX and model version it made), each once, upstream first. The walk downstream goes no further
        than a node of a kind in ``stop`` (a model version: not on into the runs fine-tuned from it)."""
        edges = {(e.src_kind, e.src_id, e.dst_kind, e.dst_id, e.relation): e for e in self.iter_all_lineage(kind, id_)}
        seen: set[tuple[str, str]] = set()
        frontier = [(kind, str(id_))]
        while frontier:
            node = frontier.pop()
            if node in seen:
                continue
            seen.add(node)
            if node[0] in stop and node != (kind, str(id_)):
                continue
            for edge in self.downstream(*node):
                edges.setdefault((edge.src_kind, edge.src_id, edge.dst_kind, edge.dst_id, edge.relation), edge)
                frontier.append((edge.dst_kind, edge.dst_id))
        return list(edges.values())

    def iter_all_lineage(self, kind: str, id_: str) -> Iterator[LineageEdge]:
        """Walk upstream edges transitively (model version → ONNX → checkpoint → run → dataset version)."""
        seen: set[tuple[str, str]] = set()
        frontier = [(kind, id_)]
        while frontier:
            node = frontier.pop()
            if node in seen:
                continue
            seen.add(node)
            for edge in self.upstream(*node):
                yield edge
                frontier.append((edge.src_kind, edge.src_id))
