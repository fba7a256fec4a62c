"""A script run in a fresh Python process as a command would run it: aidc from this checkout's src, its own home,
nothing of the test process's environment (no Ray address or token inherited)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).parents[2] / "src")


def run_fresh(script: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": SRC, "AIDC_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home)},
    )
