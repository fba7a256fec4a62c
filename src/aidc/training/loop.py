"""The data-parallel training loop each Ray Train worker runs: DDP, per-epoch checkpoints, early stopping, resume."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aidc.data.preprocess import load_arrays
from aidc.training.zoo import build_model

CHECKPOINT_FILE = "model.pt"


def make_optimizer(name: str, params: Any, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _restore(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """Where training starts: a checkpoint Ray kept across a worker restart, else the run's latest one (--resume)."""
    import ray.train

    ray_ck = ray.train.get_checkpoint()
    if ray_ck is not None:
        with ray_ck.as_directory() as d:
            return torch.load(Path(d) / CHECKPOINT_FILE, map_location="cpu", weights_only=False)  # type: ignore[no-any-return]
    if cfg.get("resume"):
        blob = cfg["ctx"].get_artifact(cfg["resume"])
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=False)  # type: ignore[no-any-return]
    return None


def _sum_across_workers(*values: float) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64)
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(t)
    return t.tolist()


def train_loop(cfg: dict[str, Any]) -> None:
    """Ray Train worker entry point; rank 0 reports progress and metrics and writes the checkpoints."""
    import ray.train
    from ray.train import Checkpoint
    from ray.train.torch import get_device, prepare_data_loader, prepare_model

    ctx, rank = cfg["ctx"], ray.train.get_context().get_world_rank()
    world = ray.train.get_context().get_world_size()
    torch.manual_seed(cfg["seed"])
    data = load_arrays(ctx.get_artifact(cfg["data"]))
    device = get_device()
    model = build_model(cfg["arch"])
    optimizer = make_optimizer(cfg["optimizer"], model.parameters(), cfg["lr"], cfg["weight_decay"])
    state = _restore(cfg)
    start, best, history = 1, {"val_loss": float("inf"), "epoch": 0, "ref": None}, []
    bad_epochs = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, best, bad_epochs, history = state["epoch"] + 1, state["best"], state["bad_epochs"], state["history"]
        if best["ref"] is None:  # the checkpoint we resume from is itself the best so far
            best = {**best, "ref": cfg.get("resume")}
        if rank == 0:
            ctx.log(f"resumed after epoch {state['epoch']}")
    model = prepare_model(model)
    train_set = torch.utils.data.TensorDataset(torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"]))
    loader = prepare_data_loader(torch.utils.data.DataLoader(
        train_set, batch_size=max(1, cfg["batch_size"] // world), shuffle=True))
    x_val = torch.from_numpy(data["x_val"]).to(device)
    y_val = torch.from_numpy(data["y_val"]).to(device)
    loss_fn = nn.CrossEntropyLoss()
    epochs, patience = cfg["epochs"], cfg["patience"]
    for epoch in range(start, epochs + 1):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        model.train()
        began = time.perf_counter()
        # sums stay tensors until the epoch ends: a float() per step would be a device sync on GPU
        loss_sum, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
        for i, (x, y) in enumerate(loader, 1):
            optimizer.zero_grad(set_to_none=True)
            logits = model(x)
            loss = loss_fn(logits, y)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
            if rank == 0 and i < len(loader):  # the epoch's end is reported once, below
                ctx.progress("batches", i, len(loader), epoch=epoch)
        epoch_seconds = time.perf_counter() - began
        loss_total, correct_total, seen_total = _sum_across_workers(float(loss_sum), float(correct), seen)
        net = model.module if hasattr(model, "module") else model
        net.eval()
        with torch.no_grad():
            val_logits = net(x_val)
            val_loss = float(loss_fn(val_logits, y_val))
            val_acc = float((val_logits.argmax(1) == y_val).float().mean())
        metrics = {"train_loss": loss_total / seen_total, "train_accuracy": correct_total / seen_total, "val_loss": val_loss,
                   "val_accuracy": val_acc, "epoch_seconds": epoch_seconds}
        history.append({"epoch": epoch, **metrics})
        improved = val_loss < best["val_loss"] - cfg["min_delta"]
        bad_epochs = 0 if improved else bad_epochs + 1
        if improved:  # ref None = "this very checkpoint"; filled in once it is stored
            best = {"val_loss": val_loss, "val_accuracy": val_acc, "epoch": epoch, "ref": None}
        stop = patience is not None and bad_epochs >= patience
        report: dict[str, Any] = {"epoch": epoch, **metrics, "stopped_early": stop}
        checkpoint = None
        if rank == 0:
            tmp = tempfile.mkdtemp(prefix="aidc-ckpt-")
            snapshot = {"epoch": epoch, "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                        "best": best, "bad_epochs": bad_epochs, "history": history, "arch": cfg["arch"]}
            torch.save(snapshot, Path(tmp) / CHECKPOINT_FILE)
            ref = ctx.put_artifact(Path(tmp) / CHECKPOINT_FILE, kind="checkpoint", name=f"epoch-{epoch:03d}.pt")
            if best["ref"] is None:
                best = {**best, "ref": ref}
                torch.save({**snapshot, "best": best}, Path(tmp) / CHECKPOINT_FILE)
            for name, value in metrics.items():  # after the checkpoint: a recorded epoch is a resumable one
                ctx.metric(name, epoch, value)
            report["best"] = json.dumps(best)
            checkpoint = Checkpoint.from_directory(tmp)
            ctx.progress("batches", len(loader), len(loader), epoch=epoch)
            ctx.progress("epochs", epoch, epochs, force=True, val_accuracy=round(val_acc, 4))
            ctx.flush()  # this epoch's metrics and checkpoint are recorded before the next begins
        ray.train.report(report, checkpoint=checkpoint)
        if rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        if stop:
            if rank == 0:
                ctx.log(f"early stop at epoch {epoch}: val_loss has not improved for {patience} epochs")
            break


def evaluate_arrays(model: nn.Module, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    """Logits for ``x`` in batches, on CPU, in eval mode."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(torch.from_numpy(x[i:i + batch])).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)
