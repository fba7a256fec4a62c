"""A deployment's controller: a detached Ray actor that keeps replicas, routes and the canary as the metadata record says.

The record is the desired state (stable version × replicas, canary version × its share, resources); the
CLI only ever changes the record and then asks the controller to settle. Every tick the controller starts
missing replica actors, asks each for its server's state, tells the router which replicas of which version
take what share of traffic, retires replicas nobody needs once no traffic goes to them, judges the canary
and writes what it saw back to the store. Because the record holds the desired state, a controller Ray
restarts picks up where the old one stopped, and replicas (detached actors of their own) keep serving
meanwhile.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aidc.errors import AidcError
from aidc.serving.canary import CanaryPolicy, VersionStats, canary_replicas, judge, promote, roll_back
from aidc.serving.endpoint import EndpointProcess, stop_endpoint
from aidc.serving.replicas import Replica, ReplicaSpec, replica_kind
from aidc.serving.router import RouterClient, start_router

log = logging.getLogger("aidc.serving.controller")

TICK_S = 0.5
DRAIN_GRACE_S = 1.0  # a replica out of the routes keeps running this long for requests already sent to it
ROUTES_REFRESH_S = 5.0  # routes are pushed at least this often, in case the router restarted
PLACEMENT_PATIENCE_S = 10.0  # after this, a replica not yet created says it is waiting for resources
RETRY_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)

Key = tuple[int, int]  # (model version id, slot)


@dataclass(frozen=True)
class ControllerConfig:
    deployment_id: int
    metadata_url: str
    artifacts: Any  # the ArtifactStore (it pickles) replicas fetch ONNX files from
    workdir: str
    namespace: str
    host: str = "127.0.0.1"
    client_token_sha256: str = ""  # clients of the deployment must send the token with this hash (router.py)


def controller_name(deployment_id: int) -> str:
    return f"deployment-{deployment_id}"


def replica_name(deployment_id: int, key: Key) -> str:
    return f"deployment-{deployment_id}-replica-{key[0]}-{key[1]}"


@dataclass
class ReplicaState:
    handle: Any
    created: float
    info: dict[str, Any] | None = None
    pending: Any = None  # an info() call not answered yet
    stopping: Any = None  # the stop() call of a retiring replica
    stop_sent: float = 0.0
    ray_node: str | None = None  # the Ray node it last answered from


class DeploymentController:
    """The body of the controller actor; see the module docstring."""

    def __init__(self, config: ControllerConfig) -> None:
        from aidc.store.metadata import open_metadata_store

        self.config = config
        self.id = config.deployment_id
        self.store = open_metadata_store(config.metadata_url)
        self.token = secrets.token_urlsafe(24)
        self.replicas: dict[Key, ReplicaState] = {}
        self.failures: dict[Key, tuple[int, float, str]] = {}  # attempts, next try, last error
        self.router: EndpointProcess | None = None
        self.router_client: RouterClient | None = None
        self.routes: list[dict[str, Any]] | None = None
        self.routes_at = 0.0
        self.unrouted_since: dict[Key, float] = {}
        self.recorded: dict[Key, tuple[Any, ...]] = {}
        self.summary: dict[str, Any] = {"settled": False, "problems": ["starting"]}
        self._versions: dict[int, Any] = {}
        self._ticks = 0
        self._tick_done = threading.Condition()
        self._poke = threading.Event()
        self._stop = threading.Event()
        self._error: AidcError | None = None
        self._adopt()
        # The router is started (and restarted) by the loop thread: a child dies with the thread that forked it.
        started = threading.Event()
        self._loop_thread = threading.Thread(target=self._loop, args=(started,), name="controller", daemon=True)
        self._loop_thread.start()
        started.wait()
        if self._error is not None:
            raise self._error

    # ------------------------------------------------------------------------------------- actor API

    def settle(self, timeout: float = 120.0) -> dict[str, Any]:
        """Tick until the replicas and routes match the record, or ``timeout``; returns the last summary."""
        deadline = time.monotonic() + timeout
        while True:
            with self._tick_done:
                target = self._ticks + 2  # a whole tick that started after this call
                self._poke.set()
                while self._ticks < target and not self._stop.is_set():
                    self._tick_done.wait(1.0)
            if self.summary["settled"] or time.monotonic() > deadline or self._stop.is_set():
                return self.summary

    def shutdown(self) -> None:
        """Take the deployment down: traffic off, replicas drained and stopped, router stopped."""
        import ray

        self._stop.set()
        self._poke.set()
        self._loop_thread.join(timeout=30)
        if self.router_client is not None:
            try:
                self.router_client.set_routes([])
            except Exception:  # noqa: BLE001 - the router may already be gone
                pass
        stops = [s.handle.stop.remote() for s in self.replicas.values()]
        ray.wait(stops, num_returns=len(stops), timeout=30)
        for key, state in list(self.replicas.items()):
            ray.kill(state.handle, no_restart=True)
            self.store.remove_replica(self.id, *key)
        self.replicas.clear()
        if self.router is not None:
            stop_endpoint(self.router.pid)

    # ------------------------------------------------------------------------------------- the loop

    def _loop(self, started: threading.Event) -> None:
        try:
            d = self.store.get_deployment(self.id)
            if d.status != "stopped":
                self._create_missing(d)  # replicas start while the router does
            self._ensure_router()
        except AidcError as exc:
            self._error = exc
        started.set()
        if self._error is not None:
            return
        while not self._stop.is_set():
            try:
                self.summary = self._tick()
            except Exception as exc:  # noqa: BLE001 - a bad tick must not end supervision
                log.exception("deployment %d: tick failed", self.id)
                self.summary = {"settled": False, "problems": [f"controller error: {exc}"]}
            with self._tick_done:
                self._ticks += 1
                self._tick_done.notify_all()
            self._poke.wait(TICK_S)
            self._poke.clear()

    def _tick(self) -> dict[str, Any]:
        d = self.store.get_deployment(self.id)
        if d.status == "stopped":
            return {"settled": True, "problems": []}
        self._ensure_router()
        desired = self._create_missing(d)
        self._poll()
        self._route(d, desired)
        self._retire(desired)
        self._record(desired)
        problems = self._problems(desired)
        settled = not problems and set(self.replicas) == desired and self._routed_keys() == desired
        if settled and d.status == "starting":
            self.store.update_deployment(self.id, status="running")
        if d.canary_model_version_id is not None and settled:
            self._judge(d)
        return {"settled": settled, "problems": problems}

    # ------------------------------------------------------------------------------------- router

    def _ensure_router(self) -> None:
        if self.router is not None and self.router.alive():
            return
        d = self.store.get_deployment(self.id)
        port = int(d.url.rsplit(":", 1)[1]) if d.url.count(":") == 2 else 0  # keep the URL users know
        log_path = Path(self.config.workdir) / "logs" / "router.log"
        try:
            self.router = start_router(
                d.name,
                self.token,
                host=self.config.host,
                port=port,
                log_path=log_path,
                die_with_parent=True,
                client_token_sha256=self.config.client_token_sha256,
            )
        except AidcError:
            if not port:
                raise
            self.router = start_router(
                d.name,
                self.token,
                host=self.config.host,
                port=0,
                log_path=log_path,
                die_with_parent=True,
                client_token_sha256=self.config.client_token_sha256,
            )
        self.router_client = RouterClient(self.router.url, self.token)
        self.routes = None
        self.store.update_deployment(self.id, url=self.router.url, pid=self.router.pid)

    # ------------------------------------------------------------------------------------- replicas

    def _version(self, model_version_id: int) -> Any:
        if model_version_id not in self._versions:
            self._versions[model_version_id] = self.store.get_model_version_by_id(model_version_id)
        return self._versions[model_version_id]

    def _adopt(self) -> None:
        """Take over the replicas a previous incarnation of this controller started (they outlive it)."""
        import ray

        for row in self.store.list_replicas(self.id):
            key = (row.model_version_id, row.slot)
            try:
                handle = ray.get_actor(replica_name(self.id, key), namespace=self.config.namespace)
                self.replicas[key] = ReplicaState(handle, time.monotonic())
            except ValueError:
                self.store.remove_replica(self.id, *key)

    def _create_missing(self, d: Any) -> set[Key]:
        """Start a replica actor for every wanted (version, slot) that has none; returns the wanted set."""
        desired = {(d.model_version_id, slot) for slot in range(d.replicas)}
        desired |= {
            (d.canary_model_version_id, slot)
            for slot in range(canary_replicas(d))
            if d.canary_model_version_id is not None
        }
        for key in sorted(desired - set(self.replicas)):
            self._create(d, key)
        return desired

    def _create(self, d: Any, key: Key) -> None:
        import ray

        attempts, next_try, _ = self.failures.get(key, (0, 0.0, ""))
        if time.monotonic() < next_try:
            return
        version = self._version(key[0])
        kind = replica_kind(version)
        if kind == "onnx" and not version.onnx_digest:
            self.failures[key] = (attempts + 1, float("inf"), f"{version.ref} has no ONNX file")
            return
        cpus = float(d.resources.get("cpus", 0.5))
        spec = ReplicaSpec(
            deployment=d.name,
            version=str(version.version),
            onnx_digest=version.onnx_digest or "",
            workdir=self.config.workdir,
            log_name=f"replica-v{version.version}-{key[1]}.log",
            cpus=cpus,
            host=self.config.host,
            kind=kind,
            bundle_digest=(version.checkpoint_digest or "") if kind == "generation" else "",
        )
        handle = (
            ray.remote(Replica)
            .options(
                # The namespace is explicit: a controller on a pipeline run's own Ray runs in an anonymous one.
                name=replica_name(self.id, key),
                namespace=self.config.namespace,
                lifetime="detached",
                num_cpus=cpus,
                num_gpus=float(d.resources.get("gpus", 0)),
                max_restarts=-1,
                scheduling_strategy="SPREAD",
                # a node an operator cordoned or drained (`aidc nodes cordon`) takes no new replica
                label_selector=self._off_held_nodes(),
            )
            .remote(spec, self.config.artifacts)
        )
        self.replicas[key] = ReplicaState(handle, time.monotonic())

    def _off_held_nodes(self) -> dict[str, str] | None:
        from aidc.cluster.inventory import held_ray_node_ids, ray_nodes

        held = [(s.node, s.host) for s in self.store.node_states() if s.cordoned]
        ids = held_ray_node_ids(ray_nodes(), held) if held else []
        return {"ray.io/node-id": f"!in({','.join(ids)})"} if ids else None

    def _forget(self, key: Key, error: str | None = None) -> None:
        import ray

        state = self.replicas.pop(key)
        ray.kill(state.handle, no_restart=True)
        self.unrouted_since.pop(key, None)
        if error is not None:
            attempts = self.failures.get(key, (0, 0.0, ""))[0] + 1
            delay = RETRY_BACKOFF_S[min(attempts, len(RETRY_BACKOFF_S)) - 1]
            self.failures[key] = (attempts, time.monotonic() + delay, error)

    def _poll(self) -> None:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        for state in self.replicas.values():
            if state.pending is None:
                state.pending = state.handle.info.remote()
        pending = [s.pending for s in self.replicas.values()]
        ray.wait(pending, num_returns=len(pending), timeout=1.0)
        for key, state in list(self.replicas.items()):
            try:
                state.info = ray.get(state.pending, timeout=0)
                state.pending = None
                self.failures.pop(key, None)
                self._moved(key, state)
            except GetTimeoutError:
                continue  # still being placed or started
            except RayActorError as exc:
                state.pending, state.info = None, None
                if exc.actor_init_failed:  # the model could not be fetched or served: retry later
                    self._forget(key, error=str(exc).strip().splitlines()[-1])
                    continue
                try:
                    ray.get_actor(
                        replica_name(self.id, key), namespace=self.config.namespace
                    )  # restarting: Ray brings it back
                except ValueError:
                    self._forget(key, error="replica actor died")

    def _moved(self, key: Key, state: ReplicaState) -> None:
        """A replica answering from another Ray node than before was recreated there (Ray restarts a replica whose
        node died on a node that is alive): an event says so, naming the lost node."""
        now = (state.info or {}).get("ray_node")
        before, state.ray_node = state.ray_node, now or state.ray_node
        if before is None or now is None or now == before:
            return
        from aidc.cluster.inventory import ray_nodes

        lost = not any(n.alive for n in ray_nodes() if n.ray_node_id == before)
        why = "its node was lost" if lost else "it was restarted"
        version = self._version(key[0]).ref
        self.store.add_deployment_event(
            self.id,
            "replica_moved",
            f"{version} replica {key[1]}: {why} (Ray node {before[:12]}); recreated on Ray node {now[:12]}",
            {"slot": key[1], "from": before, "to": now, "node_lost": lost},
        )

    def _ready_urls(self, model_version_id: int | None, keys: set[Key] | None = None) -> list[str]:
        return [
            s.info["url"]
            for k, s in sorted(self.replicas.items())
            if k[0] == model_version_id
            and (keys is None or k in keys)
            and s.stopping is None
            and s.info
            and s.info["ready"]
        ]

    def _route(self, d: Any, desired: set[Key]) -> None:
        """Push the routes: the stable version (or, until it is all there, the one it replaces) and the canary."""
        primary = (d.model_version_id, self._ready_urls(d.model_version_id, desired))
        if len(primary[1]) < d.replicas:  # a promotion or rollback in progress: the old version keeps serving
            replaced = {k[0] for k in self.replicas} - {d.model_version_id, d.canary_model_version_id}
            old = max(((v, self._ready_urls(v)) for v in replaced), key=lambda p: len(p[1]), default=None)
            if old is not None and old[1]:
                primary = old
        share = d.canary_percent if d.canary_model_version_id is not None else 0.0
        canary = self._ready_urls(d.canary_model_version_id, desired) if share else []
        routes = []
        if primary[1]:
            routes.append(
                {"version": str(self._version(primary[0]).version), "weight": 100.0 - share, "replicas": primary[1]}
            )
        if canary:
            routes.append(
                {"version": str(self._version(d.canary_model_version_id).version), "weight": share, "replicas": canary}
            )
        if routes != self.routes or time.monotonic() - self.routes_at > ROUTES_REFRESH_S:
            assert self.router_client is not None
            self.router_client.set_routes(routes)
            self.routes, self.routes_at = routes, time.monotonic()

    def _routed_keys(self) -> set[Key]:
        urls = {u for r in self.routes or [] for u in r["replicas"]}
        return {k for k, s in self.replicas.items() if s.info and s.info["url"] in urls}

    def _retire(self, desired: set[Key]) -> None:
        """Stop replicas nobody wants once the router has stopped sending them requests for a grace period."""
        import ray

        routed = self._routed_keys()
        now = time.monotonic()
        for key, state in list(self.replicas.items()):
            if key in desired or key in routed:
                self.unrouted_since.pop(key, None)
                continue
            since = self.unrouted_since.setdefault(key, now)
            if state.stopping is None and now - since >= DRAIN_GRACE_S:
                state.stopping, state.stop_sent = state.handle.stop.remote(), now
            elif state.stopping is not None:
                done, _ = ray.wait([state.stopping], timeout=0)
                if done or now - state.stop_sent > 30:
                    self._forget(key)
                    self.store.remove_replica(self.id, *key)
                    self.recorded.pop(key, None)

    def _record(self, desired: set[Key]) -> None:
        """Write each replica's state to the store when it changed; a restart is also an event."""
        for key in sorted(desired | set(self.replicas)):
            state = self.replicas.get(key)
            info = state.info if state else None
            failure = self.failures.get(key)
            if state is not None and state.stopping is not None:
                status = "stopping"
            elif info and info["ready"]:
                status = "ready"
            elif failure is not None:
                status = "failed"
            else:
                status = "unhealthy" if info and info["url"] else "starting"
            message = (info or {}).get("message") or (failure[2] if failure else None)
            if status == "starting" and state and time.monotonic() - state.created > PLACEMENT_PATIENCE_S:
                message = "waiting for Ray to place it (are the requested CPUs/GPUs free?)"
            row = (
                status,
                (info or {}).get("url"),
                (info or {}).get("pid"),
                (info or {}).get("node"),
                (info or {}).get("restarts", 0),
                message,
            )
            before = self.recorded.get(key)
            if row == before:
                continue
            self.store.record_replica(
                self.id,
                key[0],
                key[1],
                status=row[0],
                url=row[1],
                pid=row[2],
                node=row[3],
                restarts=row[4],
                message=row[5],
            )
            if before is not None and row[4] > before[4]:
                version = self._version(key[0]).ref
                self.store.add_deployment_event(
                    self.id, "replica_restarted", f"{version} replica {key[1]}: {message}", {"slot": key[1]}
                )
            self.recorded[key] = row

    def _problems(self, desired: set[Key]) -> list[str]:
        problems = []
        for key in sorted(desired):
            ref = f"{self._version(key[0]).ref} replica {key[1]}"
            if key in self.failures:
                problems.append(f"{ref}: {self.failures[key][2]}")
            elif key not in self.replicas or not (self.replicas[key].info or {}).get("ready"):
                recorded = self.recorded.get(key)
                problems.append(f"{ref}: {(recorded and recorded[5]) or 'starting'}")
        return problems

    # ------------------------------------------------------------------------------------- canary

    def _judge(self, d: Any) -> None:
        assert self.router_client is not None
        stats = self.router_client.stats()
        stable = VersionStats.from_dict(stats.get(str(self._version(d.model_version_id).version)))
        canary = VersionStats.from_dict(stats.get(str(self._version(d.canary_model_version_id).version)))
        verdict = judge(CanaryPolicy.from_dict(d.canary_policy), stable, canary)
        details = {
            "stable": stats.get(str(self._version(d.model_version_id).version)),
            "canary": stats.get(str(self._version(d.canary_model_version_id).version)),
        }
        if verdict.action == "rollback":
            log.warning("deployment %s: rolling back the canary: %s", d.name, verdict.reason)
            roll_back(self.store, d, f"automatically: {verdict.reason}", details)
        elif verdict.action == "promote":
            promote(self.store, d, f"automatically: {verdict.reason}", details)
        if verdict.action != "wait":
            self._poke.set()  # move the traffic now, not a tick later
