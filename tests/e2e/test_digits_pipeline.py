"""The main job end to end, as a user runs it: `aidc run` on the digits pipeline from an empty AIDC_HOME.

Real engines throughout: Ray (local, started by the command), Ray Train DDP on 2 CPU workers, ONNX Runtime,
SQLite, the file artifact store and a deployment (router + replica on the serving Ray cluster). Epochs are
cut down to keep the suite short.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from tests.pace import HANG_S, paused, train_workers, wait_until

from aidc.security.roles import local_access

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "digits" / "pipeline.yaml"
AIDC = [str(Path(sys.executable).parent / "aidc")]

pytestmark = pytest.mark.slow


def pipeline_file(tmp: Path, name: str = "pipeline.yaml", **changes: dict[str, Any]) -> Path:
    """The shipped example with some stages' settings changed (fewer epochs in tests)."""
    spec = yaml.safe_load(EXAMPLE.read_text())
    for stage in spec["stages"]:
        stage.setdefault("with", {}).update(changes.get(stage["name"], {}))
    path = tmp / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def aidc(home: Path, *args: str, timeout: float = HANG_S) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIDC_HOME": str(home), "AIDC_RAY_NUM_CPUS": "2"}
    return subprocess.run([*AIDC, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


def platform_for(home: Path):  # noqa: ANN201 - test helper
    from aidc.platform import Platform
    from aidc.settings import Settings

    return Platform(Settings(home=home))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aidc-home")


@pytest.fixture(scope="module")
def first_run(home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    spec = pipeline_file(tmp_path_factory.mktemp("spec"), train={"epochs": 6})
    done = aidc(home, "run", str(spec), "--serve", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    yield result
    platform = platform_for(home)
    for d in result["serving"]:
        platform.deployments.change(
            local_access(), "delete", d["name"]
        )  # the last one takes the serving Ray head with it
    platform.close()


def test_the_run_reaches_a_served_model_that_meets_the_accuracy_bar(first_run: dict[str, Any]) -> None:
    assert first_run["status"] == "succeeded"
    assert [s["name"] for s in first_run["stages"]] == ["data", "train", "evaluate", "export", "register", "deploy"]
    assert all(s["status"] == "succeeded" for s in first_run["stages"])
    metrics = first_run["outputs"]["evaluate"]["metrics"]
    assert metrics["accuracy"] >= 0.95
    assert metrics["n"] == 360 and len(metrics["confusion_matrix"]) == 10
    assert sum(map(sum, metrics["confusion_matrix"])) == 360
    assert Path(first_run["report"]).is_file()


def test_the_model_version_carries_its_full_lineage(first_run: dict[str, Any], home: Path) -> None:
    platform = platform_for(home)
    model = platform.metadata.get_model_version("digits-cnn")
    assert model.stage == "staging" and model.run_id == first_run["run_id"]
    assert model.metrics["accuracy"] == first_run["outputs"]["evaluate"]["metrics"]["accuracy"]
    chain = {(e.src_kind, e.dst_kind): e for e in platform.records.lineage(model)}
    assert set(chain) == {
        ("onnx", "model_version"),
        ("checkpoint", "onnx"),
        ("run", "checkpoint"),
        ("dataset_version", "run"),
    }
    assert chain[("onnx", "model_version")].src_id == model.onnx_digest
    assert chain[("checkpoint", "onnx")].src_id == model.checkpoint_digest
    assert chain[("run", "checkpoint")].src_id == first_run["run_id"]
    dataset = platform.metadata.get_dataset_version(int(chain[("dataset_version", "run")].src_id))
    assert dataset.ref == "digits:1" and dataset.stats["splits"] == {"train": 2334, "val": 270, "test": 360}


def test_the_onnx_file_matches_pytorch_on_the_test_split(first_run: dict[str, Any], home: Path, tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    from aidc.data.preprocess import load_arrays
    from aidc.training.loop import evaluate_arrays
    from aidc.training.zoo import load_weights

    platform = platform_for(home)
    model = platform.metadata.get_model_version("digits-cnn")
    onnx_path = platform.artifacts.get_file(model.onnx_digest, tmp_path / "model.onnx")
    onnx.checker.check_model(str(onnx_path), full_check=True)
    data = load_arrays(platform.artifacts.get_bytes(first_run["outputs"]["data"]["splits"]["artifact"]))
    torch_model = load_weights(
        first_run["outputs"]["train"]["model"], platform.artifacts.get_bytes(model.checkpoint_digest)
    )
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"  # dynamic batch axis
    onnx_out = session.run(None, {"images": data["x_test"]})[0]
    assert np.abs(onnx_out - evaluate_arrays(torch_model, data["x_test"])).max() <= 1e-4


def test_the_live_endpoint_answers_like_offline_evaluation(first_run: dict[str, Any], home: Path) -> None:
    import tritonclient.http as triton

    from aidc.data.preprocess import load_arrays

    (served,) = first_run["serving"]
    assert first_run["outputs"]["deploy"]["checks"]["agreement"] == 1.0
    # --serve left a deployment (replicas behind a router) running after the command returned
    deployment = platform_for(home).deployments.show(local_access(), "digits-cnn")
    assert deployment["managed"] and deployment["live"] and deployment["url"] == served["url"]
    assert deployment["stable"] == "digits-cnn:1" and deployment["ready"] == 1
    data = load_arrays(platform_for(home).artifacts.get_bytes(first_run["outputs"]["data"]["splits"]["artifact"]))
    offline = np.array(first_run["outputs"]["evaluate"]["predictions"]["predicted"])
    # ask it ourselves, with a standard OIP v2 client, in binary tensors
    client = triton.InferenceServerClient(served["url"].removeprefix("http://"))
    assert client.is_server_ready() and client.is_model_ready("digits-cnn")
    request = triton.InferInput("images", list(data["x_test"].shape), "FP32")
    request.set_data_from_numpy(data["x_test"], binary_data=True)
    live = client.infer("digits-cnn", [request]).as_numpy("logits").argmax(axis=1)
    assert (live == offline).all()
    assert (live == data["y_test"]).mean() >= 0.95


def test_an_unchanged_rerun_reuses_every_cached_stage(first_run: dict[str, Any], home: Path, tmp_path: Path) -> None:
    spec = pipeline_file(tmp_path, train={"epochs": 6})
    done = aidc(home, "run", str(spec), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    stages = {s["name"]: s["status"] for s in json.loads(done.stdout)["stages"]}
    assert stages == {
        "data": "cached",
        "train": "cached",
        "evaluate": "cached",
        "export": "cached",
        "register": "cached",
        "deploy": "succeeded",
    }  # a deployment is never taken from cache
    assert len(platform_for(home).metadata.list_model_versions("digits-cnn")) == 1
    # without --serve the check ran on a stand-in, gone now; the deployment --serve left is untouched
    checked = json.loads(done.stdout)["outputs"]["deploy"]["deployment"]["name"]
    assert checked.startswith("digits-cnn-") and json.loads(done.stdout)["serving"] == []
    deployments = {d["name"]: d for d in platform_for(home).deployments.list(local_access(), include_stopped=True)}
    assert deployments[checked]["status"] == "stopped"
    assert deployments["digits-cnn"]["live"] and deployments["digits-cnn"]["stable"] == "digits-cnn:1"


def test_a_missed_gate_fails_the_run_at_its_stage_and_registers_nothing(
    first_run: dict[str, Any], home: Path, tmp_path: Path
) -> None:
    spec = pipeline_file(tmp_path, train={"epochs": 6}, evaluate={"min_accuracy": 0.9999})
    done = aidc(home, "run", str(spec))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "failed at stage evaluate" in done.stderr and "below the gate 0.9999" in done.stderr
    assert "aidc run --resume" in done.stderr
    platform = platform_for(home)
    run = platform.metadata.list_runs(status="failed")[0]
    assert run.error["stage"] == "evaluate" and run.error["code"] == "gate_failed"
    assert Path(run.error["log_path"]).is_file()
    stages = {s.name: s.status for s in platform.metadata.list_stages(run.id)}
    assert stages == {"data": "cached", "train": "cached", "evaluate": "failed"}
    assert len(platform.metadata.list_model_versions("digits-cnn")) == 1
    audited = platform.security.audit_list(action="runs.run")
    assert [(e.result, e.details.get("run_id")) for e in audited][:1] == [("failed", run.id)]
    assert any(e.result == "ok" and e.details["models"] == ["digits-cnn:1"] for e in audited)
    assert platform.security.audit_verify().ok


def _checkpoints(home: Path) -> int:
    db = home / "aidc.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("select count(*) from artifacts where kind = 'checkpoint'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _as_from_a_terminal() -> None:
    """A command typed at a terminal gets SIGINT at its default; one started from a background job of a script
    inherits it ignored (and Python then never raises KeyboardInterrupt), which is not what a Ctrl-C test means."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_an_interrupted_run_resumes_from_its_latest_checkpoint(tmp_path: Path) -> None:
    home = tmp_path / "home"
    spec = pipeline_file(tmp_path, train={"epochs": 5, "early_stopping": None})
    # a stage asked to stop gets this long to save where it is; on a busy machine the default may not be enough,
    # and a stage stopped outright resumes from its last whole epoch instead, which is not what this test checks
    env = {**os.environ, "AIDC_HOME": str(home), "AIDC_RAY_NUM_CPUS": "2", "AIDC_STOP_CHECKPOINT_S": "600"}
    proc = subprocess.Popen(
        [*AIDC, "run", str(spec)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_from_a_terminal,  # noqa: PLW1509 - the test process starts no threads of its own
    )
    train_logs = home / "runs"
    try:
        wait_until(lambda: proc.poll() is not None or _checkpoints(home) >= 2, "a second checkpoint")
        assert proc.poll() is None, "the run ended before it could be interrupted"
        # The test sets the pace: training is paused while Ctrl-C lands, so the run cannot finish first however
        # busy the machine is, and it goes on only once the command has asked the stage to stop.
        workers = train_workers(proc.pid)
        assert workers, "training ended before it could be interrupted"
        with paused(workers):
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            wait_until(
                lambda: (
                    proc.poll() is not None
                    or "interrupted: asking the stage" in "".join(p.read_text() for p in train_logs.glob("*/train.log"))
                ),
                "the command asking the stage to stop",
            )
        _, err = proc.communicate(timeout=HANG_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    logs = "".join(p.read_text() for p in train_logs.glob("*/train.log"))
    assert proc.returncode == 130, f"exit {proc.returncode}\n{err[-2000:]}\n{logs[-2000:]}"
    run = platform_for(home).metadata.list_runs()[0]
    assert run.status == "failed" and run.error["code"] == "interrupted"
    assert f"aidc run --resume {run.id}" in err
    done_before = {m.step for m in platform_for(home).metadata.metrics(run.id) if m.name == "val_accuracy"}
    assert len(done_before) >= 2

    resumed = aidc(home, "run", "--resume", run.id, "--json")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads(resumed.stdout)["status"] == "succeeded"
    steps = [m.step for m in platform_for(home).metadata.metrics(run.id) if m.name == "val_accuracy"]
    assert sorted(steps) == [1, 2, 3, 4, 5]  # every epoch once: the resumed run skipped the finished ones
    log = (home / "runs" / run.id / "train.log").read_text()
    # Ctrl-C checkpointed the step the epoch in progress had reached (or, landing as an epoch ended, that epoch)
    # and the resumed run went on from exactly there
    mid_epoch = re.search(r"stopped on request: checkpointed epoch (\d+) at step (\d+) of", log)
    if mid_epoch:
        assert int(mid_epoch[1]) == max(done_before) + 1
        assert f"resumed at epoch {mid_epoch[1]} step {mid_epoch[2]} of" in log
    else:
        assert f"stopped on request after epoch {max(done_before)}" in log
        assert f"resumed after epoch {max(done_before)}" in log
