"""Say where a pytest run that ended without its summary was, and what Ray logged for it.

`make test` runs this when pytest fails. tests/conftest.py keeps the running test's id and pytest's pid in the file
named by AIDC_TEST_RUNNING and removes it when the session ends normally; so a file still there means the process
was ended from underneath (a signal, or a native library's _exit). Ray's driver logs go to files, not the terminal:
what that process's own driver log said above INFO, and the last lines of it and of its raylet's log, are printed
too. The test's id comes last: CI keeps only the end of the output.

    python tools/test_death.py .pytest-running
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

RAY_SESSIONS = Path("/tmp/ray")
TAIL = 8
LOUD = re.compile(r"^\[[^\]]* [WEFC] \d+ \d+\]")  # a Ray log line at WARNING, ERROR, FATAL or CHECK-failed


def _indent(lines: list[str]) -> str:
    return "\n".join(f"    {line}" for line in lines)


def _driver_report(driver: Path) -> str:
    lines = driver.read_text(errors="replace").splitlines()
    loud = [line for line in lines if LOUD.match(line)][-TAIL:]
    return (
        f"\nits Ray driver log, {driver}:\n  above INFO:\n{_indent(loud) or '    (nothing)'}"
        f"\n  last lines:\n{_indent(lines[-TAIL:])}"
    )


def _raylet_report(raylet: Path) -> str:
    lines = [line for line in raylet.read_text(errors="replace").splitlines() if "[state-dump]" not in line]
    return f"\nthat session's raylet log, {raylet}:\n{_indent(lines[-TAIL:])}"


def main(running_file: str) -> int:
    running = Path(running_file)
    if not running.exists():
        return 0  # the session ended normally: pytest's own summary says what failed
    nodeid, _, rest = running.read_text().partition("\n")
    pid = rest.strip()
    logs = sorted(RAY_SESSIONS.glob(f"session_*/logs/python-core-driver-*_{pid}.log"), key=lambda p: p.stat().st_mtime)
    if logs:
        driver = logs[-1]
        raylet = driver.parent / "raylet.out"
        if raylet.exists():
            print(_raylet_report(raylet))
        print(_driver_report(driver))
    print(f"\npytest (pid {pid}) ended without its summary while running:\n    {nodeid}")
    running.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
