"""Project isolation: the Platform's read verbs as one caller sees them — only records of projects it may see.

A record of another project is NotFound, exactly as a record that does not exist, so ids cannot be probed;
the attempt is audited as denied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aidc.errors import Conflict, InvalidInput, NotFound
from aidc.security.base import DEFAULT_PROJECT
from aidc.security.roles import Access

if TYPE_CHECKING:
    from aidc.platform import Platform

# Listing runs for a caller limited to some projects reads this many of the newest runs, then filters:
# the metadata store cannot filter by project yet.
RESTRICTED_RUN_SCAN = 5000


class ProjectScope:
    def __init__(self, platform: Platform, access: Access) -> None:
        self.platform, self.access = platform, access
        self.security = platform.security

    def _visible(self, permission: str, kind: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Items (JSON with an ``id``) the caller may see under ``permission``, each with its ``project``."""
        projects = self.security.store.projects_of(kind, [str(i["id"]) for i in items])
        allowed = self.access.projects(permission)
        placed = [i | {"project": projects.get(str(i["id"]), DEFAULT_PROJECT)} for i in items]
        return [i for i in placed if allowed is None or i["project"] in allowed]

    def _one(self, permission: str, kind: str, item: dict[str, Any], action: str, target: str) -> dict[str, Any]:
        project = self.security.project_of(kind, str(item["id"]))
        if not self.access.allows(permission, project):
            error = NotFound(f"no {target}", hint="it may belong to a project you have no role on")
            self.security.denied(self.access, action, target, error, project=project)
            raise error
        return item | {"project": project}

    # -- runs
    def list_runs(self, *, pipeline: str | None = None, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        every = self.access.projects("runs:read") is None
        runs = self.platform.list_runs(pipeline=pipeline, status=status, limit=limit if every else RESTRICTED_RUN_SCAN)
        return self._visible("runs:read", "run", [r.to_json() for r in runs])[:limit]

    def run_details(self, run_id: str) -> dict[str, Any]:
        details = self.platform.run_details(run_id)
        run = self._one("runs:read", "run", details["run"], "runs.read", f"run {run_id}")
        return details | {"run": run}

    # -- models
    def list_models(self, name: str | None = None) -> list[dict[str, Any]]:
        return self._visible("models:read", "model_version", [m.to_json() for m in self.platform.list_models(name)])

    def model(self, ref: str) -> dict[str, Any]:
        """A model version with its lineage; ``NAME`` is the newest version the caller may see."""
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
        return {"model": model, "lineage": [e.to_json() for e in self.platform.model_lineage(found)]}

    def promote_model(self, ref: str, stage: str) -> list[dict[str, Any]]:
        """Move ``NAME:VERSION`` to a stage; returns every version whose stage changed (production archives the
        previous one). Refused when the name has versions in a project the caller cannot change."""
        name, _, version = ref.partition(":")
        if not version.isdigit():
            raise InvalidInput(f"promote needs NAME:VERSION, got {ref!r}", hint="e.g. digits-cnn:3")
        self._one("models:promote", "model_version", self.platform.get_model(ref).to_json(), "models.promote", f"model {ref}")
        before = {m.version: m for m in self.platform.list_models(name)}
        projects = self.security.store.projects_of("model_version", [str(m.id) for m in before.values()])
        target = projects.get(str(before[int(version)].id), DEFAULT_PROJECT)
        with self.security.audited(self.access, "models.promote", f"model {ref}", project=target, stage=stage) as details:
            if any(not self.access.allows("models:promote", p) for p in projects.values()):
                raise Conflict(f"model {name} has versions in projects you cannot change",
                               hint="promotion may archive them; ask an admin or use a distinct model name per project")
            self.platform.metadata.set_model_stage(name, int(version), stage)
            after = self.platform.list_models(name)
            changed = [m.to_json() | {"project": projects.get(str(m.id), DEFAULT_PROJECT)} for m in after
                       if m.stage != before[m.version].stage or m.version == int(version)]
            details["changed"] = [f"{m['name']}:{m['version']}→{m['stage']}" for m in changed]
        return changed

    # -- datasets and deployments
    def list_datasets(self, name: str | None = None) -> list[dict[str, Any]]:
        return self._visible("datasets:read", "dataset_version", [d.to_json() for d in self.platform.list_datasets(name)])

    def list_deployments(self, *, include_stopped: bool = False) -> list[dict[str, Any]]:
        return self._visible("deployments:read", "deployment",
                             self.platform.list_deployments(include_stopped=include_stopped))
