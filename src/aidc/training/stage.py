"""The train stage: data-parallel PyTorch training through Ray Train's TorchTrainer, checkpointed every epoch and on a stop."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aidc.errors import StageFailed
from aidc.pipeline.stage import Stage, StageContext
from aidc.pipeline.stop import StageStopped
from aidc.training.transfer import Transfer


class EarlyStopping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patience: int = Field(5, ge=1, description="epochs without a lower validation loss before stopping")
    min_delta: float = Field(0.0, ge=0, description="smallest drop in validation loss that counts")


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Literal["cnn", "mlp"] = Field("cnn", description="model zoo key")
    width: int | None = Field(None, ge=4, le=4096, description="channels (cnn) or hidden units (mlp)")
    dropout: float = Field(0.1, ge=0, lt=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0, le=10)
    weight_decay: float = Field(0.0, ge=0)
    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, description="global batch size, split across workers")
    workers: int = Field(2, ge=1, le=1024, description="data-parallel workers (Ray Train)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: GPUs when the cluster has one per worker")
    early_stopping: EarlyStopping | None = Field(default_factory=EarlyStopping)
    max_failures: int = Field(
        1, ge=0, description="worker failures Ray Train recovers from (restarting at the last checkpoint)"
    )
    seed: int = 0
    init_from: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9_.-]{0,62}(:[1-9][0-9]*)?$",
        description="start from a registered model version, NAME or NAME:VERSION (its architecture and weights)",
    )
    transfer: Transfer = Field(default_factory=Transfer, description="with init_from: freeze, head, backbone lr")


class TrainStage(Stage):
    kind = "train"
    Config = TrainConfig
    inputs = {"data": "train/val/test arrays from a data stage"}
    model_refs = {"init_from": "init_from"}  # config field naming a registered version → the input it becomes
    outputs = {"checkpoint": "the best epoch's checkpoint", "model": "the architecture", "summary": "how training went"}
    num_cpus = 0  # the stage only drives Ray Train; its workers hold the CPUs
    stops_on_request = True  # on Ctrl-C or preemption the workers checkpoint at the next step they agree on

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        from aidc.cluster.compute import cluster_resources
        from aidc.data.preprocess import load_arrays
        from aidc.training.loop import train_loop

        cfg: TrainConfig = config
        data = load_arrays(ctx.get_artifact(inputs["data"]))
        arch = {
            "model": cfg.model,
            "input_shape": list(data["x_train"].shape[1:]),
            "classes": int(max(data["y_train"].max(), data["y_val"].max(), data["y_test"].max())) + 1,
            "width": cfg.width,
            "dropout": cfg.dropout,
        }
        if inputs.get("init_from"):  # the parent's network, with a head for this data's labels
            from aidc.training.transfer import arch_for, parent_arch

            shape, classes = list(data["x_train"].shape[1:]), int(arch["classes"])  # type: ignore[arg-type]
            arch = arch_for(parent_arch(ctx.get_artifact(inputs["init_from"])), shape, classes)
        resources = cluster_resources()
        gpus = resources.get("GPU", 0.0)
        use_gpu = cfg.device == "cuda" or (cfg.device == "auto" and gpus >= cfg.workers)
        cpus = resources.get("CPU", 0.0)
        if not use_gpu and cpus < cfg.workers:
            raise StageFailed(
                f"{cfg.workers} training workers need {cfg.workers} CPUs; the Ray cluster has {cpus:g}",
                stage=ctx.stage,
                run_id=ctx.run_id,
                cause="not enough CPUs",
                hint="lower train.workers, or raise AIDC_RAY_NUM_CPUS / join a bigger cluster",
            )
        stopping = cfg.early_stopping
        loop_config = {
            "ctx": ctx,
            "data": inputs["data"],
            "arch": arch,
            "resume": ctx.resume.get("checkpoint"),
            "init_from": inputs.get("init_from"),
            "transfer": cfg.transfer,
            "optimizer": cfg.optimizer,
            "lr": cfg.lr,
            "weight_decay": cfg.weight_decay,
            "epochs": cfg.epochs,
            "batch_size": cfg.batch_size,
            "seed": cfg.seed,
            "patience": stopping.patience if stopping else None,
            "min_delta": stopping.min_delta if stopping else 0.0,
        }
        ctx.log(f"training {cfg.model} on {cfg.workers} {'GPU' if use_gpu else 'CPU'} worker(s), {cfg.epochs} epochs")
        ctx.progress("epochs", 0, cfg.epochs, force=True)
        began = time.perf_counter()
        # a fresh name per attempt: resuming goes through our artifact store, not Ray's run snapshot
        ray_run = Path(ctx.home) / "ray-train" / f"{ctx.run_id}-{ctx.stage}-{int(time.time())}"
        trainer = TorchTrainer(
            train_loop,
            train_loop_config=loop_config,
            scaling_config=ScalingConfig(num_workers=cfg.workers, use_gpu=use_gpu),
            torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
            run_config=RunConfig(
                name=ray_run.name,
                storage_path=str(ray_run.parent),
                checkpoint_config=CheckpointConfig(num_to_keep=1),
                failure_config=FailureConfig(max_failures=cfg.max_failures),
            ),
        )
        try:
            result = trainer.fit()
        except Exception as exc:
            cause = getattr(exc, "__cause__", None) or exc
            raise StageFailed(
                f"training failed: {type(cause).__name__}: {cause}",
                stage=ctx.stage,
                run_id=ctx.run_id,
                cause=str(cause),
            ) from exc
        finally:
            # Ray's own record of the run (its checkpoints point into the artifact store; see loop._point_to):
            # of no use once fit returns, since a retry or resume starts from the artifact store.
            shutil.rmtree(ray_run, ignore_errors=True)
        # the metrics of the last checkpointed report (Ray Train keeps those): training ended early only on request
        final = result.metrics or {}
        finished = bool(final.get("stopped_early")) or final.get("epoch") == cfg.epochs
        if not finished and ctx.stop is not None and ctx.stop.was_set():
            raise StageStopped("training stopped on request; a resumed run continues from its last checkpoint")
        if "best" not in final:
            raise StageFailed(
                "training finished without a checkpoint",
                stage=ctx.stage,
                run_id=ctx.run_id,
                cause="no epoch was reported",
                hint="check train.epochs and the stage log",
            )
        best = json.loads(final["best"])
        summary = {
            "epochs_run": int(final["epoch"]),
            "epochs": cfg.epochs,
            "best_epoch": best["epoch"],
            "best_val_accuracy": best["val_accuracy"],
            "best_val_loss": best["val_loss"],
            "stopped_early": bool(final["stopped_early"]),
            "seconds": round(time.perf_counter() - began, 2),
            "workers": cfg.workers,
            "device": "cuda" if use_gpu else "cpu",
        }
        ctx.log(f"best epoch {best['epoch']}: val_accuracy {best['val_accuracy']:.4f}")
        return {"checkpoint": best["ref"], "model": arch, "summary": summary}
