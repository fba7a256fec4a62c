"""Inference endpoints as processes: start one for an ONNX file, stop it by pid, and call it over OIP v2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from aidc.errors import AidcError, BackendUnavailable, InvalidInput, NotFound
from aidc.serving.protocol import HEADER_LENGTH, decode_infer_response, encode_infer_request, split_body

SERVER_MODULE = "aidc.serving.server"
GENERATION_MODULE = "aidc.serving.generation_server"
# Popen objects of endpoints this process started, so stopping one also reaps it (no zombies).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class EndpointProcess:
    """A running inference server process; plain data (url, pid), so it pickles and goes into run records."""

    url: str
    pid: int

    def alive(self) -> bool:
        return _alive(self.pid)

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; True if it was running."""
        return stop_endpoint(self.pid, timeout)

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "pid": self.pid}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EndpointProcess:
        return cls(url=str(data["url"]), pid=int(data["pid"]))


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(log not readable)"


def start_endpoint(
    onnx_path: str | os.PathLike[str],
    name: str,
    version: str = "1",
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_path: str | os.PathLike[str] | None = None,
    ready_timeout: float = 60.0,
    max_batch_size: int = 32,
    max_queue_delay_ms: float = 2.0,
    extra_args: list[str] | None = None,
    die_with_parent: bool = False,
) -> EndpointProcess:
    """Spawn ``python -m aidc.serving.server`` in its own session and wait until it is ready.

    Its own session lets it outlive the calling command (``--serve``) and lets ``stop`` signal the whole
    process group; ``die_with_parent`` instead ties it to the calling thread (a replica's supervisor).
    Output goes to ``log_path``; if the server dies or is not ready within ``ready_timeout`` seconds this
    raises BackendUnavailable naming the log and quoting its last lines.
    """
    args = [
        "--model",
        f"{name}:{version}={Path(onnx_path).resolve()}",
        "--max-batch-size",
        str(max_batch_size),
        "--max-queue-delay-ms",
        str(max_queue_delay_ms),
        *(extra_args or []),
    ]
    return launch(
        SERVER_MODULE,
        args,
        what=f"inference server for {name!r}",
        host=host,
        port=port,
        log_path=log_path,
        ready_timeout=ready_timeout,
        die_with_parent=die_with_parent,
    )


def start_generation_endpoint(
    bundle_path: str | os.PathLike[str],
    name: str,
    version: str = "1",
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_path: str | os.PathLike[str] | None = None,
    ready_timeout: float = 120.0,
    max_batch: int = 16,
    threads: int | None = None,
    die_with_parent: bool = False,
) -> EndpointProcess:
    """Spawn ``python -m aidc.serving.generation_server`` for a language model's bundle; as ``start_endpoint``."""
    args = ["--bundle", str(Path(bundle_path).resolve()), "--name", name, "--version", version]
    args += ["--max-batch", str(max_batch), *(["--threads", str(threads)] if threads else [])]
    return launch(
        GENERATION_MODULE,
        args,
        what=f"generation server for {name!r}",
        host=host,
        port=port,
        log_path=log_path,
        ready_timeout=ready_timeout,
        die_with_parent=die_with_parent,
    )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def launch(
    module: str,
    args: list[str],
    *,
    what: str,
    host: str = "127.0.0.1",
    port: int = 0,
    log_path: str | os.PathLike[str] | None = None,
    ready_timeout: float = 60.0,
    env: dict[str, str] | None = None,
    die_with_parent: bool = False,
    wait_for: str = "ready",
) -> EndpointProcess:
    """Run ``python -m MODULE --host H --port P --port-file F ARGS`` and wait until it answers ``wait_for``.

    The modules are aidc's HTTP processes (the inference server, the deployment router): each binds the port,
    writes it to the port file, then serves ``/v2/health/live`` and ``/v2/health/ready``.
    """
    log = Path(log_path) if log_path is not None else Path(tempfile.mkstemp(prefix="aidc-serve-", suffix=".log")[1])
    log.parent.mkdir(parents=True, exist_ok=True)
    port_file = Path(tempfile.mkdtemp(prefix="aidc-endpoint-")) / "port"
    command = [sys.executable, "-m", module, "--host", host, "--port", str(port), "--port-file", str(port_file), *args]
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    preexec = _die_with_parent if die_with_parent and sys.platform == "linux" else None
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=full_env,
            close_fds=True,
            preexec_fn=preexec,
        )
    _CHILDREN[proc.pid] = proc
    deadline = time.monotonic() + ready_timeout
    url_host = f"[{host}]" if ":" in host else host
    try:
        while True:
            code = proc.poll()
            if code is not None:
                raise BackendUnavailable(
                    f"{what} exited with code {code} before it was ready; log {log}:\n{_tail(log)}",
                    hint="the last lines of the log say why",
                )
            if port_file.exists():
                url = f"http://{url_host}:{port_file.read_text().strip()}"
                with EndpointClient(url, timeout=2.0) as probe:
                    if probe.live() if wait_for == "live" else probe.ready():
                        return EndpointProcess(url=url, pid=proc.pid)
            if time.monotonic() > deadline:
                stop_endpoint(proc.pid, timeout=5.0)
                raise BackendUnavailable(
                    f"{what} was not ready within {ready_timeout:g}s; log {log}:\n{_tail(log)}",
                    hint="raise ready_timeout for large models",
                )
            time.sleep(0.05)
    finally:
        port_file.unlink(missing_ok=True)
        port_file.parent.rmdir()


def _alive(pid: int) -> bool:
    proc = _CHILDREN.get(pid)
    if proc is not None:
        return proc.poll() is None  # our child: polling also reaps it
    return process_alive(pid)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (another user's process counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie answers kill(0) but is gone for every purpose
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _is_server(pid: int) -> bool:
    """Whether ``pid`` is one of our processes: a pid recorded long ago may now belong to something else."""
    if pid in _CHILDREN:
        return True
    try:
        return b"aidc.serving." in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return sys.platform != "linux"  # without /proc we cannot tell; trust the caller


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # the server leads its own session; its group holds anything it spawned
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop_endpoint(pid: int, timeout: float = 10.0) -> bool:
    """Stop the endpoint with this pid: SIGTERM, then SIGKILL after ``timeout``. True if it was running."""
    if not _alive(pid) or not _is_server(pid):
        _CHILDREN.pop(pid, None)
        return False
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        _signal(pid, signal.SIGKILL)
        while _alive(pid) and time.monotonic() < deadline + 5:
            time.sleep(0.05)
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        proc.wait(timeout=5)
    return True


class EndpointClient:
    """A small OIP v2 client for the pipeline and the CLI (applications can use any OIP v2 client)."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._metadata: dict[tuple[str, str | None], dict[str, Any]] = {}

    def __enter__(self) -> EndpointClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def ready(self) -> bool:
        try:
            return self._http.get("/v2/health/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def live(self) -> bool:
        try:
            return self._http.get("/v2/health/live").status_code == 200
        except httpx.HTTPError:
            return False

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"inference endpoint {self.url} did not answer: {exc}", hint="check that the endpoint is running"
            ) from exc
        if response.status_code >= 400:
            try:
                message = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:500]
            kind: type[AidcError] = {400: InvalidInput, 404: NotFound, 413: InvalidInput}.get(
                response.status_code, BackendUnavailable
            )
            raise kind(f"{self.url}{path}: {message}")
        return response

    def metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        key = (name, version)
        if key not in self._metadata:
            path = f"/v2/models/{name}" + (f"/versions/{version}" if version else "")
            self._metadata[key] = self._request("GET", path).json()
        return self._metadata[key]

    def infer(
        self,
        name: str,
        array: np.ndarray,
        input_name: str | None = None,
        binary: bool = False,
        version: str | None = None,
    ) -> np.ndarray:
        """Send one input tensor; return the model's first output as an array."""
        if input_name is None:
            input_name = self.metadata(name, version)["inputs"][0]["name"]
        _, outputs = self.infer_all(name, {input_name: array}, binary=binary, version=version)
        return next(iter(outputs.values()))

    def infer_all(
        self, name: str, inputs: dict[str, np.ndarray], *, binary: bool = True, version: str | None = None
    ) -> tuple[str, dict[str, np.ndarray]]:
        """Send every input; return the version that answered and every output by name."""
        body, headers = encode_infer_request(
            {k: np.asarray(v) for k, v in inputs.items()}, binary=binary, binary_output=binary
        )
        path = f"/v2/models/{name}" + (f"/versions/{version}" if version else "") + "/infer"
        response = self._request("POST", path, content=body, headers=headers)
        header_length = response.headers.get(HEADER_LENGTH)
        header, _ = split_body(response.content, header_length)
        return str(header.get("model_version", "")), decode_infer_response(response.content, header_length)
