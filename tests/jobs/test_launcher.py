"""Job processes as a restarted server finds them: re-attached by pid and start time, never a reused pid; and a
job process stops on the server's SIGINT even where the server itself was started with SIGINT ignored."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from aidc.jobs.launcher import ProcessLauncher

# A generous bound that only a hung process reaches: the tests wait for events, this is the backstop.
HANG_S = 120


def _ignoring_sigint() -> None:
    """What a shell does to a command it starts in the background (`aidc server &` in a script, `nohup`-like
    supervisors): SIGINT ignored, and inherited by every process started from it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _process(code: str, *, inherit_ignored_sigint: bool = False) -> Iterator[subprocess.Popen[str]]:
    """A Python process running ``code``; it is ready once it has printed its first line (read here)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_ignoring_sigint if inherit_ignored_sigint else None,  # noqa: PLW1509 - single-threaded here
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()


# a stand-in job process: it sets up its stop signals as a job process does, says so, then waits to be stopped
STAND_IN = (
    "import threading; from aidc.jobs.worker import listen_for_stop; listen_for_stop(); "
    "print('ready', flush=True); threading.Event().wait()"
)


def test_a_process_of_a_previous_server_is_recognised_by_pid_and_start_time(tmp_path: Path) -> None:
    with _process(STAND_IN) as proc:
        started = psutil.Process(proc.pid).create_time()
        launcher = ProcessLauncher(tmp_path, {})  # a new server: the process is not its child
        worker = f"{socket.gethostname()}:{proc.pid}:{started:.2f}"
        assert launcher.alive(worker)
        assert not launcher.alive(f"{socket.gethostname()}:{proc.pid}:{started - 5:.2f}")  # the pid, reused
        assert not launcher.alive(f"another-host:{proc.pid}:{started:.2f}")
        launcher.stop(worker)  # SIGINT: a job stops its stage and records its run as interrupted
        assert proc.wait(timeout=HANG_S) == -signal.SIGINT  # (KeyboardInterrupt: Python exits as killed by SIGINT)
        assert not launcher.alive(worker)


def test_a_job_process_stops_on_sigint_even_when_started_with_sigint_ignored(tmp_path: Path) -> None:
    """A server started in the background of a script hands its jobs an ignored SIGINT; a job that kept it could
    be neither preempted nor cancelled gracefully, only killed."""
    with _process(STAND_IN, inherit_ignored_sigint=True) as proc:
        started = psutil.Process(proc.pid).create_time()
        worker = f"{socket.gethostname()}:{proc.pid}:{started:.2f}"
        ProcessLauncher(tmp_path, {}).stop(worker)
        assert proc.wait(timeout=HANG_S) == -signal.SIGINT
