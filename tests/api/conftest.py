"""A control plane with two projects (alpha, beta) holding one run, dataset, model and deployment each, and a
caller per role bound to alpha; plus a live `aidc server` subprocess for the HTTP-level tests."""

from __future__ import annotations

import os
import secrets
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.conftest import fresh_postgres
from tests.pace import HANG_S

from aidc.api import create_app
from aidc.platform import Platform
from aidc.security.roles import ROLES, local_access
from aidc.settings import Settings

PROJECTS = ("alpha", "beta")


@dataclass
class World:
    platform: Platform
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)  # caller → token; callers: "<role>@alpha", "admin@*"
    records: dict[str, dict[str, str]] = field(default_factory=dict)  # project → kind → id

    def headers(self, caller: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[caller]}"} if caller else {}


def record_projects(platform: Platform) -> dict[str, dict[str, str]]:
    """One run, dataset version, model version and deployment in each project."""
    md, security, local = platform.metadata, platform.security, local_access()
    records: dict[str, dict[str, str]] = {}
    for project in PROJECTS:
        security.create_project(local, project)
        run = md.create_run(f"run-{project}", "digits", {}, None)
        md.finish_run(run.id, "succeeded")
        dv = md.register_dataset_version(
            f"data-{project}",
            "sha256:" + "0" * 64,
            schema={},
            stats={},
            class_balance={},
            fingerprint=f"fp-{project}",
            run_id=run.id,
        )
        mv = md.register_model_version(
            f"model-{project}",
            onnx_digest=None,
            checkpoint_digest=None,
            run_id=run.id,
            dataset_version_id=dv.id,
            metrics={"accuracy": 0.9},
        )
        dep = md.add_deployment(f"dep-{project}", mv.id, "http://127.0.0.1:9", None)  # port 9: nothing answers
        records[project] = {
            "run": run.id,
            "dataset_version": str(dv.id),
            "model_version": str(mv.id),
            "deployment": str(dep.id),
            "model_ref": mv.ref,
            "deployment_name": dep.name,
        }
        for kind in ("run", "dataset_version", "model_version", "deployment"):
            security.assign_project(local, kind, records[project][kind], project)
    return records


# A pipeline the job routes accept (it is never run here: the test app has no scheduler, jobs stay queued).
JOB_SPEC = """pipeline: digits-data
stages:
  - name: data
    uses: data
    with:
      source: sklearn:digits
"""


def record_jobs(platform: Platform, records: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """One queued job in each project."""
    local = local_access()
    for project in PROJECTS:
        job, _ = platform.jobs.submit(
            local, spec_text=JOB_SPEC, path_name="data.yaml", project=project, idempotency_key=f"world-{project}"
        )
        records[project]["job"] = job["id"]
    return records


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    platform = Platform(Settings(home=tmp_path_factory.mktemp("control-plane")))
    security, local = platform.security, local_access()
    records = record_jobs(platform, record_projects(platform))
    tokens = {}
    for role in ROLES:
        name = f"{role}-alpha"
        security.create_principal(local, name)
        security.grant(local, name, role, "alpha")
        tokens[f"{role}@alpha"] = security.create_token(local, name=name, principal=name)["token"]
    security.create_principal(local, "root")
    security.grant(local, "root", "admin", "*")
    tokens["admin@*"] = security.create_token(local, name="root", principal="root")["token"]
    security.create_principal(local, "target")  # what the admin routes act on
    with TestClient(create_app(platform)) as client:
        yield World(platform, client, tokens, records)
    security.store.close()
    platform.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    home: Path
    admin_token: str
    log: Path
    env: dict[str, str]


def trusting(verify: str | bool) -> ssl.SSLContext | bool:
    """httpx's ``verify``: a CA file's path becomes a context trusting it (httpx deprecates passing the path)."""
    return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify


def start_server(
    home: Path,
    admin_token: str,
    *extra: str,
    scheme: str = "http",
    verify: str | bool = False,
    env: dict[str, str] | None = None,
    python: str | None = None,
) -> tuple[subprocess.Popen[bytes], LiveServer]:
    """`aidc server` as a user starts it, on a free port, once /api/v1/health answers. Another process may take the
    port between our choosing it and the server binding it (other suites run on this host too): then on another.
    ``python``: run it on that interpreter (its packages found through PYTHONPATH) instead of this one's `aidc`."""
    for _ in range(3):
        started = _start_server_once(home, admin_token, *extra, scheme=scheme, verify=verify, env=env, python=python)
        if started is not None:
            return started
    raise RuntimeError("aidc server: three free ports were taken before it could bind one")


def _start_server_once(
    home: Path,
    admin_token: str,
    *extra: str,
    scheme: str,
    verify: str | bool,
    env: dict[str, str] | None,
    python: str | None = None,
) -> tuple[subprocess.Popen[bytes], LiveServer] | None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIDC_")} | (env or {})
    env |= {"AIDC_HOME": str(home), "AIDC_ADMIN_TOKEN": admin_token, "COLUMNS": "200"}
    log = home.parent / f"server-{port}.log"
    aidc = (
        [python, "-c", "from aidc.cli.app import main; main()"]
        if python
        else [str(Path(sys.executable).with_name("aidc"))]
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*aidc, "server", "--port", str(port), *extra], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + HANG_S  # (a busy machine starts it slowly; only a hang reaches this)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if "address already in use" in log.read_text().lower():
                return None
            raise RuntimeError(f"aidc server exited with {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/v1/health", verify=trusting(verify), timeout=10).status_code == 200:
                return proc, LiveServer(url, home, admin_token, log, env)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"aidc server not up after {HANG_S:g} s: {log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="package", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`aidc server` on a fresh store: SQLite under its AIDC_HOME, or its own PostgreSQL database."""
    home = tmp_path_factory.mktemp("live") / "home"
    with ExitStack() as stack:
        extra_env = {}
        if request.param == "postgres":
            extra_env["AIDC_METADATA_URL"] = stack.enter_context(fresh_postgres())
        proc, server = start_server(home, secrets.token_urlsafe(32), env=extra_env)
        stack.callback(stop, proc)
        yield server
