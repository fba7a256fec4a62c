"""The compress stage: a trained model made smaller (INT8, pruned or distilled), measured against its parent, and
registered as a new model version with lineage to it only when the accuracy gate holds."""

from __future__ import annotations

import io
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aidc.errors import GateFailed, InvalidInput, StageFailed
from aidc.pipeline.stage import ModelRegistration, Stage, StageContext


class Quantize(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["dynamic", "static", "qat"] = Field(
        "static",
        description="dynamic: weights ahead of time; static: activations calibrated too (both ONNX Runtime, post "
        "training); qat: quantisation-aware fine-tuning in PyTorch (torch.ao), compared with static",
    )
    calibration_batches: int = Field(8, ge=1, le=1000, description="training-split batches to calibrate on")
    batch_size: int = Field(32, ge=1)
    per_channel: bool = True
    epochs: int = Field(2, ge=1, le=1000, description="qat: fine-tuning epochs with fake quantisation")
    lr: float = Field(5e-4, gt=0, le=1, description="qat: fine-tuning learning rate")


class Prune(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: float = Field(0.5, gt=0, lt=1, description="share of weights (or channels, structured) to remove")
    structured: bool = Field(False, description="remove whole output channels (the model really shrinks)")
    fine_tune_epochs: int = Field(3, ge=0, le=1000)
    lr: float = Field(5e-4, gt=0, le=1)
    batch_size: int = Field(64, ge=1)


class Student(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Literal["cnn", "mlp"] = "cnn"
    width: int | None = Field(8, ge=2, le=4096, description="channels (cnn) or hidden units (mlp)")


class Distill(BaseModel):
    model_config = ConfigDict(extra="forbid")
    student: Student = Field(default_factory=Student)
    temperature: float = Field(4.0, gt=0, le=100)
    alpha: float = Field(0.7, ge=0, le=1, description="weight of the teacher's soft targets against the labels")
    epochs: int = Field(20, ge=1, le=10_000)
    lr: float = Field(3e-3, gt=0, le=1)
    batch_size: int = Field(64, ge=1, description="global batch size, split across workers")
    workers: int = Field(
        2, ge=1, le=1024, description="data-parallel workers, the train stage's pooled ones (Ray actors, DDP)"
    )


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,62}$", description="model name for the compressed version")
    stage: Literal["none", "staging", "production"] = "none"


class CompressConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["quantize", "prune", "distill"]
    quantize: Quantize = Field(default_factory=Quantize)
    prune: Prune = Field(default_factory=Prune)
    distill: Distill = Field(default_factory=Distill)
    max_accuracy_drop: float = Field(0.01, ge=0, le=1, description="gate: largest test-accuracy loss registered")
    on_gate_failure: Literal["skip", "fail"] = Field("skip", description="skip: not registered, the run goes on")
    register_as: Registration | None = Field(None, description="register the result (when the gate holds)")
    latency_repeats: int = Field(30, ge=3, le=10_000, description="timed ONNX Runtime calls per batch size")
    seed: int = 0


class CompressStage(Stage):
    kind = "compress"
    Config = CompressConfig
    inputs = {
        "data": "arrays from a data stage (training rows calibrate or fine-tune; the test split measures)",
        "checkpoint": "the parent's training checkpoint",
        "model": "its architecture",
        "onnx": "the parent's ONNX (exported here when not given)",
        "parent": "the parent's registered model version (for lineage)",
    }
    optional_inputs = frozenset({"onnx", "parent"})
    outputs = {
        "onnx": "the compressed ONNX model",
        "checkpoint": "its PyTorch checkpoint (pruned or distilled; none for INT8)",
        "model": "its architecture",
        "comparison": "parent and child measured side by side, and the gate's verdict",
        "model_version": "the registered version (none when the gate failed or no registration was asked)",
    }

    @classmethod
    def cpus(cls, config: Any) -> float:
        """Distillation only drives the pooled training workers (their placement group holds the CPUs, as for the
        train stage): the stage holding one too would leave 2 workers no room on a 2-CPU host."""
        return 0.0 if config.method == "distill" else cls.num_cpus

    @classmethod
    def warm_up(cls, config: Any) -> None:
        if config.method == "distill":
            from aidc.training.workers import warm_pool

            warm_pool(config.distill.workers + 1)

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        import torch

        from aidc.compression.measure import comparison, profile
        from aidc.data.preprocess import load_arrays
        from aidc.serving.export import to_onnx
        from aidc.training.zoo import load_weights

        cfg: CompressConfig = config
        torch.manual_seed(cfg.seed)
        data = load_arrays(ctx.get_artifact(inputs["data"]))
        x_test, y_test = data["x_test"], data["y_test"]
        labels = sorted(int(c) for c in np.unique(np.concatenate([data["y_train"], y_test])))
        arch = inputs["model"]
        teacher = load_weights(arch, ctx.get_artifact(inputs["checkpoint"]))
        parent_blob = ctx.get_artifact(inputs["onnx"]) if inputs.get("onnx") else to_onnx(teacher, x_test[:2])
        ctx.progress("compress", 0, 3, force=True, step="measure parent")
        parent = profile(parent_blob, x_test, y_test, labels, repeats=cfg.latency_repeats)
        ctx.progress("compress", 1, 3, force=True, step=cfg.method)
        child_blob, child_arch, checkpoint, details = self._compress(ctx, cfg, teacher, arch, data, parent_blob, inputs)
        ctx.progress("compress", 2, 3, force=True, step="measure child")
        child = profile(child_blob, x_test, y_test, labels, repeats=cfg.latency_repeats)
        versus = comparison(parent, child)
        drop = parent["accuracy"] - child["accuracy"]
        passed = drop <= cfg.max_accuracy_drop + 1e-12
        label = _label(cfg)
        ctx.log(
            f"{label}: accuracy {child['accuracy']:.4f} (parent {parent['accuracy']:.4f}), size "
            f"{child['size_bytes']:,} B (×{versus['size_ratio']:.2f}), latency b32 {child['latency_ms_b32']:.3f} ms "
            f"(×{versus['latency_ratio_b32']:.2f}); gate max_accuracy_drop {cfg.max_accuracy_drop}: "
            f"{'passed' if passed else 'FAILED'}"
        )
        onnx_ref = ctx.put_artifact(child_blob, kind="onnx", name=f"model-{cfg.method}.onnx")
        ckpt_ref = (
            ctx.put_artifact(checkpoint, kind="checkpoint", name=f"{cfg.method}.pt") if checkpoint is not None else None
        )
        result = {
            "method": cfg.method,
            "label": label,
            "parent": parent,
            "child": child,
            "versus": versus,
            "details": details,
            "gate": {"max_accuracy_drop": cfg.max_accuracy_drop, "accuracy_drop": drop, "passed": passed},
        }
        if not passed and cfg.on_gate_failure == "fail":
            raise GateFailed(
                f"{label} loses {drop:.4f} accuracy, more than max_accuracy_drop {cfg.max_accuracy_drop}",
                stage=ctx.stage,
                run_id=ctx.run_id,
                cause="accuracy drop above the gate",
                hint="fine-tune longer, compress less, or raise compress.max_accuracy_drop",
            )
        registration = None
        if cfg.register_as is not None and passed:
            registration = _registration(cfg, onnx_ref, ckpt_ref, inputs, child, versus)
        elif cfg.register_as is not None:
            ctx.log(f"not registered as {cfg.register_as.name}: the accuracy gate failed")
        ctx.progress("compress", 3, 3, force=True, step="done")
        return {
            "onnx": onnx_ref,
            "checkpoint": ckpt_ref,
            "model": child_arch,
            "comparison": result,
            "model_version": registration,
        }

    def _compress(
        self,
        ctx: StageContext,
        cfg: CompressConfig,
        teacher: Any,
        arch: dict[str, Any],
        data: dict[str, Any],
        parent_blob: bytes,
        inputs: dict[str, Any],
    ) -> tuple[bytes, dict[str, Any], bytes | None, dict[str, Any]]:
        """(child ONNX, its architecture, its checkpoint or None, what was done) for the configured method."""
        import torch

        from aidc.compression import distill, finetune, prune
        from aidc.compression.quantize import calibration_rows, quantize_int8
        from aidc.serving.export import to_onnx
        from aidc.training.zoo import load_weights

        x_train, y_train, x_test = data["x_train"], data["y_train"], data["x_test"]

        def save(model: Any, model_arch: dict[str, Any]) -> bytes:
            blob = io.BytesIO()
            torch.save({"model": model.state_dict(), "arch": model_arch}, blob)
            return blob.getvalue()

        def report_epoch(task: str, total: int) -> Any:
            def on_epoch(epoch: int, loss: float) -> None:
                ctx.metric(f"{task}_loss", epoch, loss)
                ctx.progress(task, epoch, total)

            return on_epoch

        if cfg.method == "quantize" and cfg.quantize.mode == "qat":
            return _quantization_aware(ctx, cfg, teacher, arch, data, parent_blob, report_epoch)
        if cfg.method == "quantize":
            q = cfg.quantize
            rows = calibration_rows(x_train, q.batch_size, q.calibration_batches, cfg.seed)
            blob = quantize_int8(
                parent_blob,
                "dynamic" if q.mode == "dynamic" else "static",
                calibration=rows,
                batch_size=q.batch_size,
                per_channel=q.per_channel,
            )
            return blob, {**arch, "quantized": f"int8-{q.mode}"}, None, {"mode": q.mode, "calibration_rows": len(rows)}
        if cfg.method == "prune":
            p = cfg.prune
            model = teacher.train()
            prune.apply_masks(model, p.amount, structured=p.structured)
            if p.fine_tune_epochs:
                finetune.fit(
                    model,
                    x_train,
                    y_train,
                    epochs=p.fine_tune_epochs,
                    lr=p.lr,
                    batch_size=p.batch_size,
                    seed=cfg.seed,
                    on_epoch=report_epoch("fine_tune", p.fine_tune_epochs),
                )
            prune.make_permanent(model)
            model.eval()
            kept = prune.describe(model)
            if p.structured:
                before = kept
                model = prune.drop_pruned_channels(model, x_test)
                kept = {**prune.describe(model), "widths_before": before["widths"]}
                checkpoint = None  # the rebuilt network has widths the zoo's architecture cannot name
                child_arch = {**arch, "pruned": "structured", "widths": kept["widths"]}
            else:
                checkpoint = save(model, arch)
                child_arch = {**arch}
            return to_onnx(model, x_test[:2]), child_arch, checkpoint, {"amount": p.amount, **kept}
        d = cfg.distill
        if not len(x_train):
            raise InvalidInput("distillation needs training rows", hint="check the data stage's split")
        student_arch = distill.student_of(arch, d.student.model, d.student.width)
        student = load_weights(student_arch, _distil_on_workers(ctx, cfg, inputs, arch, student_arch))
        details = {
            "student": student_arch,
            "student_parameters": distill.params(student),
            "teacher_parameters": distill.params(teacher),
            "temperature": d.temperature,
            "alpha": d.alpha,
            "workers": d.workers,
        }
        return to_onnx(student, x_test[:2]), student_arch, save(student, student_arch), details


def _quantization_aware(
    ctx: StageContext,
    cfg: CompressConfig,
    teacher: Any,
    arch: dict[str, Any],
    data: dict[str, Any],
    parent_blob: bytes,
    report_epoch: Any,
) -> tuple[bytes, dict[str, Any], bytes | None, dict[str, Any]]:
    """QAT's INT8 model, with post-training static INT8 of the same parent measured beside it (the question QAT
    answers: is the fine-tuning worth it over calibrating alone?)."""
    from aidc.compression.measure import profile
    from aidc.compression.qat import quantization_aware
    from aidc.compression.quantize import calibration_rows, quantize_int8

    q = cfg.quantize
    blob = quantization_aware(
        teacher,
        data["x_train"],
        data["y_train"],
        epochs=q.epochs,
        lr=q.lr,
        batch_size=64,
        seed=cfg.seed,
        on_epoch=report_epoch("qat", q.epochs),
    )
    rows = calibration_rows(data["x_train"], q.batch_size, q.calibration_batches, cfg.seed)
    static = quantize_int8(parent_blob, "static", calibration=rows, batch_size=q.batch_size, per_channel=q.per_channel)
    x_test, y_test = data["x_test"], data["y_test"]
    labels = sorted(int(c) for c in np.unique(np.concatenate([data["y_train"], y_test])))
    measured = profile(static, x_test, y_test, labels, repeats=cfg.latency_repeats)
    keep = ("accuracy", "macro_f1", "size_bytes", "latency_ms_b1", "latency_ms_b32")
    versus_static = {k: measured[k] for k in keep}
    ctx.log(
        f"post-training static INT8 beside it: accuracy {measured['accuracy']:.4f}, size {measured['size_bytes']:,} B, "
        f"latency b32 {measured['latency_ms_b32']:.3f} ms"
    )
    details = {"mode": "qat", "epochs": q.epochs, "lr": q.lr, "static_int8": versus_static}
    return blob, {**arch, "quantized": "int8-qat"}, None, details


def _distil_on_workers(
    ctx: StageContext,
    cfg: CompressConfig,
    inputs: dict[str, Any],
    teacher_arch: dict[str, Any],
    student_arch: dict[str, Any],
) -> bytes:
    """Train the student data-parallel on the train stage's pooled workers (training.workers, DDP), each row with
    the teacher's logits for it; returns the best epoch's checkpoint (lowest validation distillation loss)."""
    import json

    from aidc.cluster.compute import cluster_resources
    from aidc.training.workers import TrainingFailed, fit

    d = cfg.distill
    cpus = cluster_resources().get("CPU", 0.0)
    if cpus < d.workers:
        raise StageFailed(
            f"{d.workers} distillation workers need {d.workers} CPUs; the Ray cluster has {cpus:g}",
            stage=ctx.stage,
            run_id=ctx.run_id,
            cause="not enough CPUs",
            hint="lower distill.workers, or raise AIDC_RAY_NUM_CPUS / join a bigger cluster",
        )
    loop_config = {
        "ctx": ctx,
        "data": inputs["data"],
        "arch": {**student_arch, "task": "classification"},
        "resume": None,
        "task": "classification",
        "loss": None,
        "init_from": None,
        "optimizer": "adam",
        "lr": d.lr,
        "weight_decay": 0.0,
        "epochs": d.epochs,
        "batch_size": d.batch_size,
        "seed": cfg.seed,
        "patience": None,
        "min_delta": 0.0,
        "distill": {
            "checkpoint": inputs["checkpoint"],
            "arch": teacher_arch,
            "temperature": d.temperature,
            "alpha": d.alpha,
        },
    }
    ctx.log(f"distilling into {_label(cfg)} on {d.workers} CPU worker(s), {d.epochs} epochs")
    try:
        result = fit(
            "aidc.training.loop:train_loop",
            loop_config,
            workers=d.workers,
            min_workers=d.workers,
            use_gpu=False,
            max_failures=1,
            stall_s=600.0,
            # the CPUs may be held by sibling stages (a pipeline's other compress stages run beside this one): wait
            # for them rather than fail; a cluster too small for the workers at all was refused above
            place_timeout_s=600.0,
            log=ctx.log,
            metric=ctx.metric,
        )
    except TrainingFailed as exc:
        cause = exc.cause or exc
        raise StageFailed(
            f"distillation failed: {type(cause).__name__}: {cause}",
            stage=ctx.stage,
            run_id=ctx.run_id,
            cause=str(cause),
        ) from exc
    final = result.metrics or {}
    if "best" not in final:
        raise StageFailed(
            "distillation finished without a checkpoint",
            stage=ctx.stage,
            run_id=ctx.run_id,
            cause="no epoch was reported",
            hint="check distill.epochs and the stage log",
        )
    best = json.loads(final["best"])
    ctx.log(f"student's best epoch {best['epoch']}: val_accuracy {best['val_accuracy']:.4f}")
    return ctx.get_artifact(best["ref"])


def _label(cfg: CompressConfig) -> str:
    if cfg.method == "quantize":
        return f"int8 {'quantisation-aware' if cfg.quantize.mode == 'qat' else cfg.quantize.mode}"
    if cfg.method == "prune":
        return f"pruned {cfg.prune.amount:.0%} {'channels' if cfg.prune.structured else 'weights'}"
    return f"student {cfg.distill.student.model} width {cfg.distill.student.width}"


def _registration(
    cfg: CompressConfig,
    onnx_ref: dict[str, Any],
    ckpt_ref: dict[str, Any] | None,
    inputs: dict[str, Any],
    child: dict[str, Any],
    versus: dict[str, Any],
) -> ModelRegistration:
    assert cfg.register_as is not None
    parent = inputs.get("parent") or {}
    relation = {"quantize": "quantized_to", "prune": "pruned_to", "distill": "distilled_to"}[cfg.method]
    edges: list[tuple[str, str, str]] = [("checkpoint", inputs["checkpoint"]["artifact"], relation)]
    if parent.get("model_version_id") is not None:
        edges.append(("model_version", str(parent["model_version_id"]), relation))
    metrics = {
        "accuracy": child["accuracy"],
        "macro_f1": child["macro_f1"],
        "size_bytes": child["size_bytes"],
        "parameters": child["parameters"],
        "latency_ms_b1": child["latency_ms_b1"],
        "latency_ms_b32": child["latency_ms_b32"],
        "accuracy_delta": versus["accuracy_delta"],
        "compression": cfg.method,
    }
    return ModelRegistration(
        cfg.register_as.name,
        cfg.register_as.stage,
        onnx_ref,
        ckpt_ref,
        None,
        metrics,
        derived_from=edges,
    )
