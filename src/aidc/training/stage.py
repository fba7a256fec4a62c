"""The train stage: data-parallel PyTorch training on pooled Ray workers (training.workers), checkpointed every epoch and on a stop."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aidc.errors import InvalidInput, StageFailed, UserCodeError
from aidc.pipeline.stage import Stage, StageContext
from aidc.pipeline.stop import StageStopped
from aidc.training.transfer import Transfer


class EarlyStopping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patience: int = Field(5, ge=1, description="epochs without a lower validation loss before stopping")
    min_delta: float = Field(0.0, ge=0, description="smallest drop in validation loss that counts")


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(
        "cnn",
        description="model zoo key (cnn, mlp; textcnn for token ids), or MODULE:FUNCTION: the user's builder, from "
        "the pipeline's folder or an installed package, called as build(input_shape=[...], outputs=K, **params) "
        "(and vocab_size=V for token ids)",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the user's model builder")
    loss: str | None = Field(
        None,
        description="MODULE:FUNCTION loss(outputs, targets) -> scalar tensor; default: cross-entropy "
        "(classification) or mean squared error (regression)",
    )
    step: str | None = Field(
        None,
        description="MODULE:FUNCTION step(model, (x, y), loss_fn) -> the loss, or {loss, outputs, NAME: metric}: "
        "your training step's forward pass and loss; aidc still does backward, the optimizer step, distribution, "
        "checkpoints, resume and stopping",
    )
    width: int | None = Field(None, ge=4, le=4096, description="channels (cnn) or hidden units (mlp)")
    dropout: float = Field(0.1, ge=0, lt=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0, le=10)
    weight_decay: float = Field(0.0, ge=0)
    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, description="global batch size, split across workers")
    workers: int = Field(2, ge=1, le=1024, description="data-parallel workers (Ray actors, torch.distributed)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: GPUs when the cluster has one per worker")
    early_stopping: EarlyStopping | None = Field(default_factory=EarlyStopping)
    max_failures: int = Field(
        1, ge=0, description="worker failures (a process or node lost, or a stall) recovered from the last checkpoint"
    )
    min_workers: int | None = Field(
        None, ge=1, description="after a lost node, go on with this many workers if no more fit (default: workers)"
    )
    stall_seconds: float | None = Field(
        600.0, gt=0, description="no progress for this long counts as a worker failure (null: never)"
    )
    seed: int = 0
    init_from: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9_.-]{0,62}(:[1-9][0-9]*)?$",
        description="start from a registered model version, NAME or NAME:VERSION (its architecture and weights)",
    )
    transfer: Transfer = Field(default_factory=Transfer, description="with init_from: freeze, head, backbone lr")

    @field_validator("model")
    @classmethod
    def _zoo_key_or_users_builder(cls, value: str) -> str:
        from aidc.pipeline.usercode import is_ref
        from aidc.training.zoo import ZOO

        if value not in ZOO and not is_ref(value):
            raise ValueError(f"{value!r} is neither a zoo model ({', '.join(ZOO)}) nor MODULE:FUNCTION")
        return value

    @field_validator("loss", "step")
    @classmethod
    def _loss_is_a_function(cls, value: str | None) -> str | None:
        from aidc.pipeline.usercode import is_ref

        if value is not None and not is_ref(value):
            raise ValueError(f"{value!r} is not MODULE:FUNCTION")
        return value


class TrainStage(Stage):
    kind = "train"
    Config = TrainConfig
    inputs = {"data": "train/val/test arrays from a data stage"}
    model_refs = {"init_from": "init_from"}  # config field naming a registered version → the input it becomes
    outputs = {"checkpoint": "the best epoch's checkpoint", "model": "the architecture", "summary": "how training went"}
    num_cpus = 0  # the stage only drives its workers; their placement group holds the CPUs
    workload = "training"
    places_workers = True  # its workers go where its node labels say; the stage itself stays by the runner
    stops_on_request = True  # on Ctrl-C or preemption the workers checkpoint at the next step they agree on

    @classmethod
    def user_code(cls, config: Any) -> list[str]:
        from aidc.training.zoo import ZOO

        cfg: TrainConfig = config
        return [ref for ref in (cfg.model, cfg.loss, cfg.step) if ref is not None and ref not in ZOO]

    @classmethod
    def warm_up(cls, config: Any) -> None:
        """Start this host's pooled CPU workers now (torch imported while earlier stages run), and one spare for a
        recovery; see training.workers."""
        from aidc.training.workers import warm_pool

        if config.device != "cuda":
            # one spare: a worker that dies is replaced without a cold start (this node's pool: workers placed
            # elsewhere by node labels start there)
            warm_pool(config.workers + 1)

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        from aidc.cluster.compute import cluster_resources
        from aidc.data.preprocess import load_arrays
        from aidc.training.workers import TrainingFailed, fit

        cfg: TrainConfig = config
        data = load_arrays(ctx.get_artifact(inputs["data"]))
        regression = data["y_train"].dtype.kind == "f"  # (a data stage writes class indices as int64)
        outputs = (
            int(data["y_train"].shape[1])
            if regression
            else int(max(data["y_train"].max(), data["y_val"].max(), data["y_test"].max())) + 1
        )
        arch: dict[str, Any] = {
            "model": cfg.model,
            "input_shape": list(data["x_train"].shape[1:]),
            "classes": outputs,
            "width": cfg.width,
            "dropout": cfg.dropout,
            "task": "regression" if regression else "classification",
        }
        if "vocab_size" in data:  # token ids (a text dataset): the embedding's size travels with the architecture
            arch["vocab_size"] = int(data["vocab_size"].reshape(-1)[0])
        if inputs.get("init_from"):  # the parent's network, with a head for this data's labels
            from aidc.training.transfer import arch_for, parent_arch

            shape, classes = list(data["x_train"].shape[1:]), int(arch["classes"])
            task = arch["task"]  # (a parent trained before task types has none in its architecture)
            arch = arch_for(parent_arch(ctx.get_artifact(inputs["init_from"])), shape, classes) | {"task": task}
        if self.user_code(cfg):
            arch |= {"params": cfg.params, "folder": ctx.spec_dir, "loss": cfg.loss}
            try_users_code(arch, data["x_train"][:2], data["y_train"][:2], step=cfg.step)
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
            "task": arch["task"],
            "loss": cfg.loss,
            "step": cfg.step,
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
        try:
            result = fit(
                "aidc.training.loop:train_loop",  # imported by the (warm) workers, not by this driver
                loop_config,
                workers=cfg.workers,
                min_workers=cfg.min_workers or cfg.workers,
                use_gpu=use_gpu,
                max_failures=cfg.max_failures,
                stall_s=cfg.stall_seconds,
                log=ctx.log,
                metric=ctx.metric,
                on_node_failure=lambda node, reason: ctx.emit("node_failure", node=node, reason=reason),
                label_selector=ctx.placement,
            )
        except TrainingFailed as exc:
            cause = exc.cause or exc
            users = _users_error(exc)
            if users is not None:  # raised in their code on a worker, and told apart there (loop.train_loop)
                raise users from None
            raise StageFailed(
                f"training failed: {type(cause).__name__}: {cause}",
                stage=ctx.stage,
                run_id=ctx.run_id,
                cause=str(cause),
            ) from exc
        # the metrics of rank 0's last report: training ended early only on request
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
            "best_val_accuracy": best.get("val_accuracy"),
            "best_val_mae": best.get("val_mae"),
            "best_val_loss": best["val_loss"],
            "stopped_early": bool(final["stopped_early"]),
            "seconds": round(time.perf_counter() - began, 2),
            "workers": result.workers,
            "worker_failures": result.failures,
            "device": "cuda" if use_gpu else "cpu",
        }
        score = "val_mae" if regression else "val_accuracy"
        ctx.log(f"best epoch {best['epoch']}: {score} {best[score]:.4f}")
        return {"checkpoint": best["ref"], "model": arch, "summary": summary}


def _users_error(exc: BaseException) -> UserCodeError | None:
    """The UserCodeError a training worker raised, however Ray Train wrapped it (the workers' failures by rank, a
    Ray task error's cause, an exception's own cause or context)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, UserCodeError):
            return current
        failures = getattr(current, "worker_failures", None)
        if isinstance(failures, dict):
            pending += [failures[rank] for rank in sorted(failures)]
        pending += [
            inner
            for inner in (getattr(current, "cause", None), current.__cause__, current.__context__)
            if isinstance(inner, BaseException)
        ]
    return None


def try_users_code(arch: dict[str, Any], x: Any, y: Any, step: str | None = None) -> None:
    """Build the user's model and run its forward pass and loss (and their training step, with its backward pass) on
    two rows, here, before any worker starts: a bug in their code fails the stage at once, pointing at their line
    (the traceback is live here)."""
    import torch

    from aidc.training.loop import loss_function, users_step
    from aidc.training.zoo import build_model

    model = build_model(arch)
    out = model(torch.from_numpy(x))
    expected = (len(x), int(arch["classes"]))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise InvalidInput(
            f"model {arch['model']!r} returns {shape} for a batch of {len(x)}; the data needs {expected}",
            hint=f"end the network with {arch['classes']} outputs (build(..., outputs=K) gives K)",
        )
    users_loss = loss_function(arch["task"], arch.get("loss"), arch.get("folder"))
    loss = users_loss(out, torch.from_numpy(y))
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise InvalidInput(f"loss {arch.get('loss')!r} must return a scalar tensor, not {loss!r}")
    if step is not None:
        users = users_step(step, arch.get("folder"))
        assert users is not None
        model.train()
        step_loss, _, _ = users(model, torch.from_numpy(x), torch.from_numpy(y), users_loss, 1)
        torch.autograd.backward(step_loss)
        model.zero_grad(set_to_none=True)
