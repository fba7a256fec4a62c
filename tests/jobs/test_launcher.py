"""Job processes as a restarted server finds them: re-attached by pid and start time, never a reused pid."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from aidc.jobs.launcher import ProcessLauncher


def test_a_process_of_a_previous_server_is_recognised_by_pid_and_start_time(tmp_path: Path) -> None:
    # a stand-in job process: sleeps until interrupted, as a job does until its stage ends
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        started = psutil.Process(proc.pid).create_time()
        launcher = ProcessLauncher(tmp_path, {})  # a new server: the process is not its child
        worker = f"{socket.gethostname()}:{proc.pid}:{started:.2f}"
        assert launcher.alive(worker)
        assert not launcher.alive(f"{socket.gethostname()}:{proc.pid}:{started - 5:.2f}")  # the pid, reused
        assert not launcher.alive(f"another-host:{proc.pid}:{started:.2f}")
        launcher.stop(worker)  # SIGINT: a job stops its stage and records its run as interrupted
        assert proc.wait(timeout=10) == -signal.SIGINT or proc.returncode == 1
        assert not launcher.alive(worker)
    finally:
        proc.kill()
        proc.wait()
