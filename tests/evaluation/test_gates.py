"""Evaluation follows the task (a regression's MSE/RMSE/MAE/R²) and gates name any metric, above or below; a gate
on a metric that does not exist is refused in the spec, at its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aidc.errors import GateFailed, InvalidInput, InvalidSpec
from aidc.evaluation.metrics import regression_metrics
from aidc.evaluation.stage import EvaluateConfig, EvaluateStage
from aidc.pipeline.spec import load_pipeline


class Ctx:
    stage, run_id = "evaluate", "r1"


def gate(metrics: dict[str, Any], **settings: Any) -> None:
    EvaluateStage._gate(Ctx(), EvaluateConfig.model_validate(settings), metrics)  # type: ignore[arg-type]


def test_regression_metrics_are_the_textbook_ones() -> None:
    y = np.array([[1.0], [2.0], [3.0], [4.0]])
    m = regression_metrics(y, y + np.array([[1.0], [-1.0], [1.0], [-1.0]]))
    assert m["mse"] == 1.0 and m["mae"] == 1.0 and m["rmse"] == 1.0
    assert m["r2"] == pytest.approx(1 - 4 / 5)
    assert regression_metrics(y, y)["r2"] == 1.0


def test_gates_hold_any_metric_from_below_or_above() -> None:
    regression = {"task": "regression", "mae": 2.5, "r2": 0.7, "mse": 9.0, "rmse": 3.0}
    gate(regression, gates={"max": {"mae": 3.0}, "min": {"r2": 0.5}})
    with pytest.raises(GateFailed, match=r"mae 2\.5000 on the test split is above the gate 2\.0") as caught:
        gate(regression, gates={"max": {"mae": 2.0}})
    assert "evaluate.gates.max.mae" in (caught.value.hint or "")
    classifier = {"task": "classification", "accuracy": 0.93, "macro_f1": 0.9}
    with pytest.raises(GateFailed, match="accuracy 0.9300 on the test split is below the gate 0.95"):
        gate(classifier, min_accuracy=0.95)  # the setting that came first still works
    with pytest.raises(InvalidInput, match="a classification has no such metric"):
        gate(classifier, gates={"max": {"mae": 1.0}})


def test_a_gate_on_an_unknown_metric_is_refused_at_its_line(tmp_path: Path) -> None:
    spec = tmp_path / "p.yaml"
    spec.write_text(
        "pipeline: p\nstages:\n"
        "  - {name: data, uses: data}\n"
        "  - name: train\n    uses: train\n    inputs: {data: data.splits}\n"
        "  - name: evaluate\n    uses: evaluate\n"
        "    inputs: {data: data.splits, checkpoint: train.checkpoint, model: train.model}\n"
        "    with:\n      gates: {max: {mean_abs_err: 3}}\n"
    )
    with pytest.raises(InvalidSpec) as caught:
        load_pipeline(spec)
    text = str(caught.value)
    assert "p.yaml:11" in text and "no metric 'mean_abs_err'" in text and "mae" in text
