"""Records: datasets, model versions and their lineage, as one caller may see them; model promotion."""

from __future__ import annotations

from typing import Any

from aidc.errors import Conflict, InvalidInput
from aidc.security.roles import Access
from aidc.services.guard import Guard, not_found
from aidc.store.metadata import MetadataStore
from aidc.store.metadata.records import ModelVersion

JSON = dict[str, Any]


def parse_model_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` (the newest version) or ``NAME:VERSION``."""
    name, _, version = ref.partition(":")
    if version and not version.isdigit():
        raise InvalidInput(
            f"model reference {ref} has a non-numeric version", hint="write NAME or NAME:VERSION, e.g. digits-cnn:3"
        )
    return name, int(version) if version else None


class Records:
    def __init__(self, store: MetadataStore, guard: Guard) -> None:
        self.store, self.guard = store, guard

    # -- datasets
    def list_datasets(self, access: Access, name: str | None = None) -> list[JSON]:
        return self.store.list_dataset_versions_json(name, projects=self.guard.projects(access, "datasets:read"))

    # -- models
    def list_models(self, access: Access, name: str | None = None) -> list[JSON]:
        return self.store.list_model_versions_json(name, projects=self.guard.projects(access, "models:read"))

    def model_version(
        self, access: Access, ref: str, *, permission: str = "models:read", action: str = "models.read"
    ) -> tuple[ModelVersion, JSON]:
        """The model version ``ref`` names, once ``access`` may ``permission`` in its project: ``NAME`` is the newest
        version the caller may see. Returns the version and its JSON (with its project)."""
        name, version = parse_model_ref(ref)
        if version is None:
            visible = self.list_models(access, name)
            if not visible:
                raise not_found("model", name)
            version = max(m["version"] for m in visible)
        found = self.store.get_model_version(name, version)
        hidden = not_found("model version", f"{name}:{version}")
        item = self.guard.visible(access, permission, "model_version", found.to_json(), action, f"model {ref}", hidden)
        return found, item

    def show_model(self, access: Access, ref: str) -> JSON:
        """A model version with its lineage (a label per lineage node) and the deployments the caller may see that
        serve it."""
        from aidc.report.lineage import describe

        found, model = self.model_version(access, ref)
        lineage = [e.to_json() for e in self.lineage(found)]
        nodes = {(e["src_kind"], e["src_id"]) for e in lineage} | {("model_version", str(found.id))}
        deployments = [
            d
            for d in self.store.list_deployments(projects=self.guard.projects(access, "deployments:read"))
            if d.model_version_id == found.id
        ]
        return {
            "model": model,
            "lineage": lineage,
            "labels": {f"{k}:{i}": describe(self.store, k, i) for k, i in sorted(nodes)},
            "deployments": [d.to_json() for d in deployments],
        }

    def lineage(self, model: ModelVersion) -> list[Any]:
        return list(self.store.iter_all_lineage("model_version", str(model.id)))

    def promote_model(self, access: Access, ref: str, stage: str) -> list[JSON]:
        """Move ``NAME:VERSION`` to a stage; returns every version whose stage changed (production archives the
        previous one). Refused when the name has versions in a project the caller cannot change."""
        name, version = parse_model_ref(ref)
        if version is None:
            raise InvalidInput(f"promote needs NAME:VERSION, got {ref}", hint="e.g. digits-cnn:3")
        _, model = self.model_version(access, ref, permission="models:promote", action="models.promote")
        before = {m.version: m for m in self.store.list_model_versions(name)}
        with self.guard.audited(
            access, "models.promote", f"model {ref}", project=model["project"], stage=stage
        ) as details:
            if any(not access.allows("models:promote", m.project) for m in before.values()):
                raise Conflict(
                    f"model {name} has versions in projects you cannot change",
                    hint="promotion may archive them; ask an admin or use a distinct model name per project",
                )
            self.store.set_model_stage(name, version, stage)
            after = self.store.list_model_versions(name)
            changed = [m.to_json() for m in after if m.stage != before[m.version].stage or m.version == version]
            details["changed"] = [f"{m['name']}:{m['version']}→{m['stage']}" for m in changed]
        return changed
