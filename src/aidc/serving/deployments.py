"""Deployments as users manage them: deploy a model version, list, show, scale, canary, promote, roll back, delete, predict.

Every change is written to the metadata store first (the record is the desired state, with an event saying
who changed what), then the deployment's controller actor is asked to settle: to make replicas and routes
match. Reads (list, show, predict) need no Ray at all: the store and the deployment's URL answer them.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aidc.errors import AidcError, BackendUnavailable, Conflict, InvalidInput, NotFound, PermissionDenied
from aidc.serving.canary import CanaryPolicy, promote, roll_back, start_canary

if TYPE_CHECKING:
    from aidc.settings import Settings
    from aidc.store.artifacts import ArtifactStore
    from aidc.store.metadata import MetadataStore
    from aidc.store.metadata.records import Deployment, ModelVersion

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
SETTLE_TIMEOUT_S = 180.0


class Deployments:
    """The deployment verbs on one platform's stores and serving cluster."""

    def __init__(
        self, store: MetadataStore, artifacts: ArtifactStore, settings: Settings, *, on_this_ray: bool = False
    ) -> None:
        """``on_this_ray``: deploy on the Ray this process already drives (its deployments end with it)."""
        from aidc.serving.cluster import ServingCluster

        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        self.cluster = ServingCluster(
            settings.home, address=settings.ray_address, num_cpus=settings.ray_num_cpus, joined=on_this_ray
        )
        # One namespace per metadata store: two AIDC_HOMEs sharing a cluster never see each other's actors.
        self.namespace = "aidc-" + hashlib.sha1(settings.metadata_url.encode()).hexdigest()[:10]

    # ------------------------------------------------------------------------------------- changes

    def deploy(
        self,
        version: ModelVersion,
        *,
        name: str | None = None,
        replicas: int = 1,
        canary: float | None = None,
        cpus: float = 0.5,
        gpus: float = 0.0,
        host: str = "127.0.0.1",
        policy: CanaryPolicy | None = None,
        timeout: float = SETTLE_TIMEOUT_S,
        project: str | None = None,
        auth: bool = False,
    ) -> dict[str, Any]:
        """Serve ``version`` as deployment ``name`` (default: the model's name), or canary it into that deployment;
        a new deployment belongs to ``project`` (default: the model's) from the start. With ``auth`` its clients
        must send the bearer token returned (once) as ``token``; only its SHA-256 is kept."""
        name = name or version.name
        check_host(host, self.settings.allow_public_serving)
        if not NAME.match(name):
            raise InvalidInput(f"deployment name {name!r} must be 1-63 letters, digits, '.', '_' or '-'")
        from aidc.serving.replicas import replica_kind

        if replica_kind(version) == "generation":  # a language model: its bundle is served by generation replicas
            if not self.artifacts.exists(str(version.checkpoint_digest)):
                raise NotFound(
                    f"language model {version.ref}'s bundle {version.checkpoint_digest} is not in the artifact store",
                    hint="register it again with a register_lm stage",
                )
        elif not version.onnx_digest or not self.artifacts.exists(version.onnx_digest):
            raise NotFound(
                f"model version {version.ref} has no ONNX file in the artifact store",
                hint="register versions through a pipeline with an export stage (a language model: register_lm)",
            )
        project = project or version.project  # a new deployment is in its model's project, and a name is per project
        existing = self._active(name, project)
        if existing is not None:
            if canary is None:
                current = self.store.get_model_version_by_id(existing.model_version_id).ref
                raise Conflict(
                    f"deployment {name!r} already serves {current}",
                    hint=f"roll {version.ref} out with --canary PCT, or delete the deployment first",
                )
            self._managed(existing)
            stable = self.store.get_model_version_by_id(existing.model_version_id)
            if stable.name != version.name:
                raise InvalidInput(
                    f"deployment {name!r} serves model {stable.name!r}; its canary must be a version "
                    f"of the same model, not {version.ref}"
                )
            start_canary(self.store, existing, version, canary, policy or CanaryPolicy())
            return self._settle(existing.id, timeout)
        if canary is not None:
            raise InvalidInput(
                f"there is no deployment {name!r} for a canary to be compared with",
                hint=f"deploy a stable version first: `aidc deploy {version.ref}`",
            )
        if replicas < 1 or cpus <= 0 or gpus < 0:
            raise InvalidInput("a deployment needs --replicas ≥ 1, --cpus > 0 and --gpus ≥ 0")
        resources: dict[str, Any] = {"cpus": cpus, "gpus": gpus, "host": host}
        client_token = secrets.token_urlsafe(32) if auth else None
        if client_token:
            resources["token_sha256"] = hashlib.sha256(client_token.encode()).hexdigest()
        with self.store.transaction():
            d = self.store.add_deployment(
                name,
                version.id,
                "",
                None,
                "starting",
                replicas=replicas,
                resources=resources,
                project=project,
            )
            d = self.store.update_deployment(d.id, controller=f"{self.namespace}/{_controller_name(d.id)}")
            self.store.add_deployment_event(
                d.id,
                "created",
                f"{version.ref} on {replicas} replica(s)",
                {"replicas": replicas, "cpus": cpus, "gpus": gpus},
            )
        try:
            described = self._settle(d.id, timeout)
            return described | {"token": client_token} if client_token else described
        except AidcError as exc:
            self._take_down(d, "failed", f"deploy failed: {exc.message}")
            raise

    def scale(
        self, name: str, replicas: int, *, timeout: float = SETTLE_TIMEOUT_S, project: str | None = None
    ) -> dict[str, Any]:
        if replicas < 1:
            raise InvalidInput("a deployment needs at least one replica", hint=f"`aidc deployments delete {name}`")
        d = self._managed(self.store.find_deployment(name, project=project))
        with self.store.transaction():
            self.store.update_deployment(d.id, replicas=replicas)
            self.store.add_deployment_event(
                d.id, "scaled", f"{d.replicas} → {replicas} replica(s)", {"from": d.replicas, "to": replicas}
            )
        return self._settle(d.id, timeout)

    def promote(self, name: str, *, timeout: float = SETTLE_TIMEOUT_S, project: str | None = None) -> dict[str, Any]:
        d = self._managed(self.store.find_deployment(name, project=project))
        promote(self.store, d, "by hand")
        return self._settle(d.id, timeout)

    def rollback(self, name: str, *, timeout: float = SETTLE_TIMEOUT_S, project: str | None = None) -> dict[str, Any]:
        d = self._managed(self.store.find_deployment(name, project=project))
        roll_back(self.store, d, "by hand")
        return self._settle(d.id, timeout)

    def restart(self, name: str, *, timeout: float = SETTLE_TIMEOUT_S, project: str | None = None) -> dict[str, Any]:
        """Bring a deployment whose URL no longer answers (its serving Ray restarted, its actors killed) back up as
        its record describes: the controller is made again and settles the replicas."""
        d = self._managed(self.store.find_deployment(name, project=project))
        self.store.add_deployment_event(d.id, "restarted", "its URL did not answer")
        return self._settle(d.id, timeout)

    def delete(self, name: str, *, project: str | None = None) -> dict[str, Any]:
        d = self.store.find_deployment(name, project=project)
        self._take_down(d, "stopped", "deleted")
        return self.describe(self.store.get_deployment(d.id))

    # ------------------------------------------------------------------------------------- reads

    def list(self, *, include_stopped: bool = False, project: str | None = None) -> list[dict[str, Any]]:
        rows = self.store.list_deployments(projects=None if project is None else [project])
        return [self.describe(d) for d in rows if include_stopped or d.status != "stopped"]

    def show(self, name: str, *, project: str | None = None) -> dict[str, Any]:
        d = self.store.find_deployment(name, project=project)
        details = self.describe(d, probe_traffic=True)
        if details["live"]:  # where each version runs (CUDA or CPU), as its replicas' ONNX Runtime reports it
            details["providers"] = {
                ref: _get_json(f"{d.url}/v2/models/{d.name}/versions/{ref.rpartition(':')[2]}")
                .get("parameters", {})
                .get("execution_providers")
                for ref in (details["stable"], details["canary"])
                if ref
            }
        details["events"] = [e.to_json() for e in self.store.deployment_events(d.id)]
        return details

    def describe(self, d: Deployment, *, probe_traffic: bool = False) -> dict[str, Any]:
        """A deployment as the CLI shows it: its versions, replicas and whether its URL answers."""

        def ref(mv_id: int | None) -> str | None:
            return self.store.get_model_version_by_id(mv_id).ref if mv_id else None

        from aidc.serving.replicas import replica_kind

        replicas = self.store.list_replicas(d.id)
        out: dict[str, Any] = {
            "name": d.name,
            "id": d.id,
            "url": d.url,
            "status": d.status,
            "kind": replica_kind(self.store.get_model_version_by_id(d.model_version_id)),
            "stable": ref(d.model_version_id),
            "canary": ref(d.canary_model_version_id),
            "canary_percent": d.canary_percent,
            "previous": ref(d.previous_model_version_id),
            "replicas": d.replicas,
            "ready": sum(r.status == "ready" for r in replicas if r.model_version_id == d.model_version_id),
            "resources": {k: v for k, v in d.resources.items() if k != "token_sha256"},
            "auth": "bearer" if d.resources.get("token_sha256") else "none",
            "managed": d.controller is not None,
            "created_at": d.created_at.isoformat(),
            "updated_at": d.updated_at.isoformat() if d.updated_at else None,
            "replica_list": [
                {
                    "version": ref(r.model_version_id),
                    "slot": r.slot,
                    "status": r.status,
                    "url": r.url,
                    "pid": r.pid,
                    "node": r.node,
                    "restarts": r.restarts,
                    "message": r.message,
                }
                for r in replicas
            ],
        }
        out["live"] = d.status != "stopped" and _answers(d.url)
        if probe_traffic and out["live"] and d.controller is not None:
            out["traffic"] = _get_json(f"{d.url}/-/stats").get("versions", {})
        return out

    def predict(
        self, name: str, input_path: Path, *, version: str | None = None, project: str | None = None
    ) -> dict[str, Any]:
        """Send the inputs in ``input_path`` (.npy, .npz or .json) to the deployment; every output comes back."""
        from aidc.serving.endpoint import EndpointClient

        d = self.store.find_deployment(name, project=project)
        with EndpointClient(d.url) as client:
            metadata = client.metadata(d.name, version)
            inputs = load_inputs(input_path, metadata)
            answered, outputs = client.infer_all(d.name, inputs, version=version)
        return {"deployment": d.name, "model_version": answered, "outputs": outputs}

    # ------------------------------------------------------------------------------------- internals

    def _active(self, name: str, project: str | None) -> Deployment | None:
        try:
            return self.store.find_deployment(name, project=project)
        except NotFound:
            return None

    @staticmethod
    def _managed(d: Deployment) -> Deployment:
        if d.controller is None:
            raise Conflict(
                f"deployment {d.name!r} is a single endpoint a pipeline run started; it has no replicas "
                "to scale or canary",
                hint="deploy the model with `aidc deploy` to manage it",
            )
        return d

    def _controller(self, d: Deployment, *, create: bool) -> Any:
        """The deployment's controller actor (connected already); recreated from the record if it is gone."""
        import ray

        from aidc.serving.controller import ControllerConfig, DeploymentController

        try:
            return ray.get_actor(_controller_name(d.id), namespace=self.namespace)
        except ValueError:
            if not create:
                return None
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        config = ControllerConfig(
            deployment_id=d.id,
            metadata_url=self.settings.metadata_url,
            artifacts=self.artifacts,
            workdir=str(self.settings.home / "serving" / f"{d.name}-{d.id}"),
            namespace=self.namespace,
            host=str(d.resources.get("host", "127.0.0.1")),
            client_token_sha256=str(d.resources.get("token_sha256", "")),
        )
        # On this node: the router binds here, so the URL printed to the user is reachable from here.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        return (
            ray.remote(DeploymentController)
            .options(
                name=_controller_name(d.id),
                namespace=self.namespace,
                lifetime="detached",
                num_cpus=0,
                max_restarts=-1,
                max_concurrency=4,
                scheduling_strategy=here,
            )
            .remote(config)
        )

    def _on_ray(self, verb: str, deployment_id: int, timeout: float) -> dict[str, Any]:
        """``_<verb>_on_ray`` here, or — when this process already drives another Ray cluster (the server's job
        cluster, from its first job on) — in a child process that can drive the serving cluster (driver.py)."""
        from aidc.serving.driver import drives_another_ray, run_elsewhere

        if not self.cluster.joined and drives_another_ray():
            return run_elsewhere(self.settings, verb, deployment_id, timeout)
        return dict(getattr(self, f"_{verb}_on_ray")(deployment_id, timeout))

    def _settle_on_ray(self, deployment_id: int, timeout: float) -> dict[str, Any]:
        import ray
        from ray.exceptions import RayActorError

        d = self.store.get_deployment(deployment_id)
        with self.cluster.connect(self.namespace):
            controller = self._controller(d, create=True)
            try:
                return dict(ray.get(controller.settle.remote(timeout), timeout=timeout + 60))
            except RayActorError as exc:
                raise BackendUnavailable(
                    f"the controller of deployment {d.name!r} failed: {str(exc).strip().splitlines()[-1]}",
                    hint=f"see the logs under {self.settings.home / 'serving'}",
                ) from None

    def _stop_on_ray(self, deployment_id: int, timeout: float) -> dict[str, Any]:
        with self.cluster.connect(self.namespace, start=False):
            self._stop_actors(self.store.get_deployment(deployment_id))
        return {}

    def _settle(self, deployment_id: int, timeout: float) -> dict[str, Any]:
        d = self.store.get_deployment(deployment_id)
        summary = self._on_ray("settle", deployment_id, timeout)
        if not summary.get("settled"):
            problems = "; ".join(summary.get("problems") or ["unknown"])
            raise BackendUnavailable(
                f"deployment {d.name!r} did not settle within {timeout:g}s: {problems}",
                hint=f"`aidc deployments show {d.name}` tells what each replica is doing",
            )
        return self.describe(self.store.get_deployment(deployment_id))

    def _take_down(self, d: Deployment, status: str, reason: str) -> None:
        from aidc.serving.endpoint import stop_endpoint

        if d.controller is None:
            if d.pid is not None:
                stop_endpoint(d.pid)
        else:
            try:
                self._on_ray("stop", d.id, 0.0)
            except BackendUnavailable:
                pass  # the cluster is gone, and its actors with it
        with self.store.transaction():
            for replica in self.store.list_replicas(d.id):
                self.store.remove_replica(d.id, replica.model_version_id, replica.slot)
            self.store.update_deployment(d.id, status=status)
            self.store.add_deployment_event(d.id, status, reason)
        if (
            self.cluster.owned
            and not self.cluster.kept
            and not any(x.controller for x in self.store.list_deployments() if x.status not in ("stopped", "failed"))
        ):
            self.cluster.stop()  # nothing left to serve: leave no Ray processes behind

    def _stop_actors(self, d: Deployment) -> None:
        """The controller drains and stops its replicas; whatever it could not (or a missing one left) is killed."""
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        from aidc.serving.controller import replica_name

        controller = self._controller(d, create=False)
        if controller is not None:
            try:
                ray.get(controller.shutdown.remote(), timeout=90)
            except (GetTimeoutError, RayActorError):
                pass
            ray.kill(controller, no_restart=True)
        for replica in self.store.list_replicas(d.id):
            try:
                key = (replica.model_version_id, replica.slot)
                ray.kill(ray.get_actor(replica_name(d.id, key), namespace=self.namespace), no_restart=True)
            except ValueError:
                pass


def check_host(host: str, allowed: bool) -> None:
    """A deployment listens on this host only (loopback) unless the operator has allowed all interfaces."""
    if host not in ("127.0.0.1", "localhost", "::1") and not allowed:
        raise PermissionDenied(
            f"a deployment may not listen on {host!r}: only on this host (127.0.0.1)",
            hint="an operator allows others with AIDC_ALLOW_PUBLIC_SERVING=true; put a TLS proxy in front of it "
            "and deploy with a client token",
        )


def _controller_name(deployment_id: int) -> str:
    from aidc.serving.controller import controller_name

    return controller_name(deployment_id)


_probe: Any = None  # one HTTP client for every probe: a client of its own per call loads the CA bundle (~10 ms CPU)
_probe_made = threading.Lock()


def _prober() -> Any:
    global _probe
    import httpx

    with _probe_made:
        if _probe is None:
            # (a connection per probe, as before: none kept open to a router that may restart on its port)
            _probe = httpx.Client(timeout=2.0, headers={"Connection": "close"})
        return _probe


def _answers(url: str) -> bool:
    import httpx

    try:
        return bool(_prober().get(f"{url}/v2/health/ready", timeout=1.0).status_code == 200)
    except (httpx.HTTPError, ValueError):
        return False


def _get_json(url: str) -> dict[str, Any]:
    import httpx

    try:
        return dict(_prober().get(url, timeout=2.0).json())
    except (httpx.HTTPError, ValueError):
        return {}


def load_inputs(path: Path, metadata: dict[str, Any]) -> dict[str, np.ndarray]:
    """Model inputs from a file: .npy (the first input), .npz (by name) or .json.

    JSON may be an OIP v2 request body (``{"inputs": [...]}``), an object of input name → nested list, or a
    bare nested list for the first input; lists take the datatype the model declares.
    """
    from aidc.serving.protocol import OIP_TO_NUMPY, decode_tensor

    specs = {i["name"]: i for i in metadata["inputs"]}
    first = metadata["inputs"][0]["name"]
    if not path.is_file():
        raise NotFound(f"no such input file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arrays = {first: np.load(path, allow_pickle=False)}
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        elif suffix == ".json":
            data = json.loads(path.read_text())
            if isinstance(data, dict) and isinstance(data.get("inputs"), list):
                arrays = {t["name"]: decode_tensor(t, None, f"input {t.get('name')!r}") for t in data["inputs"]}
            else:
                data = data if isinstance(data, dict) else {first: data}
                arrays = {
                    k: np.asarray(v, dtype=OIP_TO_NUMPY[specs[k]["datatype"]] if k in specs else None)
                    for k, v in data.items()
                }
        else:
            raise InvalidInput(f"{path}: input files are .npy, .npz or .json, not {suffix or 'no suffix'}")
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise InvalidInput(f"{path}: cannot read inputs: {exc}") from None
    return arrays
