"""How the suite waits: for an event the system under test shows, with a bound that only a hang reaches; and how a
test sets the pace of a stage that would otherwise race it (its training workers paused while the test acts)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

# Generous on purpose: on a busy machine everything takes longer, and only a true hang should reach this.
HANG_S = 1200.0


def wait_until(check: Callable[[], Any], what: str, *, timeout: float = HANG_S, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy (returned); fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"no sign of {what} after {timeout:g} s"
        time.sleep(every)


def train_workers(pid: int) -> list[Any]:
    """The training workers training now below process ``pid`` (a command's own Ray, or a server's and its jobs'):
    pooled ``TrainWorker`` actors running a training (``.run``); idle pooled ones are left alone."""
    import psutil

    found = []
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if " ".join(child.cmdline()).startswith("ray::TrainWorker.run"):
                found.append(child)
    return found


@contextlib.contextmanager
def paused(processes: list[Any]) -> Iterator[None]:
    """SIGSTOP the processes for the block and SIGCONT them after: a stage cannot finish while the test acts."""
    import psutil

    for proc in processes:
        proc.suspend()
    try:
        yield
    finally:
        for proc in processes:
            with contextlib.suppress(psutil.Error):
                proc.resume()
