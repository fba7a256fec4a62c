"""Fixtures for backend contract suites: a moto S3 server on 127.0.0.1 for the artifact store tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

MOTO_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    # The region comes from here, never from client_kwargs: s3fs would then send LocationConstraint=us-east-1,
    # which S3 (and moto) reject on bucket creation.
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Variables that would point boto at a real account or profile instead of the throwaway server.
AWS_ENV_TO_CLEAR = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")
MOTO_READY_TIMEOUT_S = 300.0  # (only a hang reaches it; a busy machine starts moto slowly)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_ready(url: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + MOTO_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"moto server exited with {server.returncode}: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(
        f"moto server at {url} not ready after {MOTO_READY_TIMEOUT_S:.0f}s: {log_path.read_text()[-2000:]}"
    )


@pytest.fixture(scope="session")
def moto_s3_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a moto S3 server (in-memory) started for this session on 127.0.0.1, with test credentials set."""
    pytest.importorskip("moto.server", reason="S3 tests need moto's server: pip install 'moto[server]'")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {k: v for k, v in os.environ.items() if k not in AWS_ENV_TO_CLEAR} | MOTO_ENV
    with pytest.MonkeyPatch.context() as mp, log_path.open("wb") as log:
        for name, value in MOTO_ENV.items():
            mp.setenv(name, value)
        for name in AWS_ENV_TO_CLEAR:
            mp.delenv(name, raising=False)
        # Keep a developer's ~/.aws out of the picture.
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_ready(url, server, log_path)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
