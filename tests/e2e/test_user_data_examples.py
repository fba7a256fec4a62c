"""The user's own data and model, as a user runs them: `aidc run` on examples/tabular, images and text (copied to a
temporary folder, with fewer epochs), and a bug in their model code reported as theirs, fixed, then resumed.

Real engines throughout: Ray (local, started by the command), Ray Train DDP on 2 CPU workers, ONNX Runtime, SQLite,
the file artifact store and a deployment.
"""

from __future__ import annotations

import json
import os
import shutil
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


def aidc(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIDC_HOME": str(home), "AIDC_RAY_NUM_CPUS": "2"}
    return subprocess.run([*AIDC, *args], capture_output=True, text=True, env=env, timeout=HANG_S, cwd=ROOT)


def example(tmp: Path, name: str, spec: str, *, keep: int = 6, **changes: dict[str, Any]) -> Path:
    """examples/NAME copied to ``tmp`` (its generated data stays out of the repository), SPEC's first ``keep`` stages
    with some stages' settings changed."""
    folder = tmp / name
    shutil.copytree(
        ROOT / "examples" / name, folder, ignore=shutil.ignore_patterns("digits-png*", "wine.csv", "docstrings.*")
    )
    pipeline = yaml.safe_load((folder / spec).read_text())
    pipeline["stages"] = pipeline["stages"][:keep]
    for stage in pipeline["stages"]:
        stage.setdefault("with", {}).update(changes.get(stage["name"], {}))
    (folder / spec).write_text(yaml.safe_dump(pipeline, sort_keys=False))
    return folder / spec


def run_json(home: Path, *args: str) -> dict[str, Any]:
    done = aidc(home, "run", *args, "--json")
    assert done.returncode == 0, (done.stderr or done.stdout)[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_wine_csv_and_the_users_mlp_reach_a_served_model(tmp_path: Path) -> None:
    spec = example(tmp_path, "tabular", "pipeline.yaml", train={"epochs": 8})
    result = run_json(tmp_path / "home", str(spec))
    assert [s["status"] for s in result["stages"]] == ["succeeded"] * 6
    assert (spec.parent / "wine.csv").is_file()  # written by the example's prepare function
    metrics = result["outputs"]["evaluate"]["metrics"]
    assert metrics["accuracy"] >= 0.85
    assert result["outputs"]["deploy"]["checks"]["agreement"] == 1.0
    dataset = result["outputs"]["data"]["dataset"]
    from aidc.platform import Platform
    from aidc.settings import Settings

    platform = Platform(Settings(home=tmp_path / "home"))
    try:
        version = platform.metadata.get_dataset_version(dataset["dataset_version_id"])
    finally:
        platform.close()
    assert version.schema_["label"]["names"] == ["barbera", "barolo", "grignolino"]
    assert version.stats["lineage"]["uri"].endswith("wine.csv") and len(version.stats["lineage"]["sha256"]) == 64


def test_an_image_folder_is_resized_and_served_by_the_zoo_cnn(tmp_path: Path) -> None:
    spec = example(tmp_path, "images", "pipeline.yaml", train={"epochs": 3})
    result = run_json(tmp_path / "home", str(spec))
    assert [s["status"] for s in result["stages"]] == ["succeeded"] * 6
    assert len(list((spec.parent / "digits-png").glob("*/*.png"))) == 1797
    assert result["outputs"]["train"]["model"]["input_shape"] == [1, 12, 12]
    assert result["outputs"]["evaluate"]["metrics"]["accuracy"] >= 0.8


def test_texts_are_tokenised_and_the_text_model_is_served_with_int64_ids(tmp_path: Path) -> None:
    spec = example(tmp_path, "text", "pipeline.yaml", train={"epochs": 4})
    result = run_json(tmp_path / "home", str(spec))
    assert [s["status"] for s in result["stages"]] == ["succeeded"] * 6
    assert (spec.parent / "docstrings.jsonl").is_file()  # written from the standard library by make_corpus.py
    assert result["outputs"]["train"]["model"]["input_shape"] == [48]
    assert result["outputs"]["train"]["model"]["vocab_size"] == 2000
    assert result["outputs"]["evaluate"]["metrics"]["accuracy"] >= 0.6  # six families: chance is below 0.4
    assert result["outputs"]["deploy"]["checks"]["agreement"] == 1.0


BUGGY_LOSS = """
def huber(outputs, targets):
    if len(targets) > 2:  # passes the stage's two-row check, fails on the training workers
        raise ValueError("a deliberate bug")
    return outputs.sum() * 0
"""


def test_a_bug_in_the_users_loss_is_theirs_and_a_fixed_module_resumes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    spec = example(
        tmp_path,
        "tabular",
        "regression.yaml",
        keep=3,
        train={"epochs": 2, "max_failures": 0},  # (a retry would fail the same way: fewer minutes)
        evaluate={"gates": {}},  # two epochs are not enough to pass them
    )
    model = spec.parent / "model.py"
    fixed = model.read_text()
    model.write_text(fixed + BUGGY_LOSS)  # the later huber wins
    line = len(fixed.splitlines()) + 4
    failed = aidc(home, "run", str(spec))
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert "failed in your code: ValueError: a deliberate bug" in failed.stderr
    assert f"{model}:{line}" in failed.stderr
    assert "Traceback" not in failed.stderr
    run_id = json.loads(aidc(home, "runs", "list", "--json").stdout)[0]["id"]

    model.write_text(fixed)
    resumed = run_json(home, "--resume", run_id)
    stages = {s["name"]: s["status"] for s in resumed["stages"]}
    assert stages == {"data": "succeeded", "train": "succeeded", "evaluate": "succeeded"}
    metrics = resumed["outputs"]["evaluate"]["metrics"]
    assert metrics["task"] == "regression" and {"mae", "rmse", "mse", "r2"} <= set(metrics)
