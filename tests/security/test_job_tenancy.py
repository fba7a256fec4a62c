"""A job of project alpha, against a live `aidc server` that also holds project beta, as beta's users would want it
tried: its own user code (a `module:function` data source) goes after the server's environment, beta's artifact
through the job API with the job's own credential (found in the process's memory, as an attacker would), and the
server's files — and the same pipeline still trains, exports and registers in alpha.

Without ``--job-user`` the job runs as the server's OS user, so the file attacks are only refused with a job user:
that test needs root and an interpreter the job user can run (it is skipped, saying why, otherwise).
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_digits
from tests.api.conftest import LiveServer, start_server, stop
from tests.pace import HANG_S, wait_until

SRC = str(Path(__file__).resolve().parents[2] / "src")
SERVER_SECRET = "s3-secret-" + secrets.token_hex(8)  # in the server's environment only
JOB_USER = "nobody"
# this interpreter's installed packages (not its standard library: another interpreter brings its own)
PACKAGES = [p for p in sys.path if p.endswith("site-packages")]

# The user code of alpha's job. It returns the digits as (X, y) — a real data source — after trying what a tenant
# who wants beta's data would try, and writes what it found where the test can read it.
PROBE = """
import gc, json, os
from pathlib import Path

FINDINGS = Path({findings!r})
SERVER_HOME = Path({home!r})
BETA_DIGEST = {digest!r}
BETA_DATASET = {dataset!r}
SERVER_PID = {server_pid!r}


def _try(what):
    try:
        return {{"ok": True, "value": what()}}
    except Exception as exc:  # what the attempt ran into
        return {{"ok": False, "error": f"{{type(exc).__name__}}: {{exc}}"}}


def _connection():
    from aidc.client.job_stores import JobConnection
    return next(o for o in gc.get_objects() if isinstance(o, JobConnection))


def digits():
    import httpx
    from sklearn.datasets import load_digits

    found = {{"pid": os.getpid(), "uid": os.getuid(), "environ": dict(os.environ)}}
    found["master_key"] = _try(lambda: (SERVER_HOME / "master.key").read_bytes().hex()[:16])
    found["database"] = _try(lambda: (SERVER_HOME / "aidc.db").read_bytes()[:16].hex())
    found["server_environ"] = _try(lambda: Path(f"/proc/{{SERVER_PID}}/environ").read_bytes()[:64].hex())
    beta_file = SERVER_HOME / "artifacts" / "sha256" / BETA_DIGEST[7:9] / BETA_DIGEST[9:]
    found["beta_artifact_file"] = _try(lambda: beta_file.read_bytes()[:16].hex())
    try:
        conn = _connection()
    except (ImportError, StopIteration):  # a job that holds no credential of its own
        conn = None
    if conn is not None:
        found["token"] = conn.token
        found["job_id"] = conn.job_id
        http = httpx.Client(base_url=conn.server + "/api/v1", headers={{"Authorization": f"Bearer {{conn.token}}"}})
        found["beta_artifact_api"] = http.get(f"/jobs/{{conn.job_id}}/artifacts/{{BETA_DIGEST}}").status_code
        found["beta_dataset_api"] = http.post(
            f"/jobs/{{conn.job_id}}/store/get_dataset_version", json={{"id": BETA_DATASET}}
        ).status_code
        found["runs_api"] = http.get("/runs").status_code
        found["jobs_api"] = http.get("/jobs").status_code
    FINDINGS.write_text(json.dumps(found))
    data = load_digits()
    return data.images, data.target
"""

PIPELINE = """pipeline: alpha-digits
stages:
  - name: data
    uses: data
    with:
      source: tenancy_probe:digits
  - name: files
    uses: data
    with: {source: "file:digits.npz", dataset: alpha-file}
  - name: train
    uses: train
    inputs: {data: data.splits}
    with: {model: mlp, epochs: 1, workers: 1, batch_size: 128, early_stopping: null}
  - name: evaluate
    uses: evaluate
    inputs: {data: data.splits, checkpoint: train.checkpoint, model: train.model}
  - name: export
    uses: export
    inputs: {checkpoint: train.checkpoint, model: train.model, data: data.splits}
  - name: register
    uses: register
    inputs: {onnx: export.onnx, checkpoint: train.checkpoint, dataset: data.dataset}
    with: {name: alpha-model}
  - name: deploy
    uses: deploy
    inputs: {model: register.model, onnx: export.onnx, data: data.splits, predictions: evaluate.predictions}
"""


@dataclass
class Tenants:
    server: LiveServer
    admin: httpx.Client
    alice: httpx.Client  # researcher in alpha only
    beta_digest: str
    beta_dataset: int
    findings: Path
    probe_dir: Path


def client(server: LiveServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=120)


def beta_records(home: Path) -> tuple[str, int]:
    """Beta's dataset, as its own job would have left it: an encrypted artifact and a dataset version of beta."""
    from aidc.platform import Platform
    from aidc.settings import Settings

    platform = Platform(Settings(home=home))
    try:
        ref = platform.artifacts.put_bytes(b"beta's patient records: " + secrets.token_bytes(64))
        dv = platform.metadata.register_dataset_version(
            "beta-patients",
            ref.digest,
            schema={},
            stats={},
            class_balance={},
            fingerprint=ref.digest,
            run_id=None,
            project="beta",
        )
        return ref.digest, dv.id
    finally:
        platform.close()


def world_readable_dir() -> Path:
    """A folder any OS user can read and write (the job user's probe writes its findings there)."""
    folder = Path(tempfile.mkdtemp(prefix="aidc-tenancy-"))
    folder.chmod(0o777 | stat.S_ISVTX)
    return folder


def tenants_on(tmp: Path, *extra: str, python: str | None = None) -> Iterator[Tenants]:
    home = tmp / "home"
    probe_dir = world_readable_dir()
    findings = probe_dir / "findings.json"
    env = {
        "PYTHONPATH": os.pathsep.join([str(probe_dir), SRC, *PACKAGES]),
        "AWS_SECRET_ACCESS_KEY": SERVER_SECRET,
        "AIDC_RAY_NUM_CPUS": "2",
        "AIDC_JOB_SCRATCH": str(probe_dir / "jobs"),
    }
    admin_token = secrets.token_urlsafe(32)
    proc, server = start_server(home, admin_token, *extra, env=env, python=python)
    try:
        admin = client(server, admin_token)
        for project in ("alpha", "beta"):
            admin.post("/projects", json={"name": project}).raise_for_status()
        admin.post("/principals", json={"name": "alice"}).raise_for_status()
        admin.post("/principals/alice/roles", json={"role": "researcher", "project": "alpha"}).raise_for_status()
        alice_token = admin.post("/principals/alice/tokens", json={"name": "alice"}).json()["token"]
        digest, dataset = beta_records(home)
        alpha_data = home / "projects" / "alpha" / "data"  # a file source of alpha's, in alpha's data area
        alpha_data.mkdir(parents=True)
        digits = load_digits()
        np.savez(alpha_data / "digits.npz", images=digits.images, labels=digits.target)
        (probe_dir / "tenancy_probe.py").write_text(
            PROBE.format(findings=str(findings), home=str(home), digest=digest, dataset=dataset, server_pid=proc.pid)
        )
        (probe_dir / "tenancy_probe.py").chmod(0o644)
        yield Tenants(server, admin, client(server, alice_token), digest, dataset, findings, probe_dir)
    finally:
        stop(proc)
        shutil.rmtree(probe_dir, ignore_errors=True)


def run_alpha_job(t: Tenants) -> dict[str, Any]:
    answer = t.alice.post("/jobs", json={"pipeline": PIPELINE, "project": "alpha"})
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["id"]
    seen: dict[str, Any] = {}

    def ended() -> bool:
        seen.update(t.alice.get(f"/jobs/{job_id}").json())
        return seen["state"] in ("succeeded", "failed")

    wait_until(ended, f"job {job_id} to end", timeout=4 * HANG_S)
    log = t.alice.get(f"/jobs/{job_id}/logs").text
    assert seen["state"] == "succeeded", log
    return seen


@pytest.fixture(scope="module")
def same_user(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    yield from tenants_on(tmp_path_factory.mktemp("tenancy"))


def test_alpha_job_trains_and_registers_in_alpha_while_beta_stays_out_of_its_reach(same_user: Tenants) -> None:
    t = same_user
    job = run_alpha_job(t)
    found = json.loads(t.findings.read_text())

    # the job's environment: none of the server's secrets, no store to open directly
    environ = found["environ"]
    assert SERVER_SECRET not in json.dumps(environ)
    for name in ("AIDC_METADATA_URL", "AIDC_ARTIFACT_URL", "AIDC_MASTER_KEY", "AIDC_MASTER_KEY_FILE", "AIDC_TOKEN"):
        assert name not in environ, name
    assert environ.get("AIDC_HOME") != str(t.server.home)

    # beta's records through the job API, with the job's own credential: as if they did not exist
    assert found["beta_artifact_api"] == 404
    assert found["beta_dataset_api"] == 404
    assert found["runs_api"] == 403  # the credential is for the job's stores, not the user's other rights
    assert found["jobs_api"] == 403  # not even those its scope (jobs:read) names

    # and alpha got what the pipeline made, in alpha only
    models = t.alice.get("/models").json()
    assert [(m["name"], m["project"]) for m in models] == [("alpha-model", "alpha")]
    datasets = {(d["dataset"], d["project"]) for d in t.admin.get("/datasets").json()}
    assert ("beta-patients", "beta") in datasets and all(p in ("alpha", "beta") for _, p in datasets)
    assert t.alice.get(f"/runs/{job['run_id']}").json()["run"]["project"] == "alpha"

    # its deploy stage deploys nothing (the job holds no serving rights) and says how to deploy instead
    assert t.admin.get("/deployments").json() == []
    log = t.alice.get(f"/jobs/{job['id']}/logs").text
    assert "not deploying alpha-model:1: a job's process holds no serving rights" in log, log
    assert "aidc deploy NAME:VERSION --project alpha" in log

    # the credential was the submitter's, made for this job, audited, and revoked once the job ended
    def revoked() -> bool:
        return client(t.server, found["token"]).get("/whoami").status_code == 401

    wait_until(revoked, "the job's credential revoked after the job ended")
    made = t.admin.get("/audit", params={"action": "token.create"}).json()
    assert any(e["target"].startswith("token:") and e["details"].get("name") == f"job:{job['id']}" for e in made)


def test_a_token_name_of_a_job_credential_cannot_be_taken(same_user: Tenants) -> None:
    answer = same_user.alice.post("/tokens", json={"name": "job:anything"})
    assert answer.status_code == 400 and "job:" in answer.json()["error"]["message"]


def test_another_users_token_cannot_use_a_jobs_stores(same_user: Tenants) -> None:
    """Even the job's own submitter, with her usual token, is not the job: the job routes take its credential only."""
    jobs = same_user.alice.get("/jobs").json()
    assert jobs, "the first test ran a job"
    answer = same_user.alice.post(f"/jobs/{jobs[0]['id']}/store/get_job", json={})
    assert answer.status_code == 404 and "no stores of job" in answer.json()["error"]["message"]


def job_user_can_run(python: str) -> str | None:
    """Why a job user cannot be tried here, or None."""
    if os.geteuid() != 0:
        return "needs root: only a server run as root starts jobs as another OS user"
    try:
        done = subprocess.run(
            [python, "-c", "import aidc, ray, torch"],
            user=JOB_USER,
            env={"PYTHONPATH": os.pathsep.join([SRC, *PACKAGES]), "HOME": "/"},
            capture_output=True,
            cwd="/",
        )
    except OSError as exc:
        return f"{JOB_USER} cannot run {python}: {exc}"
    if done.returncode != 0:
        return f"{JOB_USER} cannot run {python} with aidc's packages: {done.stderr.decode()[-200:]}"
    return None


def python_for_job_user() -> str:
    """This interpreter, or the system's of the same version when ours lies in a folder others cannot enter."""
    for candidate in (sys.executable, f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"):
        if os.path.exists(candidate) and job_user_can_run(candidate) is None:
            return candidate
    return sys.executable


@pytest.fixture(scope="module")
def confined(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    python = python_for_job_user()
    why = job_user_can_run(python)
    if why:
        pytest.skip(why)
    yield from tenants_on(tmp_path_factory.mktemp("confined"), "--job-user", JOB_USER, python=python)


def test_a_job_run_as_the_job_user_cannot_read_the_servers_files_and_still_trains(confined: Tenants) -> None:
    t = confined
    job = run_alpha_job(t)
    found = json.loads(t.findings.read_text())
    assert found["uid"] == pwd.getpwnam(JOB_USER).pw_uid
    for attempt in ("master_key", "database", "beta_artifact_file", "server_environ"):
        assert not found[attempt]["ok"], (attempt, found[attempt])
        assert "PermissionError" in found[attempt]["error"], (attempt, found[attempt])
    assert SERVER_SECRET not in json.dumps(found["environ"])
    assert found["beta_artifact_api"] == 404 and found["beta_dataset_api"] == 404
    # its file source was read by the server inside alpha's data area, and the pipeline registered in alpha
    names = {(d["dataset"], d["project"]) for d in t.alice.get("/datasets").json()}
    assert ("alpha-file", "alpha") in names
    assert [(m["name"], m["project"]) for m in t.alice.get("/models").json()] == [("alpha-model", "alpha")]
    # its own Ray's session files are removed once it has ended
    from aidc.jobs.launcher import ProcessLauncher

    wait_until(lambda: not ProcessLauncher.ray_tmp(job["id"]).exists(), "the job's Ray folder removed")


@pytest.mark.parametrize(
    ("user", "says"),
    [("root", "jobs must not run as root"), ("no-such-user-here", "no OS user 'no-such-user-here'")],
)
def test_a_job_user_the_server_cannot_use_stops_it_at_start_saying_why(tmp_path: Path, user: str, says: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: a server not run as root refuses any --job-user (another test's message)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIDC_")} | {"AIDC_HOME": str(tmp_path / "home")}
    aidc = str(Path(sys.executable).with_name("aidc"))
    done = subprocess.run(
        [aidc, "server", "--port", "9", "--job-user", user, "--no-telemetry", "--no-alerts"],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert done.returncode != 0 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_job_user_who_cannot_run_the_servers_python_stops_it_at_start(tmp_path: Path) -> None:
    why = job_user_can_run(sys.executable)
    if why is None or os.geteuid() != 0:
        pytest.skip(f"{JOB_USER} can run {sys.executable} here (or this is not root)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIDC_")} | {"AIDC_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("aidc")), "server", "--port", "9", "--job-user", JOB_USER],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert done.returncode != 0 and f"job user {JOB_USER} cannot run" in done.stderr, done.stderr
    assert "not under a 0700 home" in done.stderr
