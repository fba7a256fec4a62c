"""The evaluate stage: the trained model on the held-out test split, and the promotion gate."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from aidc.errors import GateFailed, InvalidInput
from aidc.evaluation.metrics import (
    CLASSIFICATION_SCALARS,
    REGRESSION_SCALARS,
    classification_metrics,
    regression_metrics,
)
from aidc.pipeline.stage import Stage, StageContext

METRICS = CLASSIFICATION_SCALARS + REGRESSION_SCALARS


def _known(bounds: dict[str, float]) -> dict[str, float]:
    for name in bounds:
        if name not in METRICS:
            raise ValueError(f"no metric {name!r}: gates name one of {', '.join(METRICS)}")
    return bounds


class Gates(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: dict[str, float] = Field(default_factory=dict, description="metric → the least it may be")
    max: dict[str, float] = Field(default_factory=dict, description="metric → the most it may be")

    _names = field_validator("min", "max")(_known)


class EvaluateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    split: str = Field("test", pattern="^(test|val)$", description="which held-out split to score")
    min_accuracy: float | None = Field(None, ge=0, le=1, description="gate: the run fails below this accuracy")
    min_macro_f1: float | None = Field(None, ge=0, le=1, description="gate: the run fails below this macro F1")
    gates: Gates = Field(
        default_factory=Gates, description="gates on any metric: {min: {accuracy: 0.9}, max: {mae: 3}}"
    )


class EvaluateStage(Stage):
    kind = "evaluate"
    Config = EvaluateConfig
    inputs = {
        "data": "arrays from a data stage",
        "checkpoint": "a train stage's checkpoint",
        "model": "its architecture",
    }
    outputs = {
        "metrics": "accuracy, macro P/R/F1, per-class, confusion matrix",
        "predictions": "the predicted class of each image of the split",
    }

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        from aidc.data.preprocess import load_arrays
        from aidc.training.loop import evaluate_arrays
        from aidc.training.zoo import load_weights

        cfg: EvaluateConfig = config
        data = load_arrays(ctx.get_artifact(inputs["data"]))
        model = load_weights(inputs["model"], ctx.get_artifact(inputs["checkpoint"]))
        x, y = data[f"x_{cfg.split}"], data[f"y_{cfg.split}"]
        regression = y.dtype.kind == "f"
        ctx.progress("evaluate", 0, len(x), force=True)
        outputs = evaluate_arrays(model, x)
        ctx.progress("evaluate", len(x), len(x), force=True)
        predicted: np.ndarray
        if regression:
            predicted = outputs.reshape(y.shape)
            metrics = regression_metrics(y, predicted)
            ctx.log(
                f"{cfg.split}: MAE {metrics['mae']:.4g}, RMSE {metrics['rmse']:.4g}, R² {metrics['r2']:.4f} on {len(y)} rows"
            )
        else:
            predicted = outputs.argmax(axis=1)
            labels = sorted(int(c) for c in np.unique(np.concatenate([data["y_train"], y])))
            metrics = classification_metrics(y, predicted, labels)
            ctx.log(
                f"{cfg.split}: accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f} on {len(y)} rows"
            )
        metrics["task"] = "regression" if regression else "classification"
        self._gate(ctx, cfg, metrics)
        return {
            "metrics": metrics,
            "predictions": {"split": cfg.split, "predicted": predicted.tolist(), "task": metrics["task"]},
        }

    @staticmethod
    def _gate(ctx: StageContext, cfg: EvaluateConfig, metrics: dict[str, Any]) -> None:
        """The run fails on the first gate not met: ``min_*`` settings, then gates.min, then gates.max."""
        checks = [
            (name, bound, "min", f"min_{name}")
            for name, bound in (("accuracy", cfg.min_accuracy), ("macro_f1", cfg.min_macro_f1))
            if bound is not None
        ]
        checks += [(name, bound, "min", f"gates.min.{name}") for name, bound in cfg.gates.min.items()]
        checks += [(name, bound, "max", f"gates.max.{name}") for name, bound in cfg.gates.max.items()]
        for name, bound, side, setting in checks:
            if name not in metrics:
                raise InvalidInput(
                    f"evaluate gate on {name!r}: a {metrics['task']} has no such metric",
                    hint="gate on "
                    + ", ".join(CLASSIFICATION_SCALARS if metrics["task"] == "classification" else REGRESSION_SCALARS),
                )
            value = metrics[name]
            if (side == "min" and value < bound) or (side == "max" and value > bound):
                where = "below" if side == "min" else "above"
                raise GateFailed(
                    f"{name} {value:.4f} on the {cfg.split} split is {where} the gate {bound}",
                    stage=ctx.stage,
                    run_id=ctx.run_id,
                    cause=f"{name} {where} {setting}",
                    hint=f"train longer or a bigger model, or change evaluate.{setting} in the pipeline",
                )
