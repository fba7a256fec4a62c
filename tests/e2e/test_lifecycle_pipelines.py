"""The lifecycle examples as a user runs them: `aidc run` on examples/compression (and federated, transfer) with
Ray, ONNX Runtime, SQLite and the file artifact store; epochs cut down to keep the suite short."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.pace import HANG_S

ROOT = Path(__file__).resolve().parents[2]
AIDC = [str(Path(sys.executable).parent / "aidc")]

pytestmark = pytest.mark.slow


def example(tmp: Path, name: str, **changes: dict[str, Any]) -> Path:
    """examples/NAME/pipeline.yaml with some stages' settings changed (fewer epochs)."""
    spec = yaml.safe_load((ROOT / "examples" / name / "pipeline.yaml").read_text())
    for stage in spec["stages"]:
        for key, value in changes.get(stage["name"], {}).items():
            stage.setdefault("with", {})[key] = value
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def aidc_run(home: Path, spec: Path) -> dict[str, Any]:
    env = {**os.environ, "AIDC_HOME": str(home), "AIDC_RAY_NUM_CPUS": "2"}
    done = subprocess.run(
        [*AIDC, "run", str(spec), "--json"], capture_output=True, text=True, env=env, timeout=HANG_S, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def platform_for(home: Path):  # noqa: ANN201 - test helper
    from aidc.platform import Platform
    from aidc.settings import Settings

    return Platform(Settings(home=home))


def test_compression_example_registers_smaller_versions_with_lineage_to_their_parent(tmp_path: Path) -> None:
    home = tmp_path / "home"
    spec = example(
        tmp_path,
        "compression",
        train={"epochs": 5},
        pruned={"prune": {"amount": 0.5, "fine_tune_epochs": 1}},
        student={"distill": {"student": {"width": 8}, "epochs": 8}},
    )
    run = aidc_run(home, spec)
    assert run["status"] == "succeeded"
    platform = platform_for(home)
    parent = platform.metadata.get_model_version("digits-cnn")
    int8 = platform.metadata.get_model_version("digits-cnn-int8")
    assert int8.checkpoint_digest is None and int8.metrics["compression"] == "quantize"
    assert int8.metrics["size_bytes"] * 3 <= run["outputs"]["int8"]["comparison"]["parent"]["size_bytes"]
    edges = {(e.src_kind, e.src_id, e.relation) for e in platform.records.lineage(int8)}
    assert ("model_version", str(parent.id), "quantized_to") in edges  # lineage to its parent
    assert ("onnx", int8.onnx_digest, "registered_as") in edges
    qat = platform.metadata.get_model_version("digits-cnn-qat")  # quantisation-aware, within the 1-point gate
    assert qat.metrics["size_bytes"] * 3 <= run["outputs"]["int8-qat"]["comparison"]["parent"]["size_bytes"]
    assert run["outputs"]["student"]["comparison"]["details"]["workers"] == 2  # distilled on 2 pooled workers
    assert platform.metadata.get_model_version("digits-cnn-student").metrics["compression"] == "distill"
    report = Path(run["report"]).read_text()
    assert "<h2>Compression</h2>" in report and "accuracy × latency × size" in report
    assert "beside it: int8 static, post-training" in report  # QAT's row has static INT8 under it


def test_federated_example_runs_and_reports_rounds_against_central_training(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run = aidc_run(home, example(tmp_path, "federated", federated={"rounds": 4}, evaluate={"min_accuracy": 0.85}))
    assert run["status"] == "succeeded"
    summary = run["outputs"]["federated"]["summary"]
    assert [r["round"] for r in summary["rounds"]] == [1, 2, 3, 4]
    assert summary["centralised"]["accuracy"] > 0.85
    model = platform_for(home).metadata.get_model_version("digits-federated")
    assert model.metrics["accuracy"] >= 0.85
    report = Path(run["report"]).read_text()
    assert "<h2>Federated training</h2>" in report and "centralised" in report


def test_transfer_example_beats_training_from_scratch_on_the_same_few_letters(tmp_path: Path) -> None:
    """The example as it is (its epochs too: the letters sets are small). Transfer's margin over scratch on the 55
    test letters was 0.15–0.22 over data and training seeds 0–4 (docs/lifecycle.md); 0.10 is asked here."""
    home = tmp_path / "home"
    run = aidc_run(home, ROOT / "examples" / "transfer" / "pipeline.yaml")
    assert run["status"] == "succeeded"
    platform = platform_for(home)
    parent = platform.metadata.get_model_version("glyphs-cnn")
    edges = platform.metadata.upstream("run", run["run_id"])
    assert any(
        e.src_kind == "model_version" and e.src_id == str(parent.id) and e.relation == "initialised" for e in edges
    )
    assert run["outputs"]["transfer"]["model"]["classes"] == 8  # the glyphs body with an 8-letter head
    transfer = run["outputs"]["evaluate-transfer"]["metrics"]["accuracy"]
    scratch = run["outputs"]["evaluate-scratch"]["metrics"]["accuracy"]
    assert transfer >= scratch + 0.10, (transfer, scratch)
    report = Path(run["report"]).read_text()
    assert "<h2>Models compared</h2>" in report and "evaluate-transfer" in report and "evaluate-scratch" in report


def test_init_from_a_model_that_is_not_registered_is_refused_with_a_hint(tmp_path: Path) -> None:
    spec = example(tmp_path, "transfer")
    data = yaml.safe_load(spec.read_text())
    data["stages"] = [s for s in data["stages"] if s["name"] in ("letters", "transfer")]
    data["stages"][1]["with"]["init_from"] = "no-such-model:2"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    env = {**os.environ, "AIDC_HOME": str(tmp_path / "home"), "AIDC_RAY_NUM_CPUS": "2"}
    done = subprocess.run([*AIDC, "run", str(spec)], capture_output=True, text=True, env=env, timeout=HANG_S, cwd=ROOT)
    assert done.returncode != 0
    assert "init_from 'no-such-model:2'" in done.stderr and "Traceback" not in done.stderr
