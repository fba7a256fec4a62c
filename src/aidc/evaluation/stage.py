"""The evaluate stage: the trained model on the held-out test split, and the promotion gate."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aidc.errors import GateFailed
from aidc.evaluation.metrics import classification_metrics
from aidc.pipeline.stage import Stage, StageContext


class EvaluateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    split: str = Field("test", pattern="^(test|val)$", description="which held-out split to score")
    min_accuracy: float | None = Field(None, ge=0, le=1, description="gate: the run fails below this accuracy")
    min_macro_f1: float | None = Field(None, ge=0, le=1, description="gate: the run fails below this macro F1")


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
        ctx.progress("evaluate", 0, len(x), force=True)
        predicted = evaluate_arrays(model, x).argmax(axis=1)
        ctx.progress("evaluate", len(x), len(x), force=True)
        labels = sorted(int(c) for c in np.unique(np.concatenate([data["y_train"], y])))
        metrics = classification_metrics(y, predicted, labels)
        ctx.log(
            f"{cfg.split}: accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f} on {len(y)} images"
        )
        for gate, key in ((cfg.min_accuracy, "accuracy"), (cfg.min_macro_f1, "macro_f1")):
            if gate is not None and metrics[key] < gate:
                raise GateFailed(
                    f"{key} {metrics[key]:.4f} on the {cfg.split} split is below the gate {gate}",
                    stage=ctx.stage,
                    run_id=ctx.run_id,
                    cause=f"{key} below min_{key}",
                    hint=f"train longer or a bigger model, or lower evaluate.min_{key} in the pipeline",
                )
        return {"metrics": metrics, "predictions": {"split": cfg.split, "predicted": predicted.tolist()}}
