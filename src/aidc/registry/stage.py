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


class RegisterLMConfig(RegisterConfig):
    pass


class RegisterLMStage(Stage):
    """A trained language model becomes a model version: its weights, architecture and tokenizer as one bundle
    (training/gpt/bundle.py), which `aidc deploy` serves as a text generator."""

    kind = "register_lm"
    Config = RegisterLMConfig
    inputs = {
        "checkpoint": "a train_lm checkpoint",
        "model": "the train_lm stage's architecture",
        "tokenizer": "the text stage's tokenizer",
        "metrics": "the evaluate_lm stage's metrics",
    }
    optional_inputs = frozenset({"metrics"})
    outputs = {"model": "the registered model version"}
    num_cpus = 0.1

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        from aidc.training.gpt.bundle import TASK, pack

        cfg: RegisterLMConfig = config
        blob = pack(ctx.get_artifact(inputs["checkpoint"]), inputs["model"], ctx.get_artifact(inputs["tokenizer"]))
        bundle = ctx.put_artifact(blob, kind="checkpoint", name="gpt-bundle.zip")
        metrics = inputs.get("metrics") or {}
        headline: dict[str, Any] = {k: metrics[k] for k in ("perplexity", "val_loss") if k in metrics}
        headline["task"] = TASK
        ctx.log(f"bundled weights, architecture and tokenizer ({len(blob) / 1e6:.2f} MB) as {cfg.name}")
        return {
            "model": ModelRegistration(
                cfg.name,
                cfg.stage,
                None,
                bundle,
                None,
                headline,
                derived_from=[
                    ("checkpoint", inputs["checkpoint"]["artifact"], "bundled_into"),
                    ("tokenizer", inputs["tokenizer"]["artifact"], "bundled_into"),
                ],
            )
        }
