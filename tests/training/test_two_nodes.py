"""Training on a real two-node Ray cluster on this machine: one worker per node, artifacts only through S3, and
one node's raylet killed mid-training — the run resumes on the other node by itself, finishes, and the lost node
is cordoned (its failure counted); and stages placed by the facility spec's node labels (training on the GPU
node, preprocessing on the CPU node).

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
from tests.pace import wait_until

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
    """Two raylets: the head (``node_a`` resource) and a second one (``node_b``), each named by its ``aidc.node``
    label. ``hold``: the training workers' hold file (training.worker.HOLD_FILE): they wait after the epoch it
    names while it exists, so a test acts at an exact point of training."""

    def __init__(self, root: Path, names: tuple[str, str] = ("node-a", "node-b")) -> None:
        self.root, self.procs, self.names = root, [], names
        self.hold = root / "hold"
        self.port = _free_port()
        self.temp_dir = Path(f"/tmp/aidc-rt-{secrets.token_hex(3)}")  # short: Ray's socket paths have a limit
        self.env = {
            **os.environ,
            **_contract.MOTO_ENV,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",  # ray start's multi-node mode (node IP = this host's)
            "AIDC_TEST_HOLD_FILE": str(self.hold),
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
                "--labels",
                f"aidc.node={self.names[0]}",
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
                "--labels",
                f"aidc.node={self.names[1]}",
            ],
        )
        _wait_for(lambda: "Ray runtime started" in (self.root / "node-b.log").read_text(), "node_b")

    def other_raylet(self) -> tuple[int, str]:
        """The raylet of the node this test's driver is not attached to (two raylets share this host's IP; the
        driver may be on either), and that node's name: losing it loses a node, not the run's own driver."""
        import psutil
        import ray

        here = ray.get_runtime_context().get_node_id()
        mine = next(n["Resources"] for n in ray.nodes() if n["NodeID"] == here)
        other = self.node_b if "node_a" in mine else self.procs[0]  # procs[0]: the head's `ray start`
        name = self.names[1] if "node_a" in mine else self.names[0]
        pid = next(c.pid for c in psutil.Process(other.pid).children(recursive=True) if c.name() == "raylet")
        return pid, name

    def node_ids(self) -> dict[str, str]:
        """Ray node id → the node's name (its aidc.node label)."""
        import ray

        return {n["NodeID"]: n["Labels"]["aidc.node"] for n in ray.nodes() if n["Alive"]}

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
def two_nodes(
    tmp_path: Path, moto_s3_url: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[TwoNodes]:
    import ray._private.ray_constants as constants

    cluster = TwoNodes(tmp_path, getattr(request, "param", ("node-a", "node-b")))
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
    """Kills the other node's raylet while the workers hold after epoch 1 (its checkpoint reported): always
    mid-training, however slow or fast the machine is."""

    def __init__(self, cluster: TwoNodes) -> None:
        self.cluster, self.killed, self.nodes = cluster, "", []
        cluster.hold.write_text("epoch:1")

    def stage_event(self, event: dict[str, Any]) -> None:
        if event["type"] == "log" and (found := re.match(r"(\d) worker\(s\) on (\d) node\(s\)", event["message"])):
            self.nodes.append((int(found[1]), int(found[2])))
        if not self.killed and event["type"] == "progress" and event["task"] == "epochs" and event["completed"] == 1:
            held = Path(f"{self.cluster.hold}.held")
            wait_until(held.exists, "the training workers holding after epoch 1", timeout=120)
            pid, self.killed = self.cluster.other_raylet()
            os.kill(pid, signal.SIGKILL)
            self.cluster.hold.unlink()  # the survivor goes on, finds its peer gone: a failure, then the resume


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
        node_failure_limit=1,  # one lost worker cordons its node
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
        # the lost node's failure is kept, and (limit 1) it is cordoned by the system, which the log says
        failures = platform.metadata.node_failures()
        assert [(f.node, f.run_id) for f in failures] == [(observer.killed, result.run_id)]
        assert platform.metadata.cordoned_nodes() == {observer.killed}
        assert f"node {observer.killed} cordoned: 1 failures within 3600 s" in log, log
    finally:
        platform.close()


LABELLED = """pipeline: digits-by-labels
stages:
  - name: data
    uses: data
    with: {source: "sklearn:digits"}
  - name: train
    uses: train
    inputs: {data: data.splits}
    with: {model: mlp, epochs: 1, workers: 1, batch_size: 64, early_stopping: null}
"""

NOWHERE = """pipeline: digits-nowhere
stages:
  - name: data
    uses: data
    with: {source: "sklearn:digits"}
    node_labels: {zone: moon}
"""


def _lab_with_labels(tmp_path: Path) -> Path:
    """The lab facility with one GPU server labelled for training and one CPU server for preprocessing."""
    import yaml

    doc = yaml.safe_load((Path(__file__).parents[2] / "examples/facilities/lab-two-servers.yaml").read_text())
    gpu = next(n for n in doc["nodes"] if n["name"] == "gpu")
    cpu = {**gpu, "name": "cpu", "model": "1U CPU server", "gpus": 0, "gpu_type": None}
    gpu |= {"count": 1, "labels": {"workload": "training"}}
    cpu |= {"count": 1, "labels": {"workload": "preprocessing"}}
    doc["nodes"].append(cpu)
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("two_nodes", [("cpu-001", "gpu-001")], indirect=True)
def test_stages_run_on_the_nodes_the_facility_spec_labels_for_their_work(
    tmp_path: Path, two_nodes: TwoNodes, moto_s3_url: str
) -> None:
    import ray

    from aidc.errors import InvalidInput

    spec = tmp_path / "pipeline.yaml"
    spec.write_text(LABELLED)
    settings = Settings(
        home=tmp_path / "home",
        ray_address=f"{two_nodes.ip}:{two_nodes.port}",
        artifact_url="s3://aidc-two-nodes/artifacts",
        s3_endpoint_url=moto_s3_url,
        facility=str(_lab_with_labels(tmp_path)),
    )
    platform = Platform(settings)
    try:
        ray.init(address=settings.ray_address, log_to_driver=False)
        by_name = {name: node for node, name in two_nodes.node_ids().items()}
        result = platform.runs.run_pipeline(local_access(), spec)
        runs = tmp_path / "home" / "runs" / result.run_id
        data_log, train_log = (runs / "data.log").read_text(), (runs / "train.log").read_text()
        assert result.status == "succeeded", train_log
        # the data stage ran on the CPU server, the training worker on the GPU server (their spec labels)
        assert "runs on the node(s) labelled workload=preprocessing: cpu-001" in data_log, data_log
        assert f"running on Ray node {by_name['cpu-001']}" in data_log, data_log
        assert "its workers run on the node(s) labelled workload=training: gpu-001" in train_log, train_log
        assert f"Ray nodes {by_name['gpu-001']})" in train_log, train_log

        # a stage asking for labels no node carries fails at once, saying where and what the nodes carry
        nowhere = tmp_path / "nowhere.yaml"
        nowhere.write_text(NOWHERE)
        with pytest.raises(InvalidInput, match=r"asks for nodes labelled zone=moon.*workload=preprocessing") as exc:
            platform.runs.run_pipeline(local_access(), nowhere, force=True)  # (not from the cache)
        assert exc.value.where is not None and exc.value.where.endswith("nowhere.yaml:3")
    finally:
        platform.close()


def _raylet_of(pid: int) -> int | None:
    """The raylet a process runs under (its nearest ``raylet`` ancestor): which node of the two it is on; None for
    a process left behind by a lost node (or gone)."""
    import psutil

    try:
        return next((p.pid for p in psutil.Process(pid).parents() if p.name() == "raylet"), None)
    except psutil.Error:
        return None


def _process(prefix: str) -> int:
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        if " ".join(proc.info["cmdline"] or []).startswith(prefix):
            return int(proc.pid)
    raise AssertionError(f"no process {prefix}")


def test_a_serving_replica_on_a_lost_node_is_recreated_on_the_other(
    tmp_path: Path, two_nodes: TwoNodes, moto_s3_url: str
) -> None:
    import numpy as np
    from tests.serving.conftest import build_classifier

    settings = Settings(
        home=tmp_path / "home",
        ray_address=f"{two_nodes.ip}:{two_nodes.port}",
        artifact_url="s3://aidc-two-nodes/artifacts",
        s3_endpoint_url=moto_s3_url,
    )
    platform = Platform(settings)
    try:
        onnx = build_classifier(tmp_path / "classifier.onnx")
        ref = platform.artifacts.put_file(onnx)
        version = platform.metadata.register_model_version(
            "spread", onnx_digest=ref.digest, checkpoint_digest=None, run_id=None, dataset_version_id=None, metrics={}
        )
        platform.deployments.deploy(local_access(), version.ref, replicas=2, cpus=0.5)
        show = lambda: platform.deployments.show(local_access(), "spread")  # noqa: E731
        replicas = show()["replica_list"]
        assert [r["status"] for r in replicas] == ["ready", "ready"], replicas
        controller = _raylet_of(_process("ray::DeploymentController"))
        # a replica on the node the controller is not on (SPREAD put one on each)
        [victim] = [r for r in replicas if _raylet_of(r["pid"]) != controller]
        lost = _raylet_of(victim["pid"])
        assert lost is not None
        os.kill(lost, signal.SIGKILL)

        def moved() -> list[dict[str, Any]] | None:
            now = show()["replica_list"]
            ready = [r for r in now if r["status"] == "ready" and r["pid"]]
            return now if len(ready) == 2 and all(_raylet_of(r["pid"]) == controller for r in ready) else None

        after = wait_until(moved, "the lost node's replica recreated on the other node", timeout=300)
        assert {r["slot"] for r in after} == {0, 1}
        events = [e for e in show()["events"] if e["kind"] == "replica_moved"]
        assert events and f"replica {victim['slot']}" in events[0]["message"] and "lost" in events[0]["message"]
        x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
        npy = tmp_path / "x.npy"
        np.save(npy, x)
        for _ in range(4):  # through the router, to both replicas in turn
            answer = platform.deployments.predict(local_access(), "spread", npy)
            assert np.asarray(answer["outputs"]["probs"]).shape == (3, 3)
    finally:
        for d in platform.deployments.list(local_access()):
            platform.deployments.change(local_access(), "delete", d["name"])
        platform.close()
