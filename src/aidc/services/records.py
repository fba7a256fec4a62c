"""Records: datasets, model versions and their lineage, as one caller may see them; model promotion."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aidc.errors import Conflict, InvalidInput
from aidc.security.roles import Access
from aidc.services.guard import Guard, not_found
from aidc.store.metadata import MetadataStore
from aidc.store.metadata.records import ModelVersion

if TYPE_CHECKING:
    from aidc.services.energy import EnergyService

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
    def __init__(self, store: MetadataStore, guard: Guard, energy: Callable[[], EnergyService] | None = None) -> None:
        """``energy``: what works out the kWh and gCO2e of the runs that made a model version (show_model)."""
        self.store, self.guard, self._energy = store, guard, energy

    # -- datasets
    def list_datasets(self, access: Access, name: str | None = None) -> list[JSON]:
        return self.store.list_dataset_versions_json(name, projects=self.guard.projects(access, "datasets:read"))

    # -- models
    def list_models(self, access: Access, name: str | None = None) -> list[JSON]:
        return self.store.list_model_versions_json(name, projects=self.guard.projects(access, "models:read"))

    def model_version(
        self,
        access: Access,
        ref: str,
        *,
        project: str | None = None,
        permission: str = "models:read",
        action: str = "models.read",
    ) -> tuple[ModelVersion, JSON]:
        """The model version ``ref`` names, once ``access`` may ``permission`` in its project: ``NAME`` is the newest
        version. A name is per project: without ``project`` it is looked for among the projects the caller may see,
        and must be in one of them only. Returns the version and its JSON (with its project)."""
        name, version = parse_model_ref(ref)
        missing = not_found("model version", ref) if version is not None else not_found("model", name)
        if project is None:
            held = sorted({m["project"] for m in self.list_models(access, name)})
            if not held:
                raise missing
            if len(held) > 1:
                raise Conflict(
                    f"model {name!r} is in more than one of your projects ({', '.join(held)})",
                    hint="name the project: --project P (HTTP: ?project=P)",
                )
            project = held[0]
        elif not access.allows("models:read", project):
            raise missing
        found = self.store.get_model_version(name, version, project=project)
        item = self.guard.visible(access, permission, "model_version", found.to_json(), action, f"model {ref}", missing)
        return found, item

    def show_model(self, access: Access, ref: str, *, project: str | None = None) -> JSON:
        """A model version with its lineage (a label per lineage node), the deployments the caller may see that
        serve it, and the energy and carbon of the runs that made it (see EnergyService.model_energy)."""
        from aidc.report.lineage import describe

        found, model = self.model_version(access, ref, project=project)
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
            "energy": self._energy().model_energy(found, lineage) if self._energy is not None else None,
        }

    def lineage(self, model: ModelVersion) -> list[Any]:
        return list(self.store.iter_all_lineage("model_version", str(model.id)))

    def promote_model(self, access: Access, ref: str, stage: str, *, project: str | None = None) -> list[JSON]:
        """Move ``NAME:VERSION`` to a stage; returns every version whose stage changed (production archives the
        previous one of the same name in the same project)."""
        name, version = parse_model_ref(ref)
        if version is None:
            raise InvalidInput(f"promote needs NAME:VERSION, got {ref!r}", hint="e.g. digits-cnn:3")
        _, model = self.model_version(
            access, ref, project=project, permission="models:promote", action="models.promote"
        )
        where = model["project"]
        before = {m.version: m for m in self.store.list_model_versions(name, projects=[where])}
        with self.guard.audited(access, "models.promote", f"model {ref}", project=where, stage=stage) as details:
            self.store.set_model_stage(name, version, stage, project=where)
            after = self.store.list_model_versions(name, projects=[where])
            changed = [m.to_json() for m in after if m.stage != before[m.version].stage or m.version == version]
            details["changed"] = [f"{m['name']}:{m['version']}→{m['stage']}" for m in changed]
        return changed
