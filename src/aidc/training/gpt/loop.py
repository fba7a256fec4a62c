"""The language-model training loop each Ray Train worker runs: DDP, evaluation and a checkpoint every
``eval_every`` steps, throughput (tokens/s, FLOP/s, MFU) between them, resume from the last checkpoint, and a
checkpoint at the step every worker agrees on when the stage is asked to stop."""

from __future__ import annotations

import io
import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from aidc.training.gpt.flops import device_peak_flops, mfu
from aidc.training.gpt.model import GPTConfig, gpt
from aidc.training.gpt.sharding import load_sharded, save_sharded, shard
from aidc.training.gpt.text import load_tokens
from aidc.training.gpt.train import LMTraining, Schedule
from aidc.training.steps import StopAgreement

POINTER_FILE = "artifact.json"  # Ray Train's checkpoint only points at the (encrypted) artifact


def _restore(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """A checkpoint Ray kept across a worker restart, else the run's latest one (a resumed run)."""
    import ray.train

    ref = None
    ray_ck = ray.train.get_checkpoint()
    if ray_ck is not None:
        with ray_ck.as_directory() as d:
            ref = json.loads((Path(d) / POINTER_FILE).read_text()).get("ref")
    ref = ref or cfg.get("resume")
    if not ref:
        return None
    state: dict[str, Any] = torch.load(io.BytesIO(cfg["ctx"].get_artifact(ref)), map_location="cpu", weights_only=False)
    return state | {"ref": ref}


def _mean_across_workers(value: float, device: torch.device) -> float:
    t = torch.tensor([value], dtype=torch.float64, device=device)
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(t)
        t /= torch.distributed.get_world_size()
    return float(t[0])


def _ppl(loss: float) -> float:
    return math.exp(min(loss, 50.0))


def lm_train_loop(cfg: dict[str, Any]) -> None:
    """Ray Train worker entry point; rank 0 evaluates, reports metrics and writes the checkpoints."""
    import ray.train
    from ray.train import Checkpoint
    from ray.train.torch import get_device, prepare_model

    ctx = cfg["ctx"]
    rank, world = ray.train.get_context().get_world_rank(), ray.train.get_context().get_world_size()
    device = get_device()
    torch.manual_seed(cfg["seed"])
    data = load_tokens(ctx.get_artifact(cfg["tokens"]))
    resident_before = _resident_bytes()
    net = gpt(cfg["arch"]).to(device)
    seq_len = int(data["train"].shape[1]) - 1
    flops_per_token = GPTConfig.from_dict(cfg["arch"]).train_flops_per_token(seq_len)
    state = _restore(cfg)
    fsdp = cfg.get("strategy") == "fsdp" and torch.distributed.is_initialized()
    model: torch.nn.Module = shard(net) if fsdp else net
    if cfg.get("compile"):
        model = torch.compile(model)  # type: ignore[assignment]
    if world > 1 and not fsdp:
        model = prepare_model(model)
    steps = cfg["steps"]
    run = LMTraining(
        model,
        data["train"],
        schedule=Schedule(cfg["lr"], cfg["min_lr"], cfg["warmup"], steps),
        batch_size=max(1, cfg["batch_size"] // world),
        accumulation=cfg["accumulation"],
        clip=cfg["clip"],
        weight_decay=cfg["weight_decay"],
        precision=cfg["precision"],
        device=device,
        world=world,
        rank=rank,
        seed=cfg["seed"],
    )
    history: list[dict[str, Any]] = []
    trained_s, trained_tokens = 0.0, 0
    if state is not None:
        if "optimizer_shards" in state:
            if not fsdp:
                raise ValueError("the checkpoint to resume from was written by FSDP: resume with strategy: fsdp")
            load_sharded(net, run.optimizer, state, ctx.get_artifact)
        else:
            net.load_state_dict(state["model"])
            run.optimizer.load_state_dict(state["optimizer"])
        run.step_done = int(state["step"])
        history, trained_s, trained_tokens = state["history"], state["trained_s"], state["trained_tokens"]
        if rank == 0:
            ctx.log(f"resumed at step {run.step_done} of {steps}")
    peak, peak_source = device_peak_flops(device) if rank == 0 else (0.0, "")
    peak *= world  # every worker on a device like rank 0's: the job's peak
    if world > 1:
        peak_source = f"{world} × {peak_source}"
    if rank == 0 and run.step_done == 0:
        ctx.log(
            f"{net.num_params():,} parameters, {flops_per_token / 1e6:.2f} MFLOP a training token; "
            f"{run.tokens_per_step():,} tokens a step; peak {peak / 1e12:.3f} TFLOP/s ({peak_source})"
        )
    agreement = StopAgreement(ctx.stop, rank, device)
    loss_sum = torch.zeros((), device=device)
    window_steps, window_began = 0, time.perf_counter()

    def checkpoint(step: int, report: dict[str, Any]) -> None:
        nonlocal window_began
        ck = None
        weights: dict[str, Any] = {}
        if fsdp:  # every rank: gather the weights to rank 0, store this rank's optimizer shard
            full, shards = save_sharded(
                net,
                run.optimizer,
                lambda b, n: ctx.put_artifact(b, kind="checkpoint-shard", name=n),
                f"step-{step:06d}",
            )
            weights = {"model": full, "optimizer_shards": shards, "step": run.step_done}
        if rank == 0:
            snapshot = {
                **(weights or run.state_dict()),
                "arch": cfg["arch"],
                "history": history,
                "trained_s": trained_s,
                "trained_tokens": trained_tokens,
            }
            blob = io.BytesIO()
            torch.save(snapshot, blob)
            ref = ctx.put_artifact(blob.getvalue(), kind="checkpoint", name=f"step-{step:06d}.pt")
            tmp = tempfile.mkdtemp(prefix="aidc-ckpt-")
            (Path(tmp) / POINTER_FILE).write_text(json.dumps({"ref": ref}))
            ck = Checkpoint.from_directory(tmp)
            report = {**report, "ref": json.dumps(ref)}
            ctx.flush()
        ray.train.report(report, checkpoint=ck)
        if ck is not None:
            shutil.rmtree(ck.path, ignore_errors=True)
        window_began = time.perf_counter()

    def overall() -> dict[str, Any]:
        return {
            "tokens_per_s": trained_tokens / trained_s if trained_s else 0.0,
            "peak_flops": peak,
            "peak_source": peak_source,
            "flops_per_token": flops_per_token,
            "parameters": net.num_params(),
            "trained_s": trained_s,
            "steps_trained": trained_tokens // run.tokens_per_step(),
            "micro_batch": run.batch_size,
            "accumulation": run.accumulation,
            "seq_len": seq_len,
            "precision": "bf16" if run.amp == torch.bfloat16 else "fp32",
            **_peak_memory(device, resident_before),
        }

    if run.step_done >= steps and history:  # resumed from the last step's checkpoint: report where training ended
        step = run.step_done
        checkpoint(step, {"step": step, "history": json.dumps(history), "overall": json.dumps(overall())})
        return
    while run.step_done < steps:
        loss_sum += run.step()
        window_steps += 1
        step = run.step_done
        if rank == 0:
            ctx.progress("steps", step, steps)
        if step % cfg["eval_every"] == 0 or step == steps:
            seconds = time.perf_counter() - window_began
            tokens = window_steps * run.tokens_per_step()
            trained_s, trained_tokens = trained_s + seconds, trained_tokens + tokens
            train_loss = _mean_across_workers(float(loss_sum) / window_steps, device)
            loss_sum.zero_()
            window_steps = 0
            val_loss = run.evaluate(data["val"], cfg["eval_batches"]) if rank == 0 or fsdp else 0.0
            if rank == 0:
                tps = tokens / seconds
                row = {
                    "step": step,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "train_perplexity": _ppl(train_loss),
                    "val_perplexity": _ppl(val_loss),
                    "tokens_per_s": tps,
                    "flops_per_s": tps * flops_per_token,
                    "lr": run.schedule.at(step),
                }
                share = mfu(tps, flops_per_token, peak)
                if share is not None:
                    row["mfu"] = share
                history.append(row)
                for name, value in row.items():
                    if name != "step":
                        ctx.metric(name, step, value)
                ctx.progress("steps", step, steps, force=True, val_loss=round(val_loss, 4))
            checkpoint(step, {"step": step, "history": json.dumps(history), "overall": json.dumps(overall())})
            continue
        if agreement.after_step():
            trained_s += time.perf_counter() - window_began
            trained_tokens += window_steps * run.tokens_per_step()
            if rank == 0:
                ctx.log(f"stopped on request: checkpointed at step {step} of {steps}")
            checkpoint(step, {"step": step, "stopped": True})
            return


def _resident_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _peak_memory(device: torch.device, resident_before: int) -> dict[str, Any]:
    """What training held at its peak on this worker: CUDA's allocator high-water mark on a GPU; on a CPU the
    process's resident high-water mark above its resident size before the model was built (the runtime's own
    hundreds of MB left out; memory freed back to the allocator but not to the OS counts, as it does for a host)."""
    if device.type == "cuda":
        return {"peak_memory_bytes": int(torch.cuda.max_memory_allocated(device)), "memory_source": "CUDA allocator"}
    import resource

    high_water = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # (KiB on Linux)
    return {
        "peak_memory_bytes": max(0, int(high_water) - resident_before),
        "memory_source": "process RSS high-water mark above its size before the model",
    }
