"""A Redfish BMC for the telemetry and alert tests: sushy-static on 127.0.0.1 over a copy of the shipped mockup,
whose files a test edits to change a reading (sushy-static reads them on every GET)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.api.conftest import free_port

MOCKUP = Path(__file__).parent / "redfish_mockup"


@pytest.fixture()
def bmc(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The BMC's URL and its mockup folder (edit its files to change a reading)."""
    sushy = Path(sys.executable).with_name("sushy-static")
    if not sushy.exists():
        pytest.skip("the Redfish tests need sushy-tools: pip install sushy-tools")
    tree = tmp_path / "mockup"
    shutil.copytree(MOCKUP, tree)
    port = free_port()
    proc = subprocess.Popen(
        [str(sushy), "-i", "127.0.0.1", "-p", str(port), "-m", str(tree)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/redfish/v1/", timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("sushy-static did not start") from None
            time.sleep(0.05)
    try:
        yield url, tree
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def replace_json(path: Path, doc: object) -> None:
    """Write a mockup file atomically: sushy-static never reads half of it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
    os.replace(tmp, path)


def set_reading(tree: Path, rel: str, change: dict[str, object], where: str, index: int) -> None:
    """Replace one reading in the mockup."""
    path = tree / rel / "index.json"
    doc = json.loads(path.read_text())
    doc[where][index].update(change)
    replace_json(path, doc)
