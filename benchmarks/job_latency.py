"""Submit → running, through a real `aidc server` on a fresh AIDC_HOME (issue 6's goal: ≤ 1 s when resources are free).

Each job is the digits data stage (after the first, a cache hit: the job's process ends in about two seconds);
the next one is submitted once the previous has ended, so the cluster is free every time. Two figures per job:
  - submit → running: the POST is sent until GET /jobs/ID says "running" (the scheduler claimed the job, its
    gang placed by a Ray placement group, its process spawned); polled every 5 ms;
  - submit → process up: until the job's process has written its first log line (Python and aidc imported,
    the job read back from the store).
The first job is reported apart: it includes starting the server's Ray.

Run: .venv/bin/python benchmarks/job_latency.py [--jobs 10]
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

SPEC = """pipeline: digits-data
stages:
  - name: data
    uses: data
    with:
      source: sklearn:digits
"""
GOAL_S = 1.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(home: Path, token: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIDC_")}
    env |= {"AIDC_HOME": str(home), "AIDC_ADMIN_TOKEN": token, "AIDC_RAY_NUM_CPUS": "2"}
    aidc = str(Path(sys.executable).with_name("aidc"))
    log = (home.parent / "server.log").open("wb")
    proc = subprocess.Popen([aidc, "server", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("aidc server did not come up in 60 s")


def one_job(client: httpx.Client, home: Path) -> tuple[float, float, float]:
    """(submit → running, submit → process up, submit → finished) in seconds."""
    began = time.perf_counter()
    job = client.post("/jobs", json={"pipeline": SPEC, "path_name": "data.yaml"}).json()
    log = home / "jobs" / job["id"] / "job.log"
    running = up = None
    while True:
        now = time.perf_counter()
        if up is None and log.exists() and log.stat().st_size > 0:
            up = now - began
        state = client.get(f"/jobs/{job['id']}").json()["state"]
        if running is None and state != "queued":
            running = now - began
        if state in ("succeeded", "failed", "cancelled"):
            if state != "succeeded":
                error = client.get(f"/jobs/{job['id']}").json()["last_error"]
                raise SystemExit(f"job {job['id']} {state}: {error}")
            return running, up if up is not None else now - began, now - began
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10)
    args = parser.parse_args()
    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        proc, url = start_server(home, token)
        try:
            client = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=60)
            cold = one_job(client, home)
            rows = [one_job(client, home) for _ in range(args.jobs)]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"aidc server on a fresh AIDC_HOME, SQLite, local Ray with 2 CPUs; {args.jobs} jobs after a first one\n")
    print(
        f"first job (starts the server's Ray): submit → running {cold[0]:.3f} s, process up {cold[1]:.3f} s, "
        f"finished {cold[2]:.2f} s\n"
    )
    print(f"{'':24}{'median':>10}{'max':>10}{'goal':>8}{'median/goal':>13}")
    for name, i in (("submit → running", 0), ("submit → process up", 1), ("submit → finished", 2)):
        values = [r[i] for r in rows]
        goal = f"{GOAL_S:g} s" if i == 0 else ""
        ratio = f"{statistics.median(values) / GOAL_S:.3f}" if i == 0 else ""
        print(f"{name:24}{statistics.median(values):>9.3f}s{max(values):>9.3f}s{goal:>8}{ratio:>13}")


if __name__ == "__main__":
    main()
