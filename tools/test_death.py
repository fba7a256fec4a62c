"""Say where a pytest run that ended without its summary was, and what Ray logged for it.

`make test` runs this when pytest fails. tests/conftest.py keeps the running test's id and pytest's pid in the file
named by AIDC_TEST_RUNNING and removes it when the session ends normally; so a file still there means the process
was ended from underneath (a signal, or a native library's _exit). Ray's driver logs go to files, not the terminal:
the tail of the pytest process's own driver log and its raylet's log are printed too.

    python tools/test_death.py .pytest-running
"""

from __future__ import annotations

import sys
from pathlib import Path

RAY_SESSIONS = Path("/tmp/ray")
TAIL = 25


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines()[-TAIL:]
    return "\n".join(f"    {line}" for line in lines)


def main(running_file: str) -> int:
    running = Path(running_file)
    if not running.exists():
        return 0  # the session ended normally: pytest's own summary says what failed
    nodeid, _, rest = running.read_text().partition("\n")
    pid = rest.strip()
    print(f"\npytest (pid {pid}) ended without its summary while running:\n    {nodeid}")
    logs = sorted(RAY_SESSIONS.glob(f"session_*/logs/python-core-driver-*_{pid}.log"), key=lambda p: p.stat().st_mtime)
    if logs:
        driver = logs[-1]
        print(f"\nits Ray driver log, {driver}:\n{_tail(driver)}")
        raylet = driver.parent / "raylet.out"
        if raylet.exists():
            print(f"\nthat session's raylet log, {raylet}:\n{_tail(raylet)}")
    running.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
