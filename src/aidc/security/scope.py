"""Project isolation: the Platform's verbs as one caller sees them — only records of projects it may see.

Lists are limited by the metadata store itself (``projects=...`` in SQL). A record of another project is
NotFound, exactly as a record that does not exist, so ids cannot be probed; the attempt is audited as denied.
Every verb returns JSON-ready data, the same for the CLI on the store and for the API (LocalClient, routes).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aidc.errors import AidcError, Conflict, InvalidInput, NotFound, PermissionDenied
from aidc.security.roles import Access
from aidc.store.metadata.records import json_seconds

if TYPE_CHECKING:
    from aidc.platform import Platform
    from aidc.store.metadata.records import PipelineRun

JSON = dict[str, Any]


def run_json(run: PipelineRun) -> JSON:
    seconds = (run.finished_at - run.created_at).total_seconds() if run.finished_at else None
    return run.to_json() | {"seconds": seconds}


def with_seconds(run: JSON) -> JSON:
    """``run_json`` of a run already in its JSON form (as the store's JSON lists give it)."""
    run["seconds"] = json_seconds(run["created_at"], run["finished_at"])
    return run


class ProjectScope:
    def __init__(self, platform: Platform, access: Access, *, defer_denials: bool = False) -> None:
        """``defer_denials``: audit entries of denied reads are kept in ``deferred_denials`` for the caller to write
        (the API reads on its event loop and writes in its thread pool) instead of being written at once."""
        self.platform, self.access = platform, access
        self.security = platform.security
        self.deferred_denials: list[Callable[[], None]] | None = [] if defer_denials else None

    def _allowed(self, permission: str) -> list[str] | None:
        """The projects the store should limit a list to (None: every project)."""
        allowed = self.access.projects(permission)
        return None if allowed is None else sorted(allowed)

    def _one(self, permission: str, kind: str, item: JSON, action: str, target: str) -> JSON:
        """``item`` (a record's JSON, with its ``project``) once the caller may ``permission`` there."""
        project = item.get("project") or self.security.project_of(kind, str(item["id"]))
        if not self.access.allows(permission, project):
            self._deny(action, target, project, visible=self.access.allows(permission.split(":")[0] + ":read", project))
        return item | {"project": project}

    def _deny(self, action: str, target: str, project: str, *, visible: bool = False) -> None:
        """A caller who cannot see the record is told it does not exist; one who can see it but not change it is
        told that (PermissionDenied, naming the project)."""
        error: AidcError
        if visible:
            error = PermissionDenied(
                f"{self.access.principal} may not change {target} (project {project})",
                hint="ask an admin for a role that may: `aidc users grant`",
            )
        else:
            error = NotFound(f"no {target}", hint="it may belong to a project you have no role on")
        if self.deferred_denials is not None:
            self.deferred_denials.append(
                partial(self.security.denied, self.access, action, target, error, project=project)
            )
        else:
            self.security.denied(self.access, action, target, error, project=project)
        raise error

    # -- runs
    def list_runs(self, *, pipeline: str | None = None, status: str | None = None, limit: int = 50) -> list[JSON]:
        runs = self.platform.metadata.list_runs_json(
            pipeline=pipeline, status=status, limit=limit, projects=self._allowed("runs:read")
        )
        return [with_seconds(r) for r in runs]

    def run_details(self, run_id: str) -> JSON:
        details = self.platform.run_details(run_id)  # (the store reads it on one connection)
        run = self._one("runs:read", "run", details["run"], "runs.read", f"run {run_id}")
        return details | {"run": run}

    def run_report(self, run_id: str, dest: Path | None = None) -> Path:
        """The run's HTML report, written (again) where the store's host keeps it, or at ``dest``."""
        run = self.platform.metadata.get_run(run_id)
        self._one("runs:read", "run", run.to_json(), "runs.read", f"run {run_id}")
        return self.platform.write_run_report(run.id, dest)

    # -- models
    def list_models(self, name: str | None = None) -> list[JSON]:
        return self.platform.metadata.list_model_versions_json(name, projects=self._allowed("models:read"))

    def model(self, ref: str) -> JSON:
        """A model version with its lineage (and a label per lineage node) and the deployments the caller may see
        that serve it; ``NAME`` is the newest version the caller may see."""
        from aidc.report.lineage import describe

        name, _, version = ref.partition(":")
        if version:
            found = self.platform.get_model(ref)
            model = self._one("models:read", "model_version", found.to_json(), "models.read", f"model {ref}")
        else:
            visible = self.list_models(name)
            if not visible:
                raise NotFound(f"no model {name!r}", hint="list models with `aidc models list`")
            model = max(visible, key=lambda m: m["version"])
            found = self.platform.get_model(f"{name}:{model['version']}")
        lineage = [e.to_json() for e in self.platform.model_lineage(found)]
        nodes = {(e["src_kind"], e["src_id"]) for e in lineage} | {("model_version", str(found.id))}
        deployments = [
            d
            for d in self.platform.metadata.list_deployments(projects=self._allowed("deployments:read"))
            if d.model_version_id == found.id
        ]
        return {
            "model": model,
            "lineage": lineage,
            "labels": {f"{k}:{i}": describe(self.platform.metadata, k, i) for k, i in sorted(nodes)},
            "deployments": [d.to_json() for d in deployments],
        }

    def promote_model(self, ref: str, stage: str) -> list[JSON]:
        """Move ``NAME:VERSION`` to a stage; returns every version whose stage changed (production archives the
        previous one). Refused when the name has versions in a project the caller cannot change."""
        name, _, version = ref.partition(":")
        if not version.isdigit():
            raise InvalidInput(f"promote needs NAME:VERSION, got {ref!r}", hint="e.g. digits-cnn:3")
        self._one(
            "models:promote", "model_version", self.platform.get_model(ref).to_json(), "models.promote", f"model {ref}"
        )
        before = {m.version: m for m in self.platform.list_models(name)}
        projects = {str(m.id): m.project for m in before.values()}
        target = before[int(version)].project
        with self.security.audited(
            self.access, "models.promote", f"model {ref}", project=target, stage=stage
        ) as details:
            if any(not self.access.allows("models:promote", p) for p in projects.values()):
                raise Conflict(
                    f"model {name} has versions in projects you cannot change",
                    hint="promotion may archive them; ask an admin or use a distinct model name per project",
                )
            self.platform.metadata.set_model_stage(name, int(version), stage)
            after = self.platform.list_models(name)
            changed = [m.to_json() for m in after if m.stage != before[m.version].stage or m.version == int(version)]
            details["changed"] = [f"{m['name']}:{m['version']}→{m['stage']}" for m in changed]
        return changed

    # -- datasets
    def list_datasets(self, name: str | None = None) -> list[JSON]:
        return self.platform.metadata.list_dataset_versions_json(name, projects=self._allowed("datasets:read"))

    # -- deployments
    def list_deployments(self, *, include_stopped: bool = False) -> list[JSON]:
        rows = self.platform.metadata.list_deployments(projects=self._allowed("deployments:read"))
        return [
            self.platform.serving.describe(d) | {"project": d.project}
            for d in rows
            if include_stopped or d.status != "stopped"
        ]

    def _deployment(self, name: str, permission: str, action: str) -> str:
        """The project of the active deployment ``name``, once the caller may ``permission`` there."""
        found = self.platform.metadata.find_deployment(name)
        return str(self._one(permission, "deployment", found.to_json(), action, f"deployment {name}")["project"])

    def deployment(self, name: str) -> JSON:
        project = self._deployment(name, "deployments:read", "deployments.read")
        return self.platform.deployment_details(name) | {"project": project}

    def change_deployment(self, verb: str, name: str, *args: Any) -> JSON:
        """``verb``: scale, promote, rollback or delete, as Platform's ``<verb>_deployment``."""
        project = self._deployment(name, "deployments:manage", f"deployments.{verb}")
        changed = getattr(self.platform, f"{verb}_deployment")(name, *args, access=self.access, project=project)
        return dict(changed) | {"project": project}

    def deploy(self, ref: str, **options: Any) -> JSON:
        """Serve model ``NAME[:VERSION]`` the caller may see; the deployment joins the model's project."""
        name, _, version = ref.partition(":")
        try:
            if version:
                found = self.platform.get_model(ref).to_json()
            else:
                visible = self.list_models(name)
                if not visible:
                    raise NotFound(f"no model {name!r}", hint="list models with `aidc models list`")
                found = max(visible, key=lambda m: m["version"])
        except AidcError as exc:  # a failed attempt at a change is audited too
            self.security.record(self.access, "deployments.deploy", ref, result="failed", error=exc.code)
            raise
        model = self._one("models:read", "model_version", found, "deployments.deploy", f"model {ref}")
        project = model["project"]
        if not self.access.allows("deployments:manage", project):
            self._deny("deployments.deploy", f"model {ref}", project, visible=True)
        existing = options.get("name") or model["name"]
        try:
            current = self.platform.metadata.find_deployment(existing)
        except NotFound:
            current = None
        if current is not None:  # a canary into someone else's deployment needs the right there too
            self._deployment(existing, "deployments:manage", "deployments.deploy")
        deployed = self.platform.deploy(
            f"{model['name']}:{model['version']}", access=self.access, project=project, **options
        )  # a new deployment is in the model's project from the start
        return dict(deployed) | {"project": project}
