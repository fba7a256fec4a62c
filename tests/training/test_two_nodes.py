"""Training on a real two-node Ray cluster on this machine: one worker per node, artifacts only through S3, and
one node's raylet killed mid-training — the run resumes on the other node by itself and finishes.

Real engines: two `ray start` raylets (the head with its own temp dir; the second joins the head's session, as
Ray's worker nodes do), token authentication, the moto S3 server as the artifact store (no local artifact path
is shared between the nodes), SQLite for the metadata. Only the processes this test started are stopped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aidc.pipeline.runner import RunObserver
from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings

pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location("contract_conftest", Path(__file__).parents[1] / "contract/conftest.py")
assert _spec is not None and _spec.loader is not None
_contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_contract)
moto_s3_url = _contract.moto_s3_url  # the contract suites' moto server fixture, shared

PIPELINE = """pipeline: digits-two-nodes
stages:
  - name: data
    uses: data
    with: {source: "sklearn:digits"}
  - name: train
    uses: train
    inputs: {data: data.splits}
    with: {model: mlp, epochs: 3, workers: 2, min_workers: 1, batch_size: 4, early_stopping: null}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _wait_for(check: Any, what: str, timeout_s: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class TwoNodes:
    def __init__(self, root: Path) -> None:
        self.root, self.procs = root, []
        self.port = _free_port()
        self.temp_dir = Path(f"/tmp/aidc-rt-{secrets.token_hex(3)}")  # short: Ray's socket paths have a limit
        self.env = {
            **os.environ,
            **_contract.MOTO_ENV,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",  # ray start's multi-node mode (node IP = this host's)
        }
        self.ip = ""

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        ray = str(Path(sys.executable).with_name("ray"))
        log = (self.root / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [ray, "start", "--block", "--disable-usage-stats", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def up(self) -> None:
        self._start(
            "head",
            [
                "--head",
                "--port",
                str(self.port),
                "--num-cpus",
                "1",
                "--resources",
                json.dumps({"node_a": 1}),
                "--temp-dir",
                str(self.temp_dir),
                "--dashboard-port",
                str(_free_port()),
            ],
        )
        log = self.root / "head.log"
        found = _wait_for(lambda: re.search(r"Local node IP: (\S+)", log.read_text()), "the head node")
        self.ip = found[1]
        _wait_for(lambda: "Ray runtime started" in log.read_text(), "the head node")
        self.node_b = self._start(
            "node-b",
            [
                "--address",
                f"{self.ip}:{self.port}",
                "--num-cpus",
                "1",
                "--resources",
                json.dumps({"node_b": 1}),
                "--include-log-monitor",
                "false",
                "--dashboard-agent-listen-port",
                str(_free_port()),
            ],
        )
        _wait_for(lambda: "Ray runtime started" in (self.root / "node-b.log").read_text(), "node_b")

    def other_raylet(self) -> int:
        """The raylet of the node this test's driver is not attached to (two raylets share this host's IP; the
        driver may be on either): losing it loses a node, not the run's own driver."""
        import psutil
        import ray

        here = ray.get_runtime_context().get_node_id()
        mine = next(n["Resources"] for n in ray.nodes() if n["NodeID"] == here)
        other = self.node_b if "node_a" in mine else self.procs[0]  # procs[0]: the head's `ray start`
        return next(c.pid for c in psutil.Process(other.pid).children(recursive=True) if c.name() == "raylet")

    def down(self) -> None:
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture()
def two_nodes(tmp_path: Path, moto_s3_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TwoNodes]:
    import ray._private.ray_constants as constants

    cluster = TwoNodes(tmp_path)
    try:
        cluster.up()
        for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"):
            monkeypatch.setenv(name, cluster.env[name])
        monkeypatch.setattr(constants, "ENABLE_RAY_CLUSTER", True)  # an earlier local Ray here may have turned it off
        from aidc.cluster.compute import reload_ray_auth

        reload_ray_auth()
        yield cluster
    finally:
        import ray

        from aidc.cluster.compute import reload_ray_auth

        ray.shutdown()
        cluster.down()
        monkeypatch.undo()  # this process's Ray auth back as it was (Ray caches the token: reload it too)
        reload_ray_auth()


class KillTheOtherNode(RunObserver):
    def __init__(self, cluster: TwoNodes) -> None:
        self.cluster, self.killed, self.nodes = cluster, False, []

    def stage_event(self, event: dict[str, Any]) -> None:
        if event["type"] == "log" and (found := re.match(r"(\d) worker\(s\) on (\d) node\(s\)", event["message"])):
            self.nodes.append((int(found[1]), int(found[2])))
        if not self.killed and event["type"] == "progress" and event["task"] == "epochs" and event["completed"] == 1:
            os.kill(self.cluster.other_raylet(), signal.SIGKILL)
            self.killed = True


def test_training_spans_two_nodes_through_s3_and_survives_losing_one(
    tmp_path: Path, two_nodes: TwoNodes, moto_s3_url: str
) -> None:
    import ray

    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PIPELINE)
    settings = Settings(
        home=tmp_path / "home",
        ray_address=f"{two_nodes.ip}:{two_nodes.port}",
        artifact_url="s3://aidc-two-nodes/artifacts",
        s3_endpoint_url=moto_s3_url,
    )
    platform = Platform(settings)
    observer = KillTheOtherNode(two_nodes)
    try:
        ray.init(address=settings.ray_address, log_to_driver=False)
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        result = platform.runs.run_pipeline(local_access(), spec, observer=observer)
        log = (tmp_path / "home" / "runs" / result.run_id / "train.log").read_text()
        assert result.status == "succeeded", log
        assert observer.killed
        # first a worker on each node (1 CPU each), then, with one node gone, one on the other
        assert observer.nodes[0] == (2, 2) and observer.nodes[-1] == (1, 1), log
        assert re.search(r"worker failure 1 of at most 1: worker \d \(pid \d+\) died", log), log
        summary = result.outputs["train"]["summary"]
        assert summary["epochs_run"] == 3 and summary["workers"] == 1 and summary["worker_failures"] == 1
        # every checkpoint is in the bucket, none on a local path
        checkpoints = platform.metadata.artifacts(run_id=result.run_id, kind="checkpoint")
        assert checkpoints and all(a.uri.startswith("s3://aidc-two-nodes/") for a in checkpoints)
        assert not (tmp_path / "home" / "artifacts").exists()
        val = sorted(m.step for m in platform.metadata.metrics(result.run_id, stage="train") if m.name == "val_loss")
        assert val == [1, 2, 3]
    finally:
        platform.close()
