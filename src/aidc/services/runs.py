"""Runs: run (or resume) a pipeline, and read what ran — its stages, metrics and report — as one caller may."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aidc.errors import AidcError
from aidc.security.roles import Access
from aidc.services.guard import Guard, not_found
from aidc.settings import Settings
from aidc.store.artifacts import ArtifactStore
from aidc.store.metadata import MetadataStore
from aidc.store.metadata.records import json_seconds

if TYPE_CHECKING:
    from aidc.pipeline.runner import PipelineRunner, RunObserver, RunResult
    from aidc.services.energy import EnergyService
    from aidc.services.nodes import Nodes
    from aidc.serving.deployments import Deployments

JSON = dict[str, Any]


def with_seconds(run: JSON) -> JSON:
    """A run's JSON with how long it took (None while it goes on)."""
    run["seconds"] = json_seconds(run["created_at"], run["finished_at"])
    return run


class Runs:
    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        guard: Guard,
        settings: Settings,
        serving: Callable[[], Deployments],
        energy: Callable[[], EnergyService] | None = None,
        collector: Callable[[], Any] | None = None,
        nodes: Callable[[], Nodes] | None = None,
    ) -> None:
        """``serving``: the deployments of the serving cluster, opened when a ``--serve`` run deploys; ``energy``:
        what works out a run's kWh and gCO2e (run_details and the report show them)."""
        self.store, self.artifacts, self.guard, self.settings = store, artifacts, guard, settings
        self._serving, self._energy, self._collector = serving, energy, collector
        self._nodes = nodes  # a worker's node failures are counted there (and a failing node cordoned)

    # -- running
    def data_roots(self, project: str) -> tuple[str, ...]:
        """Where a job of ``project`` may read file sources: its data area, then the folders an admin allowed."""
        area = self.settings.home / "projects" / project / "data"
        return (str(area), *self.settings.project_data_roots.get(project, []))

    def runner(
        self, access: Access, observer: RunObserver | None = None, *, project: str | None = None
    ) -> PipelineRunner:
        """A pipeline runner whose deploy stages act (and are audited) as ``access``; with ``project``, a job's run,
        confined to that project's data folders."""
        from aidc.pipeline.runner import PipelineRunner
        from aidc.serving.deploy import RunDeployments
        from aidc.serving.deployments import Deployments

        def deployments(run_id: str, serve: bool, project: str) -> RunDeployments:
            # Without --serve a run checks its deployment on its own Ray and takes it down when it ends.
            serving = (
                self._serving() if serve else Deployments(self.store, self.artifacts, self.settings, on_this_ray=True)
            )
            return RunDeployments(
                serving, self.store, self.guard.security, access, run_id, serve=serve, project=project
            )

        roots = None if project is None else self.data_roots(project)
        return PipelineRunner(
            self.store,
            self.artifacts,
            self.settings,
            deployments=deployments,
            observer=observer,
            data_roots=roots,
            project=project or "default",
            node_failed=self._node_failed if self._nodes is not None else None,
        )

    def _node_failed(self, ray_node_id: str, reason: str, run_id: str) -> dict[str, Any]:
        assert self._nodes is not None
        return self._nodes().record_failure(ray_node_id, reason, run_id=run_id)

    def run_pipeline(
        self,
        access: Access,
        path: str | Path | None,
        *,
        resume: str | None = None,
        force: bool = False,
        serve: bool = False,
        observer: RunObserver | None = None,
    ) -> RunResult:
        """Run (or resume) a pipeline to its end; raises StageFailed/GateFailed when a stage fails. Audited either way."""
        target = f"run {resume}" if resume else f"pipeline {path}"
        collector = self._sampling()
        try:
            result = self.runner(access, observer).run(path, resume=resume, force=force, serve=serve)
        except AidcError as exc:
            self.guard.record(
                access,
                "runs.run",
                target,
                result="failed",
                error=exc.code,
                run_id=getattr(exc, "run_id", None),
                stage=getattr(exc, "stage", None),
            )
            raise
        finally:
            if collector is not None:
                collector.stop()
                try:
                    collector.collect_once()  # the run's last reading: its energy covers it to the end
                except Exception:  # the run's outcome matters more than one sample
                    pass
        models = [
            o["model"]["ref"]
            for o in result.outputs.values()
            if isinstance(o.get("model"), dict) and "ref" in o["model"]
        ]
        self.guard.record(
            access,
            "runs.run",
            target,
            run_id=result.run_id,
            status=result.status,
            models=models,
            serving=[d["url"] for d in result.serving],
        )
        return result

    def _sampling(self) -> Any:
        """A collector sampling this host while the run goes on, unless one already does (a server on this store):
        the run's energy needs power readings over its time. None when there is nothing to start."""
        if self._collector is None:
            return None
        collector = self._collector()
        fresh = self.store.query_samples(
            node=collector.node, metric="node_cpu_utilisation_ratio", since=time.time() - 3 * collector.interval_s
        )
        if fresh:
            return None
        collector.fold = None  # retention is the server's
        collector.collect_once()
        collector.start()
        return collector

    # -- reading
    def list_runs(
        self, access: Access, *, pipeline: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[JSON]:
        runs = self.store.list_runs_json(
            pipeline=pipeline, status=status, limit=limit, projects=self.guard.projects(access, "runs:read")
        )
        return [with_seconds(r) for r in runs]

    def run_details(self, access: Access, run_id: str) -> JSON:
        """A run with its stages, metrics and artifacts; a unique prefix of the id works."""
        # (one connection for the reads; a prefix only matches the caller's runs: no probing of others' ids)
        details = self.store.run_details_json(run_id, projects=self.guard.projects(access, "runs:read"))
        run = self.guard.visible(
            access, "runs:read", "run", details["run"], "runs.read", f"run {run_id}", not_found("run", run_id)
        )
        energy = self._energy().run_energy(run) if self._energy is not None else None
        return details | {"run": run, "energy": energy, "lineage": self.lineage(run)}

    def lineage(self, run: JSON) -> JSON:
        """The run's lineage as a graph: the dataset versions it read, the checkpoint, ONNX and model versions it made,
        and the deployments (of the run's project) serving those versions. Nodes: kind, id and what a person knows
        them by; edges: src, dst (as "kind:id") and the relation."""
        from aidc.report.lineage import describe

        edges = [
            {"src": f"{e.src_kind}:{e.src_id}", "dst": f"{e.dst_kind}:{e.dst_id}", "relation": e.relation}
            for e in self.store.lineage_around("run", run["id"], stop=("model_version",))
        ]
        nodes = {f"run:{run['id']}": {"kind": "run", "id": run["id"], "label": run["id"]}}
        for edge in edges:
            for key in (edge["src"], edge["dst"]):
                if key not in nodes:
                    kind, _, id_ = key.partition(":")
                    nodes[key] = {"kind": kind, "id": id_, "label": describe(self.store, kind, id_)}
        made = {int(n["id"]) for n in nodes.values() if n["kind"] == "model_version" and n["id"].isdigit()}
        if made:
            for d in self.store.list_deployments(projects=[run["project"]]):
                if d.status == "stopped":
                    continue
                for mv_id, relation in ((d.model_version_id, "served_by"), (d.canary_model_version_id, "canary_of")):
                    if mv_id in made:
                        key = f"deployment:{d.id}"
                        nodes[key] = {"kind": "deployment", "id": str(d.id), "label": d.name}
                        edges.append({"src": f"model_version:{mv_id}", "dst": key, "relation": relation})
        return {"nodes": list(nodes.values()), "edges": edges}

    def run_report(self, access: Access, run_id: str, dest: Path | None = None) -> Path:
        """The run's HTML report, written (again) where the store's host keeps it, or at ``dest``."""
        from aidc.report.run_report import save_run_report

        run = self.store.get_run(run_id, projects=self.guard.projects(access, "runs:read"))
        self.guard.visible(
            access, "runs:read", "run", run.to_json(), "runs.read", f"run {run_id}", not_found("run", run_id)
        )
        energy = self._energy().run_energy(run.to_json()) if self._energy is not None else None
        return save_run_report(
            self.store, run.id, dest or self.settings.home / "runs" / run.id / "report.html", energy=energy
        )
