"""Jobs through a live `aidc server` as users meet them: submit with the CLI, the job runs (a real job process
on a real Ray), its log streams, retries never duplicate, a gang too big stays queued, and neither a server
killed mid-submission nor one killed under a running job loses or half-makes a job.

The pipeline is the digits data stage alone (a few seconds); the scheduler's other decisions (preemption,
quotas, fair share) are covered in tests/jobs with stand-in processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from tests.api.conftest import JOB_SPEC, LiveServer, start_server, stop
from tests.pace import HANG_S, wait_until

AIDC = str(Path(sys.executable).with_name("aidc"))
SERVER_ENV = {"AIDC_RAY_NUM_CPUS": "2"}


def api(server: LiveServer) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {server.admin_token}"}, timeout=120
    )


def cli(server: LiveServer, *args: str, timeout: float = HANG_S) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIDC_")}
    env |= {
        "AIDC_HOME": str(server.home.parent / "client"),
        "AIDC_SERVER": server.url,
        "AIDC_TOKEN": server.admin_token,
        "COLUMNS": "200",
    }
    return subprocess.run([AIDC, *args], capture_output=True, text=True, env=env, timeout=timeout)


def wait_for(client: httpx.Client, job_id: str, states: tuple[str, ...], timeout: float = HANG_S) -> dict[str, Any]:
    """The job once it is in one of ``states`` (the bound only fails a job that hangs)."""
    seen: dict[str, Any] = {}

    def arrived() -> dict[str, Any] | None:
        seen.update(client.get(f"/jobs/{job_id}").json())
        return dict(seen) if seen["state"] in states else None

    try:
        return wait_until(arrived, f"job {job_id} in {states}", timeout=timeout)  # type: ignore[no-any-return]
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {seen}") from None


def job_audit(client: httpx.Client, **filters: str) -> list[str]:
    """The job.* audit actions, newest first, once the job's own process has recorded how it ended (it does
    so just after it sets the state the test waited for)."""
    actions: list[str] = []

    def recorded() -> bool:
        actions[:] = [e["action"] for e in client.get("/audit", params={"action": "job.", **filters}).json()]
        return actions[:1] == ["job.succeed"]

    wait_until(recorded, "the job's own process recording how it ended", every=0.1)
    return actions


def job_process(server_pid: int, job_id: str) -> psutil.Process | None:
    """The process the server started for the job (`python -m aidc.cli.job_process JOB`)."""
    for child in psutil.Process(server_pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.cmdline()[-2:] == ["aidc.cli.job_process", job_id]:
                return child
    return None


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the server and everything it started (its Ray, its job processes): the host lost them all."""
    family = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for child in family:
        try:
            child.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=15)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("jobs") / "home"
    proc, live = start_server(home, secrets.token_urlsafe(32), env=SERVER_ENV)
    yield live
    stop(proc)


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "data.yaml"
    path.write_text(JOB_SPEC)
    return path


def test_a_submitted_job_runs_to_success_and_its_log_streams(server: LiveServer, spec: Path) -> None:
    client = api(server)
    client.post("/projects", json={"name": "vision"}).raise_for_status()
    done = cli(server, "jobs", "submit", str(spec), "--project", "vision", "--json")
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["state"] in ("queued", "running") and job["project"] == "vision" and job["pipeline"] == "digits-data"
    followed = cli(server, "logs", "-f", job["id"])  # returns once the job has ended
    assert followed.returncode == 0, followed.stderr
    assert "stage data: succeeded" in followed.stdout and "succeeded: run" in followed.stdout
    shown = json.loads(cli(server, "jobs", "show", job["id"], "--json").stdout)
    assert shown["state"] == "succeeded" and shown["attempts"] == 1 and shown["run_id"]
    assert client.get(f"/runs/{shown['run_id']}").json()["run"]["project"] == "vision"  # its run is the project's
    # the first job on this module's server, so its data stage ran (a cached one would keep an earlier run's version)
    made = [d for d in client.get("/datasets").json() if d["run_id"] == shown["run_id"]]
    assert made and all(d["project"] == "vision" for d in made)  # and so is the dataset version it registered
    assert cli(server, "logs", shown["run_id"]).stdout == followed.stdout  # the run's id finds its job's log
    assert job_audit(client, project="vision") == ["job.succeed", "job.start", "job.submit"]
    assert client.get("/audit/verify").json()["ok"]  # the job's own process appended to the same chain
    listed = cli(server, "jobs", "list", "--project", "vision")
    assert job["id"] in listed.stdout and "succeeded" in listed.stdout


def test_a_retried_submission_returns_the_same_job(server: LiveServer, spec: Path) -> None:
    client = api(server)
    body = {"pipeline": JOB_SPEC, "path_name": "data.yaml", "cpus": 512}  # too big to start: nothing runs
    first = client.post("/jobs", json=body, headers={"Idempotency-Key": "retry-1"})
    again = client.post("/jobs", json=body, headers={"Idempotency-Key": "retry-1"})
    assert (first.status_code, again.status_code) == (201, 200) and first.json()["id"] == again.json()["id"]
    by_cli = [
        json.loads(
            cli(server, "jobs", "submit", str(spec), "--cpus", "512", "--idempotency-key", "retry-2", "--json").stdout
        )["id"]
        for _ in range(2)
    ]
    assert by_cli[0] == by_cli[1]
    keyed = [j for j in client.get("/jobs", params={"limit": 1000}).json() if j["idempotency_key"].startswith("retry-")]
    assert len(keyed) == 2
    for j in keyed:
        client.post(f"/jobs/{j['id']}/cancel").raise_for_status()


def test_a_gang_bigger_than_the_cluster_stays_queued_until_cancelled(server: LiveServer, spec: Path) -> None:
    client = api(server)
    job = json.loads(cli(server, "jobs", "submit", str(spec), "--workers", "4", "--cpus", "1", "--json").stdout)
    wait_until(
        lambda: (client.get(f"/jobs/{job['id']}").json()["reason"] or "").startswith("gang"),
        "the scheduler saying why the job waits",
    )
    waiting = client.get(f"/jobs/{job['id']}").json()
    assert waiting["state"] == "queued" and "gang of 4 worker(s) needs 4 CPU" in waiting["reason"]
    assert waiting["run_id"] is None and waiting["attempts"] == 0  # no part of it ever started
    cancelled = cli(server, "jobs", "cancel", job["id"])
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    assert client.get(f"/jobs/{job['id']}").json()["state"] == "cancelled"


def test_quotas_are_set_and_shown_through_the_cli(server: LiveServer, spec: Path) -> None:
    assert cli(server, "quotas", "set", "default", "--max-cpus", "2", "--max-jobs", "3").returncode == 0
    [default] = [q for q in json.loads(cli(server, "quotas", "show", "--json").stdout) if q["project"] == "default"]
    assert (default["max_cpus"], default["max_jobs"], default["max_gpus"]) == (2.0, 3, None)
    refused = cli(server, "jobs", "submit", str(spec), "--workers", "3")
    assert refused.returncode == 1 and "can never start: it needs 3 CPUs" in refused.stderr
    assert cli(server, "quotas", "set", "default", "--max-cpus", "-1", "--max-jobs", "-1").returncode == 0


def test_a_server_killed_during_submissions_loses_or_halves_no_job(tmp_path: Path) -> None:
    home, token = tmp_path / "home", secrets.token_urlsafe(32)
    proc, server = start_server(home, token, "--no-jobs", env=SERVER_ENV)
    acknowledged: dict[str, str] = {}
    sent: set[str] = set()

    def fire(worker: int) -> None:
        with api(server) as client:
            for n in range(10_000):
                key = f"crash-{worker}-{n}"
                sent.add(key)
                try:
                    response = client.post(
                        "/jobs", json={"pipeline": JOB_SPEC, "path_name": "data.yaml"}, headers={"Idempotency-Key": key}
                    )
                except httpx.HTTPError:
                    return  # the server died under this request
                acknowledged[key] = response.json()["id"]

    threads = [threading.Thread(target=fire, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    wait_until(
        lambda: len(acknowledged) >= 30 or not any(t.is_alive() for t in threads),
        "30 acknowledged submissions",
        every=0.01,
    )
    assert len(acknowledged) >= 30, "the clients stopped before the server was killed"
    kill_tree(proc)  # mid-stream: requests are in flight
    for t in threads:
        t.join()
    proc, server = start_server(home, token, "--no-jobs", env=SERVER_ENV)
    try:
        with api(server) as client:
            jobs = client.get("/jobs", params={"limit": 1000}).json()
            by_key = {j["idempotency_key"]: j for j in jobs}
            assert len(by_key) == len(jobs), "two jobs share an idempotency key"
            assert set(acknowledged) <= set(by_key), "an acknowledged job was lost"
            assert set(by_key) <= sent
            for j in jobs:  # each job there is whole
                full = client.get(f"/jobs/{j['id']}").json()
                assert (full["spec_text"], full["state"], full["pipeline"]) == (JOB_SPEC, "queued", "digits-data")
            for key in sorted(sent):  # every client retries whatever it sent: nothing is made twice
                response = client.post(
                    "/jobs", json={"pipeline": JOB_SPEC, "path_name": "data.yaml"}, headers={"Idempotency-Key": key}
                )
                assert response.status_code == (200 if key in by_key else 201)
                assert key not in acknowledged or response.json()["id"] == acknowledged[key]
            assert len(client.get("/jobs", params={"limit": 1000}).json()) == len(sent)
    finally:
        stop(proc)


def test_a_job_running_when_its_server_dies_is_resumed_by_the_next_one(tmp_path: Path) -> None:
    home, token = tmp_path / "home", secrets.token_urlsafe(32)
    proc, server = start_server(home, token, env=SERVER_ENV)
    with api(server) as client:
        spec = JOB_SPEC + "      split: {val: 0.1, test: 0.1}\n"  # not the cached spec: this one really runs
        job = client.post("/jobs", json={"pipeline": spec, "path_name": "data.yaml"}).json()
        wait_for(client, job["id"], ("running",))
        # The test sets the pace: the job's process is paused as soon as it is seen running, so it cannot
        # finish before the server dies, however busy the machine is (it needs seconds; the test, milliseconds).
        worker = wait_until(
            lambda: job_process(proc.pid, job["id"]) or client.get(f"/jobs/{job['id']}").json()["state"] != "running",
            "the job's process",
        )
        assert isinstance(worker, psutil.Process), "the job ended before the server could be killed under it"
        worker.suspend()
        assert client.get(f"/jobs/{job['id']}").json()["state"] == "running"
    kill_tree(proc)  # the job's process goes with it
    proc, server = start_server(home, token, env=SERVER_ENV)
    try:
        with api(server) as client:
            done = wait_for(client, job["id"], ("succeeded", "failed"))
            assert done["state"] == "succeeded" and done["attempts"] == 2, done
            assert [j["id"] for j in client.get("/jobs").json()] == [job["id"]]
            assert job_audit(client)[:3] == ["job.succeed", "job.start", "job.requeue"]
    finally:
        stop(proc)
