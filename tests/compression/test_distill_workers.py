"""Distillation is data-parallel like the train stage: the student trains on the same pooled Ray workers (2 here,
DDP over gloo) with the teacher's soft targets, and comes out with a quarter of the parameters within 2 points.

Real engines: a local Ray of 2 CPUs, the pooled training workers, ONNX Runtime, SQLite and the file artifact store.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings

pytestmark = pytest.mark.slow

PIPELINE = """pipeline: digits-distil
stages:
  - name: data
    uses: data
    with: {source: "sklearn:digits", augment: {copies: 0}}
  - name: train
    uses: train
    inputs: {data: data.splits}
    with: {model: cnn, lr: 0.002, epochs: 8, workers: 2, early_stopping: null}
  - name: student
    uses: compress
    inputs: {data: data.splits, checkpoint: train.checkpoint, model: train.model}
    with:
      method: distill
      distill: {student: {model: cnn, width: 8}, temperature: 4, alpha: 0.7, epochs: 12, workers: 2}
      max_accuracy_drop: 0.02
      latency_repeats: 5
      register_as: {name: digits-student}
"""


def _distil(tmp_path: Path) -> tuple[Platform, str, dict[str, Any], str]:
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PIPELINE)
    platform = Platform(Settings(home=tmp_path / "home", ray_num_cpus=2))
    result = platform.runs.run_pipeline(local_access(), spec)
    log = (tmp_path / "home" / "runs" / result.run_id / "student.log").read_text()
    assert result.status == "succeeded", log
    return platform, result.run_id, result.outputs["student"], log


def test_the_student_trains_on_two_pooled_workers_and_keeps_accuracy_with_a_quarter_of_the_parameters(
    tmp_path: Path,
) -> None:
    platform, run_id, out, log = _distil(tmp_path)
    assert "on 2 CPU worker(s)" in log
    pids = re.search(r"worker\(s\) on .* \(pids ([\d, ]+)[;)]", log)
    assert pids is not None and len(set(pids[1].split(", "))) == 2, log  # two processes, one DDP group
    c = out["comparison"]
    assert c["details"]["workers"] == 2
    assert c["details"]["student_parameters"] <= c["details"]["teacher_parameters"] / 4
    assert c["child"]["parameters"] <= c["parent"]["parameters"] / 4  # as exported
    assert c["child"]["accuracy"] >= c["parent"]["accuracy"] - 0.02
    student = platform.metadata.get_model_version("digits-student")
    assert student.metrics["compression"] == "distill"
    epochs = [m for m in platform.metadata.metrics(run_id, stage="student") if m.name == "val_loss"]
    assert len(epochs) == 12  # every epoch of the student's training is on record, as for a train stage
