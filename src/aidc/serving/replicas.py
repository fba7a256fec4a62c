"""A replica: one inference server process on a Ray node, fetched, started and kept running by a Ray actor.

Ray places the actor where the requested CPUs and GPUs are free; the actor only launches and watches the
server, which takes requests over HTTP directly. The server is tied to the actor's watcher thread (it gets
SIGTERM if the actor dies), and the watcher restarts it — on the same port where it can — when it exits or
stops answering health checks.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aidc.cluster.compute import node_address
from aidc.errors import AidcError, BackendUnavailable
from aidc.serving.endpoint import (
    EndpointClient,
    EndpointProcess,
    start_endpoint,
    start_generation_endpoint,
    stop_endpoint,
)

if TYPE_CHECKING:
    from aidc.store.artifacts import ArtifactStore
    from aidc.store.metadata.records import ModelVersion

log = logging.getLogger("aidc.serving.replicas")

WATCH_EVERY_S = 0.5
HEALTH_EVERY_S = 2.0
UNHEALTHY_AFTER = 3  # failed checks in a row before a running server is replaced (one slow answer under load is not)
RESTART_BACKOFF_S = (0.0, 1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True)
class ReplicaSpec:
    """What a replica serves and how: plain data, so it travels to the actor and back into records."""

    deployment: str
    version: str  # served as the OIP model version
    onnx_digest: str
    workdir: str  # models and logs, on the replica's node
    log_name: str
    cpus: float = 0.5
    host: str = "127.0.0.1"
    max_batch_size: int = 32
    max_queue_delay_ms: float = 2.0
    # "onnx": an ONNX server (aidc.serving.server) of onnx_digest; "generation": a text generator
    # (aidc.serving.generation_server) of bundle_digest, a language model's weights, architecture and tokenizer
    kind: str = "onnx"
    bundle_digest: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def replica_kind(version: ModelVersion) -> str:
    """How a model version is served: "generation" for a registered language model (register_lm), else "onnx"."""
    from aidc.training.gpt.bundle import TASK

    if version.metrics.get("task") == TASK and version.checkpoint_digest:
        return "generation"
    return "onnx"


def fetch_model(spec: ReplicaSpec, artifacts: ArtifactStore) -> Path:
    """The file ``spec`` serves on this node (its ONNX file, or a language model's bundle): from the artifact
    store (verified against its digest) unless cached."""
    digest, suffix = (spec.bundle_digest, ".zip") if spec.kind == "generation" else (spec.onnx_digest, ".onnx")
    dest = Path(spec.workdir) / "models" / f"{digest.replace(':', '-')}{suffix}"
    if not dest.is_file():
        artifacts.get_file(digest, dest)
    return dest


class Replica:
    """The body of a replica actor (``ray.remote(Replica)``); also usable in-process, which the tests do."""

    def __init__(self, spec: ReplicaSpec, artifacts: ArtifactStore) -> None:
        self.spec = spec
        self.node = _node_name()
        self.ray_node = _ray_node_id()  # which Ray node: the controller tells a replica recreated on another by it
        self.restarts = 0
        self.message: str | None = None
        self.ready = False
        self.endpoint: EndpointProcess | None = None
        self._port = 0
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._error: AidcError | None = None
        self._model = fetch_model(spec, artifacts)
        # The server is started by the watcher thread, which lives as long as the actor: the kernel signals a
        # child when the *thread* that forked it exits.
        self._watcher = threading.Thread(target=self._watch, name="replica-watcher", daemon=True)
        self._watcher.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def _start(self) -> EndpointProcess:
        log_path = Path(self.spec.workdir) / "logs" / self.spec.log_name
        host = "0.0.0.0" if self.spec.host not in ("127.0.0.1", "localhost", "::1") else self.spec.host

        def start(port: int) -> EndpointProcess:
            if self.spec.kind == "generation":
                return start_generation_endpoint(
                    self._model,
                    self.spec.deployment,
                    self.spec.version,
                    port=port,
                    host=host,
                    log_path=log_path,
                    max_batch=self.spec.max_batch_size,
                    threads=max(1, int(self.spec.cpus)),
                    die_with_parent=True,
                )
            return start_endpoint(
                self._model,
                self.spec.deployment,
                self.spec.version,
                port=port,
                host=host,
                log_path=log_path,
                max_batch_size=self.spec.max_batch_size,
                max_queue_delay_ms=self.spec.max_queue_delay_ms,
                die_with_parent=True,
                extra_args=["--threads", str(max(1, int(self.spec.cpus)))],
            )

        try:
            endpoint = start(self._port)
        except BackendUnavailable:
            if not self._port:
                raise
            endpoint = start(0)  # the old port is taken: any free one
        if host == "0.0.0.0":  # advertise an address other nodes can reach
            endpoint = EndpointProcess(url=endpoint.url.replace("0.0.0.0", self.node), pid=endpoint.pid)
        self._port = int(endpoint.url.rsplit(":", 1)[1])
        return endpoint

    def _watch(self) -> None:
        try:
            self.endpoint = self._start()
        except AidcError as exc:
            self._error = exc
        self.ready = self._error is None
        self._started.set()
        failures, last_check = 0, time.monotonic()
        probe: EndpointClient | None = None
        while self.endpoint is not None and not self._stopping.wait(WATCH_EVERY_S):
            alive = self.endpoint.alive()
            if alive and time.monotonic() - last_check >= HEALTH_EVERY_S:
                last_check = time.monotonic()
                if probe is None or probe.url != self.endpoint.url:  # a client per server: keeps its connection
                    if probe is not None:
                        probe.close()
                    probe = EndpointClient(self.endpoint.url, timeout=2.0)
                failures = 0 if probe.ready() else failures + 1
            if alive and failures < UNHEALTHY_AFTER:
                continue
            self.ready = False
            stop_endpoint(self.endpoint.pid, timeout=5.0)
            self._restart("stopped answering health checks" if alive else "exited")
            failures = 0

    def _restart(self, why: str) -> None:
        attempt = 0
        while not self._stopping.is_set():
            time.sleep(RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)])
            attempt += 1
            try:
                self.endpoint = self._start()
            except AidcError as exc:
                self.message = f"server {why}; restart {attempt} failed: {exc.message.splitlines()[0]}"
                continue
            if self._stopping.is_set():  # stop() came while this one was starting
                stop_endpoint(self.endpoint.pid, timeout=5.0)
                return
            self.restarts += 1
            self.message = f"server {why}; restarted (pid {self.endpoint.pid})"
            log.warning("%s version %s: %s", self.spec.deployment, self.spec.version, self.message)
            self.ready = True
            return

    def info(self) -> dict[str, Any]:
        endpoint = self.endpoint
        return {
            "url": endpoint.url if endpoint else None,
            "pid": endpoint.pid if endpoint else None,
            "node": self.node,
            "ray_node": self.ray_node,
            "ready": self.ready and bool(endpoint and endpoint.alive()),
            "restarts": self.restarts,
            "message": self.message,
        }

    def stop(self, timeout: float = 15.0) -> None:
        """Drain and stop the server (in-flight requests finish); the watcher stops restarting it."""
        self._stopping.set()
        self.ready = False
        if self.endpoint is not None:
            stop_endpoint(self.endpoint.pid, timeout=timeout)


def _node_name() -> str:
    try:
        import ray

        if ray.is_initialized():
            return node_address()
    except ImportError:
        pass
    return "127.0.0.1"


def _ray_node_id() -> str | None:
    try:
        import ray

        if ray.is_initialized():
            return str(ray.get_runtime_context().get_node_id())
    except ImportError:
        pass
    return None
