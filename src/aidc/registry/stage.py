"""The register stage: the exported model becomes a model version, with lineage and a lifecycle stage."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aidc.pipeline.stage import ModelRegistration, Stage, StageContext


class RegisterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,62}$", description="model name in the registry")
    stage: Literal["none", "staging", "production"] = Field("staging", description="lifecycle stage of the new version")


class RegisterStage(Stage):
    kind = "register"
    Config = RegisterConfig
    inputs = {
        "onnx": "an export stage's ONNX file",
        "checkpoint": "the train stage's checkpoint",
        "dataset": "the data stage's dataset version",
        "metrics": "the evaluate stage's metrics",
    }
    optional_inputs = frozenset({"dataset", "metrics"})
    outputs = {"model": "the registered model version"}
    num_cpus = 0.1

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        cfg: RegisterConfig = config
        metrics = inputs.get("metrics") or {}
        headline = {
            k: metrics[k]
            for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "mse", "rmse", "mae", "r2", "n")
            if k in metrics
        }
        dataset = inputs.get("dataset") or {}
        return {
            "model": ModelRegistration(
                cfg.name, cfg.stage, inputs["onnx"], inputs["checkpoint"], dataset.get("dataset_version_id"), headline
            )
        }
