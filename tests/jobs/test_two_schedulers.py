"""Two servers' schedulers racing on one store (two real processes, as two `aidc server` on one database would be):
every queued job is started once, by one of them, and neither takes the other's running jobs for dead.

Each process runs the real Scheduler over the shared store (a SQLite file, or one PostgreSQL database) with the
real process launcher's liveness check (pid and start time); what a job's process does is a stand-in (a real OS
process that waits for the test, instead of a job on Ray: a mock where a real job would take a minute each). The
cluster is a stand-in too, big enough for every job, so that only the race decides who starts what.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from tests.api.conftest import JOB_SPEC
from tests.conftest import fresh_postgres
from tests.pace import HANG_S, wait_until

from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings

JOBS = 40
ROOT = Path(__file__).resolve().parents[2]

# One server's scheduler: waits for the go file, passes until no job is queued and then a few more (where one
# scheduler could take the other's jobs for dead and requeue them), says so, and keeps its jobs' processes alive
# until the test closes its stdin.
SCHEDULER = """\
import os, subprocess, sys, time
from pathlib import Path

import psutil

from aidc.jobs.launcher import ProcessLauncher
from aidc.jobs.queue import Resources
from aidc.jobs.scheduler import Scheduler
from aidc.platform import Platform


class Cluster:
    address = ""

    def capacity(self):
        return Resources(1000, 0)

    def available(self):
        return self.capacity()

    def place_gang(self, bundles, timeout_s):
        return True


class Launcher(ProcessLauncher):
    # the real launcher's alive() and stop(); the job's process is a stand-in that waits for its stdin to close
    def start(self, job_id, *, resume):
        proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
        self._children[proc.pid] = proc
        with open(os.environ["STARTED_LOG"], "a") as log:
            log.write(f"{job_id} {os.getpid()}\\n")
        return f"{self.host}:{proc.pid}:{psutil.Process(proc.pid).create_time():.2f}"


platform = Platform()
launcher = Launcher(Path(os.environ["AIDC_HOME"]), {})
scheduler = Scheduler(platform.metadata, platform.security, Cluster(), launcher, stop_checkpoint_s=60,
                      starve_after_s=3600)
go = Path(os.environ["GO_FILE"])
while not go.exists():
    time.sleep(0.01)
extra = 0
while extra < 5:
    scheduler.tick()
    if not platform.metadata.list_jobs(states=("queued",), limit=1):
        extra += 1
print("settled", flush=True)
sys.stdin.read()
for child in launcher._children.values():
    child.stdin.close()
    child.wait()
platform.close()
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIDC_")}
    base |= {"AIDC_HOME": str(tmp_path / "home"), "STARTED_LOG": str(tmp_path / "started.log")}
    base |= {"GO_FILE": str(tmp_path / "go")}
    with ExitStack() as stack:
        if request.param == "postgres":
            base["AIDC_METADATA_URL"] = stack.enter_context(fresh_postgres())
        yield base


def test_two_schedulers_on_one_store_start_each_job_once_and_leave_each_others_running(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIDC_HOME", env["AIDC_HOME"])
    if "AIDC_METADATA_URL" in env:
        monkeypatch.setenv("AIDC_METADATA_URL", env["AIDC_METADATA_URL"])
    platform = Platform(Settings())
    try:
        jobs = [
            platform.jobs.submit(
                local_access(), spec_text=JOB_SPEC, path_name="data.yaml", project="default", idempotency_key=f"j{i}"
            )[0]["id"]
            for i in range(JOBS)
        ]
        servers = [
            subprocess.Popen(
                [sys.executable, "-c", SCHEDULER],
                env=env,
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        try:
            Path(env["GO_FILE"]).touch()  # both race from here
            for server in servers:
                assert server.stdout is not None
                assert server.stdout.readline().strip() == "settled", f"a scheduler exited with {server.wait()}"
            started = Counter(line.split()[0] for line in Path(env["STARTED_LOG"]).read_text().splitlines())
            assert started == Counter(jobs), "a job was started twice, or not at all"
            # and neither scheduler took the other's jobs for dead: all still running, each on its first attempt
            found = {job.id: (job.state, job.attempts) for job in platform.metadata.list_jobs(limit=100)}
            assert found == dict.fromkeys(jobs, ("running", 1))
            starts = platform.security.audit_list(action="job.start", limit=100)
            assert sorted(e.target for e in starts) == sorted(f"job:{j}" for j in jobs)
            assert not platform.security.audit_list(action="job.requeue", limit=100)
        finally:
            for server in servers:
                if server.poll() is None:
                    server.communicate("", timeout=HANG_S)
            wait_until(lambda: all(s.poll() is not None for s in servers), "both schedulers ending")
    finally:
        platform.close()
