"""The Ray cluster deployments live on: AIDC_RAY_ADDRESS when set, else a local Ray head that outlives every CLI command.

A deployment's controller and replicas are detached Ray actors, so they must run on a cluster that does not end
with the command that created them. Without AIDC_RAY_ADDRESS, the first deploy starts ``ray start --head
--block`` in its own session and records its address and pid in ``$AIDC_HOME/serving/ray.json``; later
commands connect to that address. Its temp dir is private (not ``/tmp/ray``), so a plain ``ray.init()`` by a
training run on the same host never joins it by accident, and all of its ports are picked free (never 6379).
Deleting the last deployment stops it, unless it was started to be kept.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aidc.cluster.compute import (
    LOOPBACK_ONLY,
    keep_ray_errors_off_stdout,
    keep_ray_on_loopback,
    leave_ray,
    reload_ray_auth,
)
from aidc.errors import BackendUnavailable
from aidc.serving.endpoint import process_alive

log = logging.getLogger("aidc.serving.cluster")

START_TIMEOUT_S = 90.0
STARTED_LINE = "Ray runtime started"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_head(state: dict[str, Any]) -> bool:
    """Whether the pid in ``state`` is still the head that state describes. Linux reuses pids: one recorded by a
    head that has since exited may now be anyone's process (a pipeline's own raylet, say), never to be signalled."""
    pid = int(state["pid"])
    if not process_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return sys.platform != "linux"  # without /proc we cannot tell; the address check still applies
    return b"ray.scripts.scripts" in cmdline and str(state.get("temp_dir", "")).encode() in cmdline


def _answers(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except (OSError, ValueError):
        return False


class ServingCluster:
    """Finds, starts, connects to and stops the Ray cluster that hosts deployments."""

    def __init__(self, home: Path, *, address: str = "", num_cpus: int | None = None, joined: bool = False) -> None:
        self.home = Path(home)
        self.configured = address
        self.num_cpus = num_cpus
        # joined: the Ray this process already drives (a pipeline run checking a model on its own Ray, whose
        # deployments end with the command); never started, connected to or stopped here.
        self.joined = joined
        self.state_file = self.home / "serving" / "ray.json"

    @property
    def owned(self) -> bool:
        """Whether aidc started this cluster (and so may stop it), rather than being pointed at one."""
        return not self.configured and not self.joined

    def _state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        if _is_head(state) and _answers(state["address"]):
            return state
        return None

    def address(self, *, start: bool = True, keep: bool = False) -> str:
        """The cluster's address, starting a local head first if there is none and ``start`` is true.

        A head started with ``keep`` stays when the last deployment is deleted (stop it with ``stop``);
        one started on demand by a deploy goes with it.
        """
        return self._find(start=start, keep=keep)[0]

    @property
    def kept(self) -> bool:
        state = self._state()
        return bool(state and state.get("keep"))

    def _find(self, *, start: bool, keep: bool = False) -> tuple[str, str | None]:
        """(address, auth token or None) of the cluster."""
        if self.configured:
            return self.configured, None
        state = self._state()
        if state is None:
            if not start:
                raise BackendUnavailable("the serving cluster is not running", hint="deploy a model to start it")
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.state_file.with_suffix(".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # two commands deploying at once start one head, not two
                if self._state() is None:
                    self._start(keep)
                state = self._state()
            if state is None:
                raise BackendUnavailable(
                    f"the serving Ray cluster started but does not answer; see {self.state_file.with_name('ray.log')}"
                )
        return str(state["address"]), state.get("token")

    def _start(self, keep: bool) -> None:
        port = _free_port()
        # Short and private: Ray's socket paths must stay under 107 bytes, and /tmp/ray is where a plain
        # ray.init() looks for a cluster to join.
        digest = hashlib.sha1(str(self.home.resolve()).encode()).hexdigest()[:10]
        temp_dir = Path(tempfile.gettempdir()) / f"aidc-ray-{digest}"
        log_path = self.state_file.with_name("ray.log")
        ports = {
            flag: str(_free_port())
            for flag in (
                "--dashboard-port",
                "--dashboard-agent-listen-port",
                "--dashboard-agent-grpc-port",
                "--metrics-export-port",
                "--runtime-env-agent-port",
            )
        }
        command = [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            "--head",
            "--block",
            "--port",
            str(port),
            "--node-ip-address",
            "127.0.0.1",
            "--temp-dir",
            str(temp_dir),
            "--include-dashboard=false",
            "--disable-usage-stats",
            "--object-store-memory",
            str(200 * 1024 * 1024),
            *[x for flag, value in ports.items() for x in (flag, value)],
        ]
        if self.num_cpus is not None:
            command += ["--num-cpus", str(self.num_cpus)]
        # Without this a stopping head waits 30 s for the node to drain; nothing of ours needs draining by then.
        token = secrets.token_hex(32)
        env = {
            **os.environ,
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
            "RAY_USAGE_STATS_ENABLED": "0",
            LOOPBACK_ONLY: "0",  # every listener on 127.0.0.1, not the host's interfaces (compute.py)
            **_auth(token),
        }
        env.pop("RAY_ADDRESS", None)
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                close_fds=True,
            )
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while STARTED_LINE not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                raise BackendUnavailable(
                    f"could not start the serving Ray cluster; log {log_path}:\n{tail}",
                    hint="set AIDC_RAY_ADDRESS to use a running cluster instead",
                )
            time.sleep(0.2)
        # The token lets only those who can read this file (its owner) run code on the cluster.
        fd = os.open(self.state_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(
                {
                    "address": address,
                    "pid": proc.pid,
                    "token": token,
                    "keep": keep,
                    "temp_dir": str(temp_dir),
                    "log": str(log_path),
                },
                out,
            )
        log.info("started the serving Ray cluster at %s (pid %d)", address, proc.pid)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the local head aidc started (never a configured cluster); True if one was running."""
        if not self.owned:
            return False
        try:
            state = json.loads(self.state_file.read_text())
            pid = int(state["pid"])
        except (OSError, ValueError, KeyError):
            return False
        self.state_file.unlink(missing_ok=True)
        if not _is_head(state):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # `ray start --block` stops every process of the node on SIGTERM
        deadline = time.monotonic() + timeout
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        return True

    @contextlib.contextmanager
    def connect(self, namespace: str, *, start: bool = True) -> Iterator[None]:
        """This process as a Ray driver of the serving cluster, in ``namespace``, for the duration of the block."""
        import ray

        if self.joined:
            if not ray.is_initialized():
                raise BackendUnavailable(
                    "this process drives no Ray cluster to deploy on",
                    hint="start the command's Ray first (the pipeline runner does)",
                )
            yield
            return
        address, token = self._find(start=start)
        if not self.configured:
            keep_ray_on_loopback()  # the head aidc started is on 127.0.0.1 only; so must its driver be
        if ray.is_initialized():
            raise BackendUnavailable(
                "this process is already connected to a Ray cluster",
                hint="manage deployments from a process that does not run Ray work",
            )
        # Ray reads its auth settings from the environment; set ours only while this process is a driver.
        saved = {k: os.environ.get(k) for k in _auth("")}
        if token is not None:
            os.environ.update(_auth(token))
            reload_ray_auth()
        try:
            try:
                ray.init(
                    address=address,
                    namespace=namespace,
                    logging_level=logging.ERROR,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except (ConnectionError, RuntimeError) as exc:
                raise BackendUnavailable(
                    f"cannot connect to the serving Ray cluster at {address}: {exc}",
                    hint="check AIDC_RAY_ADDRESS, or delete $AIDC_HOME/serving/ray.json",
                ) from exc
            keep_ray_errors_off_stdout()  # a replica that dies must not print on a command's --json output
            try:
                yield
            finally:
                leave_ray()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            if token is not None:
                reload_ray_auth()


def _auth(token: str) -> dict[str, str]:
    """Ray's token authentication with our own token: never ~/.ray/auth_token, which any local ray.init() writes."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
