"""Deployments: model versions served behind one URL — deploy, scale, promote, roll back, delete, predict — as one
caller may. A new deployment joins its model's project; changing one needs ``deployments:manage`` there."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aidc.errors import AidcError, Conflict
from aidc.security.roles import Access
from aidc.services.guard import Guard, not_found
from aidc.services.records import Records
from aidc.store.metadata import MetadataStore
from aidc.store.metadata.records import parse_labels

if TYPE_CHECKING:
    from aidc.serving.canary import CanaryPolicy
    from aidc.serving.deployments import Deployments

JSON = dict[str, Any]
CHANGES = ("scale", "promote", "rollback", "delete")
# what the server's alert rounds read from each managed deployment's router and keep (monitoring/alerts/signals.py)
HISTORY = ("aidc_deployment_requests_per_second", "aidc_deployment_latency_p99_seconds", "aidc_deployment_error_ratio")
HISTORY_S = 3600.0


class DeploymentService:
    def __init__(
        self, store: MetadataStore, records: Records, guard: Guard, serving: Callable[[], Deployments]
    ) -> None:
        """``serving``: the serving cluster's deployments, opened on first use (it may start Ray)."""
        self.store, self.records, self.guard = store, records, guard
        self._open_serving = serving
        self._serving: Deployments | None = None

    @property
    def serving(self) -> Deployments:
        if self._serving is None:
            self._serving = self._open_serving()
        return self._serving

    # -- reading
    def list(self, access: Access, *, include_stopped: bool = False) -> list[JSON]:
        rows = self.store.list_deployments(projects=self.guard.projects(access, "deployments:read"))
        return [
            self.serving.describe(d) | {"project": d.project} for d in rows if include_stopped or d.status != "stopped"
        ]

    def _project(self, access: Access, name: str, permission: str, action: str, project: str | None = None) -> str:
        """The project of the active deployment ``name``, once ``access`` may ``permission`` there. A name is per
        project: without ``project`` it is looked for among the projects the caller may see, and must be in one of
        them only."""
        hidden = not_found("deployment", name)
        if project is None:
            readable = self.guard.projects(access, "deployments:read")
            held = sorted(
                {d.project for d in self.store.list_deployments(name=name, projects=readable) if d.status != "stopped"}
            )
            if not held:
                raise hidden
            if len(held) > 1:
                raise Conflict(
                    f"deployment {name!r} is in more than one of your projects ({', '.join(held)})",
                    hint="name the project: --project P (HTTP: ?project=P)",
                )
            project = held[0]
        elif not access.allows("deployments:read", project):
            raise hidden
        found = self.store.find_deployment(name, project=project)
        item = self.guard.visible(
            access, permission, "deployment", found.to_json(), action, f"deployment {name}", hidden
        )
        return str(item["project"])

    def show(self, access: Access, name: str, *, project: str | None = None) -> JSON:
        """The deployment, its events (canary verdicts among them), and its traffic over the last hour as the
        server's alert rounds read it from the router: ``history`` {metric: {version: [[unix s, value], …]}}."""
        where = self._project(access, name, "deployments:read", "deployments.read", project)
        return self.serving.show(name, project=where) | {"project": where, "history": self.history(name, where)}

    def history(self, name: str, project: str, *, window_s: float = HISTORY_S) -> JSON:
        from aidc.monitoring.alerts.signals import NODE

        found: JSON = {metric: {} for metric in HISTORY}
        for s in self.store.query_samples(metric=HISTORY, node=NODE, since=time.time() - window_s, resolution=0):
            labels = parse_labels(s.labels)
            if labels.get("deployment") == name and labels.get("project") == project:
                found[s.metric].setdefault(labels.get("version", ""), []).append([s.at, s.value])
        return found

    def predict(
        self, access: Access, name: str, input_path: Path, *, version: str | None = None, project: str | None = None
    ) -> JSON:
        """Send the inputs in ``input_path`` (.npy, .npz or .json) to the deployment; every output comes back."""
        return predict_at(self.show(access, name, project=project), input_path, version)

    def generate(
        self,
        access: Access,
        name: str,
        prompt: str,
        *,
        parameters: JSON | None = None,
        version: str | None = None,
        project: str | None = None,
    ) -> JSON:
        """Text from a deployment of a language model: ``prompt`` in, its continuation out."""
        return generate_at(self.show(access, name, project=project), prompt, parameters, version)

    # -- changing
    def deploy(self, access: Access, ref: str, *, policy: CanaryPolicy | None = None, **options: Any) -> JSON:
        """Serve model ``NAME[:VERSION]`` the caller may see (or canary it into its deployment); options as
        serving's ``Deployments.deploy``. The deployment is in the model's project from the start."""
        try:
            version, model = self.records.model_version(
                access, ref, project=options.pop("project", None), action="deployments.deploy"
            )
        except AidcError as exc:  # a failed attempt at a change is audited too
            self.guard.record(access, "deployments.deploy", ref, result="failed", error=exc.code)
            raise
        project = model["project"]
        hidden = not_found("model version", f"{model['name']}:{model['version']}")
        self.guard.require(access, "deployments:manage", project, "deployments.deploy", f"model {ref}", hidden)
        if policy is not None:
            options["policy"] = policy
        plain = {k: v for k, v in options.items() if isinstance(v, (str, int, float, type(None)))}
        with self.guard.audited(access, "deployments.deploy", ref, project=project, **plain) as details:
            deployed = self.serving.deploy(version, project=project, **options)
            details.update(deployment=deployed["name"], url=deployed["url"])
        return dict(deployed) | {"project": project}

    def change(self, access: Access, verb: str, name: str, *args: Any, project: str | None = None) -> JSON:
        """``verb``: scale (args: replicas), promote, rollback or delete."""
        if verb not in CHANGES:
            raise ValueError(f"unknown deployment change {verb!r}")
        where = self._project(access, name, "deployments:manage", f"deployments.{verb}", project)
        details = {"replicas": args[0]} if verb == "scale" else {}
        with self.guard.audited(access, f"deployments.{verb}", name, project=where, **details):
            changed = self._apply(verb, name, where, *args)
        return dict(changed) | {"project": where}

    def _apply(self, verb: str, name: str, project: str, *args: Any) -> JSON:
        serving = self.serving
        if verb == "scale":
            return serving.scale(name, int(args[0]), project=project)
        if verb == "promote":
            return serving.promote(name, project=project)
        if verb == "rollback":
            return serving.rollback(name, project=project)
        return serving.delete(name, project=project)


def predict_at(deployment: JSON, input_path: Path, version: str | None) -> JSON:
    """Send the inputs in ``input_path`` (.npy, .npz or .json) to a deployment's URL; every output comes back."""
    from aidc.serving.deployments import load_inputs
    from aidc.serving.endpoint import EndpointClient

    with EndpointClient(deployment["url"]) as client:
        metadata = client.metadata(deployment["name"], version)
        if metadata.get("platform") == "pytorch_gpt":  # serving/generation_app.PLATFORM
            from aidc.errors import InvalidInput

            raise InvalidInput(
                f"deployment {deployment['name']!r} serves a language model: it takes a prompt, not an input file",
                hint=f'aidc predict {deployment["name"]} --text "def "',
            )
        inputs = load_inputs(input_path, metadata)
        answered, outputs = client.infer_all(deployment["name"], inputs, version=version)
    return {"deployment": deployment["name"], "model_version": answered, "outputs": outputs}


def generate_at(deployment: JSON, prompt: str, parameters: JSON | None, version: str | None) -> JSON:
    """Send ``prompt`` to a language-model deployment's URL (OIP v2 infer, a BYTES tensor); its text comes back."""
    import httpx

    from aidc.errors import BackendUnavailable, InvalidInput

    name, url = deployment["name"], deployment["url"]
    path = f"/v2/models/{name}" + (f"/versions/{version}" if version else "") + "/infer"
    body = {
        "inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1], "data": [prompt]}],
        "parameters": parameters or {},
    }
    try:
        answer = httpx.post(url + path, json=body, timeout=300.0)
    except httpx.HTTPError as exc:
        raise BackendUnavailable(
            f"deployment {name!r} at {url} did not answer: {exc}", hint=f"`aidc deployments show {name}`"
        ) from None
    try:
        data = answer.json()
    except ValueError:
        data = {}
    if answer.status_code != 200:
        error = data.get("error") if isinstance(data, dict) else None
        raise InvalidInput(
            f"deployment {name!r} answered {answer.status_code}: {error or answer.text[:300]}",
            hint="`aidc predict NAME --text` is for language models (register_lm); others take --input FILE",
        )
    outputs = {o.get("name"): o for o in data.get("outputs", [])}
    if "text_output" not in outputs:
        raise InvalidInput(f"deployment {name!r} is not a language model: its answer has no text_output")
    return {
        "deployment": name,
        "model_version": data.get("model_version"),
        "prompt": prompt,
        "text": outputs["text_output"]["data"][0],
    }
