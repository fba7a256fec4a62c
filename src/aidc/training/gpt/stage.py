"""The train_lm stage: a `gpt` language model trained data-parallel (DDP through Ray Train's TorchTrainer) on the
text stage's packed sequences, reporting loss, perplexity, tokens/s, FLOP/s and MFU."""

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


class TrainLMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: Literal["tiny", "small", "gpt2-124m", "350m", "1b", "7b"] | None = Field(
        "tiny", description="a preset architecture; the fields below override it"
    )
    dim: int | None = Field(None, ge=16, le=65_536, description="model width")
    layers: int | None = Field(None, ge=1, le=256)
    heads: int | None = Field(None, ge=1, le=512, description="query heads")
    kv_heads: int | None = Field(None, ge=1, le=512, description="key/value heads (grouped-query attention)")
    hidden: int | None = Field(None, ge=16, description="SwiGLU hidden size (default ≈ 8/3 · dim)")
    activation_checkpointing: bool = Field(False, description="recompute each block in backward: less memory")
    steps: int = Field(200, ge=1, le=10_000_000, description="optimizer steps")
    batch_size: int = Field(16, ge=1, description="sequences per micro-batch, all workers together")
    accumulation: int = Field(1, ge=1, le=1024, description="micro-batches per optimizer step")
    lr: float = Field(3e-3, gt=0, le=1)
    min_lr: float | None = Field(None, ge=0, description="where the cosine ends (default lr / 10)")
    warmup: int = Field(20, ge=0, description="steps of linear warm-up")
    clip: float | None = Field(1.0, gt=0, description="gradient-norm clipping (none: no clipping)")
    weight_decay: float = Field(0.1, ge=0)
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 on GPUs that have it")
    compile: bool = Field(False, description="torch.compile the model (worth it on GPUs)")
    eval_every: int = Field(50, ge=1, description="steps between validation, metrics and a checkpoint")
    eval_batches: int = Field(8, ge=1, description="validation batches each time")
    workers: int = Field(2, ge=1, le=1024, description="data-parallel workers")
    strategy: Literal["ddp", "fsdp"] = Field(
        "ddp", description="ddp: a full replica per worker; fsdp: parameters, gradients and optimizer state sharded"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_failures: int = Field(1, ge=0)
    seed: int = 0


def architecture(cfg: TrainLMConfig, vocab_size: int, context: int) -> dict[str, Any]:
    from aidc.training.gpt.model import SIZES, GPTConfig

    fields = {**SIZES.get(cfg.size or "", {}), "vocab_size": vocab_size, "context": context}
    for name in ("dim", "layers", "heads", "kv_heads", "hidden"):
        if getattr(cfg, name) is not None:
            fields[name] = getattr(cfg, name)
    fields.setdefault("dim", 128)
    GPTConfig.from_dict(fields)  # raises on a shape that does not split into heads
    return {"model": "gpt", **fields, "activation_checkpointing": cfg.activation_checkpointing}


class TrainLMStage(Stage):
    kind = "train_lm"
    Config = TrainLMConfig
    inputs = {"tokens": "packed sequences from a text stage", "tokenizer": "the text stage's tokenizer"}
    outputs = {
        "checkpoint": "the last step's checkpoint",
        "model": "the architecture",
        "summary": "throughput and loss",
    }
    num_cpus = 0
    stops_on_request = True

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        from aidc.cluster.compute import cluster_resources
        from aidc.training.gpt.loop import lm_train_loop
        from aidc.training.gpt.text import load_tokenizer, load_tokens

        cfg: TrainLMConfig = config
        vocab = load_tokenizer(ctx.get_artifact(inputs["tokenizer"])).get_vocab_size()
        seq_len = int(load_tokens(ctx.get_artifact(inputs["tokens"]))["train"].shape[1]) - 1
        try:
            arch = architecture(cfg, vocab, seq_len)
        except ValueError as exc:
            raise StageFailed(str(exc), stage=ctx.stage, run_id=ctx.run_id, cause="bad architecture") from exc
        resources = cluster_resources()
        use_gpu = cfg.device == "cuda" or (cfg.device == "auto" and resources.get("GPU", 0.0) >= cfg.workers)
        if not use_gpu and resources.get("CPU", 0.0) < cfg.workers:
            raise StageFailed(
                f"{cfg.workers} training workers need {cfg.workers} CPUs; the Ray cluster has "
                f"{resources.get('CPU', 0.0):g}",
                stage=ctx.stage,
                run_id=ctx.run_id,
                cause="not enough CPUs",
                hint="lower train.workers, or raise AIDC_RAY_NUM_CPUS / join a bigger cluster",
            )
        loop_config = {
            "ctx": ctx,
            "tokens": inputs["tokens"],
            "arch": arch,
            "resume": ctx.resume.get("checkpoint"),
            **cfg.model_dump(include={"steps", "batch_size", "accumulation", "lr", "warmup", "clip", "seed"}),
            **cfg.model_dump(
                include={"weight_decay", "precision", "compile", "eval_every", "eval_batches", "strategy"}
            ),
            "min_lr": cfg.min_lr if cfg.min_lr is not None else cfg.lr / 10,
        }
        where = f"{cfg.workers} {'GPU' if use_gpu else 'CPU'} worker(s)"
        ctx.log(f"training gpt ({arch['dim']} wide, {arch['layers']} layers) on {where}, {cfg.steps} steps")
        ctx.progress("steps", 0, cfg.steps, force=True)
        ray_run = Path(ctx.home) / "ray-train" / f"{ctx.run_id}-{ctx.stage}-{int(time.time())}"
        trainer = TorchTrainer(
            lm_train_loop,
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
        began = time.perf_counter()
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
            shutil.rmtree(ray_run, ignore_errors=True)
        final = result.metrics or {}
        if final.get("stopped") or final.get("step") != cfg.steps:
            if ctx.stop is not None and ctx.stop.was_set():
                raise StageStopped("training stopped on request; a resumed run continues from its last checkpoint")
        if "ref" not in final or "history" not in final:
            raise StageFailed(
                "training finished without a checkpoint",
                stage=ctx.stage,
                run_id=ctx.run_id,
                cause=f"the last report was {sorted(final)}",
            )
        history, overall = json.loads(final["history"]), json.loads(final["overall"])
        last = history[-1]
        summary = {
            "steps": int(final["step"]),
            "final_train_loss": last["train_loss"],
            "final_val_loss": last["val_loss"],
            "final_val_perplexity": last["val_perplexity"],
            "first_val_loss": history[0]["val_loss"],
            "tokens_per_s": overall["tokens_per_s"],
            "flops_per_s": overall["tokens_per_s"] * overall["flops_per_token"],
            "mfu": (overall["tokens_per_s"] * overall["flops_per_token"] / overall["peak_flops"])
            if overall["peak_flops"]
            else None,
            "peak_flops": overall["peak_flops"],
            "peak_source": overall["peak_source"],
            "parameters": overall["parameters"],
            "training_seconds": overall["trained_s"],
            "seconds": round(time.perf_counter() - began, 2),
            "workers": cfg.workers,
            "device": "cuda" if use_gpu else "cpu",
            "history": history,
            "planner": beside_the_planner(arch, overall, cfg.workers),
        }
        mfu_text = f", MFU {summary['mfu']:.1%}" if summary["mfu"] is not None else ""
        ctx.log(
            f"step {summary['steps']}: val_loss {last['val_loss']:.3f} (perplexity {last['val_perplexity']:.1f}); "
            f"{summary['tokens_per_s']:.0f} tokens/s{mfu_text}"
        )
        return {"checkpoint": json.loads(final["ref"]), "model": arch, "summary": summary}


def beside_the_planner(arch: dict[str, Any], overall: dict[str, Any], workers: int) -> dict[str, Any] | None:
    """The measured step time and memory of one worker next to the planner's forecast for the same model, batch and
    device (planner.lm_step), and measured ÷ forecast. None for a run whose loop did not record them."""
    from aidc.planner.lm_step import forecast_lm_step
    from aidc.training.gpt.model import GPTConfig

    shape = {**arch, "hidden": GPTConfig.from_dict(arch).mlp_hidden}  # (the MLP's width when the size left it out)
    steps = overall.get("steps_trained")
    if not steps or "micro_batch" not in overall or not overall.get("peak_flops"):
        return None
    forecast = forecast_lm_step(
        shape,
        micro_batch=int(overall["micro_batch"]),
        accumulation=int(overall["accumulation"]),
        seq_len=int(overall["seq_len"]),
        precision=str(overall["precision"]),
        peak_flops=float(overall["peak_flops"]) / workers,  # rank 0's device; the job's peak is workers × it
        activation_checkpointing=bool(arch.get("activation_checkpointing")),
    )
    measured = {
        "step_seconds": float(overall["trained_s"]) / int(steps),
        "memory_bytes": int(overall["peak_memory_bytes"]),
        "memory_source": overall["memory_source"],
    }
    return {
        "measured": measured,
        "forecast": forecast.as_dict(),
        "step_ratio": measured["step_seconds"] / forecast.seconds,
        "memory_ratio": measured["memory_bytes"] / forecast.memory_bytes,
        "micro_batch": overall["micro_batch"],
        "accumulation": overall["accumulation"],
        "seq_len": overall["seq_len"],
        "precision": overall["precision"],
        "architecture": shape,
    }
