"""Job processes: each job runs as its own `python -m aidc.cli.job_process JOB` process, logging to its job.log.

A process rather than a thread of the server: a user's stage that crashes or leaks cannot take the server
down; a job is stopped (preempt, cancel) by a signal without touching the server's own state; one Ray driver
per process, as the runner expects; and a job keeps running while the server restarts, to be re-attached by
its pid (``worker`` = "host:pid:start-time", so a reused pid is never mistaken for it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

LOG_NAME = "job.log"


def job_dir(home: Path, job_id: str) -> Path:
    """Where a job's process works and logs."""
    return home / "jobs" / job_id


class Launcher(Protocol):
    def start(self, job_id: str, *, resume: bool) -> str:
        """Start the job's process; returns its ``worker`` handle."""

    def alive(self, worker: str) -> bool: ...
    def stop(self, worker: str, *, force: bool = False) -> None:
        """Ask the job to stop (its training checkpoints where it is; the run is resumable); ``force`` kills it."""


class ProcessLauncher:
    def __init__(self, home: Path, env: dict[str, str], ray_address: Callable[[], str] = lambda: "") -> None:
        self.home = home
        self.env = env  # the settings the server runs with, for the job's own Platform
        self.ray_address = ray_address  # the cluster the scheduler placed the job's gang on
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self.host = socket.gethostname()

    def start(self, job_id: str, *, resume: bool) -> str:
        import psutil

        folder = job_dir(self.home, job_id)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / LOG_NAME).open("ab") as log:
            # its own session: a Ctrl-C meant for the server's terminal must not stop the jobs
            env = self.env | {"AIDC_RAY_ADDRESS": self.ray_address()}
            proc = subprocess.Popen(
                [sys.executable, "-m", "aidc.cli.job_process", job_id],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=folder,
            )
        self._children[proc.pid] = proc
        try:
            started = psutil.Process(proc.pid).create_time()
        except psutil.NoSuchProcess:
            started = 0.0
        return f"{self.host}:{proc.pid}:{started:.2f}"

    def _pid(self, worker: str) -> int | None:
        host, _, rest = worker.partition(":")
        pid, _, started = rest.partition(":")
        if host != self.host or not pid.isdigit():
            return None
        return int(pid)

    def alive(self, worker: str) -> bool:
        import psutil

        pid = self._pid(worker)
        if pid is None:
            return False
        child = self._children.get(pid)
        if child is not None:
            if child.poll() is None:
                return True
            del self._children[pid]
            return False
        try:  # a job of a previous server process: re-attached by pid and start time
            proc = psutil.Process(pid)
            started = worker.rsplit(":", 1)[-1]
            return proc.status() != psutil.STATUS_ZOMBIE and f"{proc.create_time():.2f}" == started
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False

    def stop(self, worker: str, *, force: bool = False) -> None:
        pid = self._pid(worker)
        if pid is None or not self.alive(worker):
            return
        try:
            if force:
                os.killpg(pid, signal.SIGKILL)  # the job's whole session: its stage processes too
            else:
                os.kill(
                    pid, signal.SIGINT
                )  # the runner has the stage checkpoint and stop, records the run as interrupted
        except ProcessLookupError:
            pass

    def exit_code(self, worker: str) -> int | None:
        pid = self._pid(worker)
        child = self._children.get(pid) if pid is not None else None
        return child.poll() if child is not None else None
