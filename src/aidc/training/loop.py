"""The data-parallel training loop each training worker runs: DDP, checkpoints (per epoch, and on a stop), resume."""

from __future__ import annotations

import io
import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aidc.data.preprocess import load_arrays
from aidc.training import session
from aidc.training.steps import (
    EpochSampler,
    EpochSums,
    StopAgreement,
    UsersStep,
    gather_rng_states,
    train_steps,
)
from aidc.training.zoo import build_model, load_weights

POINTER_FILE = "artifact.json"  # what the reported checkpoint holds: which artifact (encrypted) to load


def make_optimizer(name: str, params: Any, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _restore(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """Where training starts: a checkpoint Ray kept across a worker restart, else the run's latest one (--resume)."""
    ray_ck = session.get_checkpoint()
    if ray_ck is not None:
        with ray_ck.as_directory() as d:
            pointer = json.loads((Path(d) / POINTER_FILE).read_text())
        if pointer.get("ref"):
            state: dict[str, Any] = torch.load(
                io.BytesIO(cfg["ctx"].get_artifact(pointer["ref"])), map_location="cpu", weights_only=False
            )
            return state | {"best": pointer["best"], "ref": pointer["ref"]}
    if cfg.get("resume"):
        blob = cfg["ctx"].get_artifact(cfg["resume"])
        resumed: dict[str, Any] = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=False)
        return resumed | {"ref": cfg["resume"]}
    return None


def _sum_across_workers(*values: float) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64)
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(t)
    return t.tolist()


def _network(model: nn.Module) -> nn.Module:
    """The network itself: inside DistributedDataParallel's wrapper when training runs on several workers."""
    inner = getattr(model, "module", model)
    return inner if isinstance(inner, nn.Module) else model


def _resume_point(state: dict[str, Any], world: int, batch_size: int) -> dict[str, Any] | None:
    """Where in its epoch a mid-epoch checkpoint stopped, if the data order it relies on is the same now."""
    partial = state.get("partial")
    if partial is None or (partial["workers"], partial["batch_size"]) == (world, batch_size):
        return partial
    return None


def loss_function(task: str, ref: str | None, folder: str | None) -> Any:
    """The user's loss (``module:function``, called as ``loss(outputs, targets)``), else the task's own."""
    if ref is not None:
        from aidc.pipeline.usercode import load_callable

        return load_callable(ref, folder, what="loss")
    return nn.MSELoss() if task == "regression" else nn.CrossEntropyLoss()


def users_step(ref: str | None, folder: str | None) -> UsersStep | None:
    """The user's training step (``module:function``), if the spec names one."""
    if ref is None:
        return None
    from aidc.pipeline.usercode import load_callable

    return UsersStep(load_callable(ref, folder, what="train.step"), ref)


def _sums_across_workers(sums: EpochSums, *more: float) -> tuple[float, float, float, list[float], dict[str, float]]:
    """(loss, correct, seen, ``more``, the user's step's metrics) summed over every worker (a collective)."""
    names = sorted(sums.extra)
    totals = _sum_across_workers(
        float(sums.loss), float(sums.correct), sums.seen, *more, *(float(sums.extra[n]) for n in names)
    )
    k = 3 + len(more)
    return totals[0], totals[1], totals[2], totals[3:k], dict(zip(names, totals[k:], strict=True))


def _abs_error_sum(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A regression's counterpart of the count of right answers: the summed absolute error (per row, over outputs)."""
    return (outputs - y).abs().mean(dim=1).sum()


def train_loop(cfg: dict[str, Any]) -> None:
    """A training worker's entry point (see _train_loop). An exception raised in the user's model or loss is told apart
    here, where its traceback is still live, and travels to the stage as their UserCodeError."""
    from aidc.errors import AidcError
    from aidc.pipeline.boundary import from_users_code

    try:
        _train_loop(cfg)
    except Exception as exc:
        ctx = cfg["ctx"]
        users = (
            None
            if isinstance(exc, AidcError)
            else from_users_code(exc, stage=ctx.stage, run_id=ctx.run_id, log_path=ctx.log_path)
        )
        if users is not None:
            raise users from None
        raise


def _train_loop(cfg: dict[str, Any]) -> None:
    """The training loop on each worker (training.workers starts it); rank 0 reports progress and metrics and writes
    the checkpoints.

    Asked to stop (``ctx.stop``), the workers agree on a step boundary and rank 0 checkpoints the epoch part-way
    (weights, optimizer, the step, the epoch's running sums, every worker's random state); a run resumed from it
    skips the steps done and ends the epoch with the metrics it would have had without the stop.
    """
    from aidc.training.session import get_device, prepare_data_loader, prepare_model

    ctx, rank = cfg["ctx"], session.get_context().get_world_rank()
    world = session.get_context().get_world_size()
    batch_size = max(1, cfg["batch_size"] // world)
    torch.manual_seed(cfg["seed"])
    data = load_arrays(ctx.get_artifact(cfg["data"]))
    device = get_device()
    model = build_model(cfg["arch"])
    params: Any = model.parameters()
    if cfg.get("init_from"):  # transfer: the parent's weights (a resumed run's own come over them below), groups
        from aidc.training.transfer import parameter_groups, start_from

        init = start_from(model, ctx.get_artifact(cfg["init_from"]), cfg["transfer"])
        params = parameter_groups(model, cfg["lr"], cfg["transfer"])
        if rank == 0:
            ctx.log(
                f"started from {cfg['init_from'].get('ref', 'a registered model')}: {len(init['loaded'])} tensors "
                f"loaded, fresh {init['fresh'] or 'none'}, frozen {init['frozen'] or 'none'}"
            )
    optimizer = make_optimizer(cfg["optimizer"], params, cfg["lr"], cfg["weight_decay"])
    state = _restore(cfg)
    start, best, history = 1, {"val_loss": float("inf"), "epoch": 0, "ref": None}, []
    bad_epochs, partial = 0, None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, best, bad_epochs, history = state["epoch"] + 1, state["best"], state["bad_epochs"], state["history"]
        partial = _resume_point(state, world, batch_size)
        if best["ref"] is None and "partial" not in state:  # the epoch checkpoint we resume from is the best so far
            best = {**best, "ref": cfg.get("resume")}
        if rank == 0:
            if partial is not None:
                ctx.log(f"resumed at epoch {partial['epoch']} step {partial['step']} of {partial['steps']}")
            elif "partial" in state:
                ctx.log(
                    f"resumed after epoch {state['epoch']}: the workers or batch size changed since "
                    f"epoch {start} stopped part-way, so it starts over"
                )
            else:
                ctx.log(f"resumed after epoch {state['epoch']}")
    epochs, patience = cfg["epochs"], cfg["patience"]
    if (
        state is not None
        and partial is None
        and "partial" not in state
        and (start > epochs or (patience is not None and bad_epochs >= patience))
    ):
        # Its last epoch was checkpointed, then the stage was stopped before it could return (killed, or a second
        # Ctrl-C): nothing is left to train. Report where training ended, as the last epoch did.
        if rank == 0:
            ctx.log(f"training had already ended at epoch {state['epoch']}: nothing left to train")
        _report_finished(state, best, history, early=start <= epochs, rank=rank)
        return
    model = prepare_model(model)
    columns = [torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])]
    loss_fn = loss_function(cfg.get("task", "classification"), cfg.get("loss"), cfg["arch"].get("folder"))
    val_extra: list[torch.Tensor] = []
    if cfg.get("distill"):  # a student: each row travels with the teacher's logits for it, the loss mixes both
        teacher, loss_fn = _teacher(ctx, cfg["distill"])
        columns.append(torch.from_numpy(evaluate_arrays(teacher, data["x_train"])))
        val_extra = [torch.from_numpy(evaluate_arrays(teacher, data["x_val"])).to(device)]
    train_set = torch.utils.data.TensorDataset(*columns)
    sampler = EpochSampler(train_set, world, rank, cfg["seed"])
    loader = prepare_data_loader(
        torch.utils.data.DataLoader(train_set, batch_size=batch_size, sampler=sampler), add_dist_sampler=False
    )
    steps = math.ceil(sampler.num_samples / batch_size)
    agreement = StopAgreement(ctx.stop, rank, device)
    x_val = torch.from_numpy(data["x_val"]).to(device)
    y_val = torch.from_numpy(data["y_val"]).to(device)
    regression = cfg.get("task") == "regression"
    step_fn = users_step(cfg.get("step"), cfg["arch"].get("folder"))
    score = "mae" if regression else "accuracy"  # what the epoch's "correct" sums add up to
    writer = CheckpointWriter(ctx, rank)
    for epoch in range(start, epochs + 1):
        done = partial["step"] if partial else 0
        sampler.set_epoch(epoch, skip=done * batch_size)
        model.train()
        began = time.perf_counter() - (partial["seconds"] if partial else 0.0)
        sums = EpochSums.zero(device)
        if step_fn is not None:
            step_fn.epoch = epoch
        if partial and rank == 0:  # the steps before the stop, already summed over every worker
            sums.add(partial["loss_sum"], partial["correct"], partial["seen"], partial.get("extra"))
            sums.scored = partial.get("scored", True)

        def after_step(i: int, epoch: int = epoch) -> bool:
            if i == steps:  # the epoch's end is reported (and checkpointed) below
                return False
            if rank == 0:
                ctx.progress("batches", i, steps, epoch=epoch)
            return agreement.after_step()

        stopped = train_steps(
            model,
            optimizer,
            loss_fn,
            loader,
            sums,
            first=done + 1,
            device=device,
            rng=partial["rng"][rank] if partial else None,
            after_step=after_step,
            score=_abs_error_sum if regression else None,
            users_step=step_fn,
        )
        partial = None
        waited = writer.settle()  # the previous epoch's checkpoint stored and reported (``best`` gets its ref)
        best = writer.best(best)
        if stopped is not None:
            loss_sum, correct, seen, _, extra = _sums_across_workers(sums)
            rngs = gather_rng_states(device)
            if rank == 0:
                net = _network(model)
                where = {
                    "epoch": epoch,
                    "step": stopped,
                    "steps": steps,
                    "workers": world,
                    "batch_size": batch_size,
                    "loss_sum": loss_sum,
                    "correct": correct,
                    "seen": int(seen),
                    "extra": extra,
                    "scored": sums.scored,
                    "seconds": time.perf_counter() - began,
                    "rng": rngs,
                }
                snapshot = {
                    "epoch": epoch - 1,
                    "model": net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "best": best,
                    "bad_epochs": bad_epochs,
                    "history": history,
                    "arch": cfg["arch"],
                    "partial": where,
                }
                blob = io.BytesIO()
                torch.save(snapshot, blob)
                ctx.put_artifact(blob.getvalue(), kind="checkpoint", name=f"epoch-{epoch:03d}-step-{stopped:05d}.pt")
                ctx.log(f"stopped on request: checkpointed epoch {epoch} at step {stopped} of {steps}")
                ctx.flush()
            session.report({"stopped": True, "epoch": epoch, "step": stopped})
            return
        epoch_seconds = time.perf_counter() - began
        loss_total, correct_total, seen_total, (asked,), extra = _sums_across_workers(sums, float(agreement.wanted()))
        net = _network(model)
        net.eval()
        with torch.no_grad():
            val_logits = net(x_val)
            val_loss = float(loss_fn(val_logits, y_val, *val_extra))
            if regression:
                val_acc = float(_abs_error_sum(val_logits, y_val)) / max(1, len(y_val))
            else:
                val_acc = float((val_logits.argmax(1) == y_val).float().mean())
        metrics = {
            "train_loss": loss_total / seen_total,
            # (a user's step that gives no outputs leaves the training accuracy or MAE unknown)
            **({f"train_{score}": correct_total / seen_total} if sums.scored else {}),
            **{f"train_{name}": value / seen_total for name, value in extra.items()},
            "val_loss": val_loss,
            f"val_{score}": val_acc,
            "epoch_seconds": epoch_seconds,
        }
        history.append({"epoch": epoch, **metrics})
        improved = val_loss < best["val_loss"] - cfg["min_delta"]
        bad_epochs = 0 if improved else bad_epochs + 1
        if improved:  # ref None = "this very checkpoint"; filled in once it is stored
            best = {"val_loss": val_loss, f"val_{score}": val_acc, "epoch": epoch, "ref": None}
        stop = patience is not None and bad_epochs >= patience
        # asked to stop as the epoch ended: its checkpoint is where a resumed run starts (unless training is done)
        halt = asked > 0 and not stop and epoch < epochs
        report: dict[str, Any] = {"epoch": epoch, **metrics, "stopped_early": stop, "stopped": halt}
        if rank == 0:
            # The state is serialised here (training goes on from it at once); storing it (encrypted, hashed:
            # most of a checkpoint's cost) and reporting it happen on the writer thread while the next epoch trains.
            saving = time.perf_counter()
            snapshot = {
                "epoch": epoch,
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "best": best,
                "bad_epochs": bad_epochs,
                "history": history,
                "arch": cfg["arch"],
            }
            blob = io.BytesIO()
            torch.save(snapshot, blob)
            held = time.perf_counter() - saving + waited  # what this checkpoint cost the group's training time
            writer.submit(blob.getvalue(), epoch, epochs, metrics, report, best, held, halt, score, val_acc, steps)
        else:
            session.report(report, checkpoint=None)
        if halt:
            writer.settle()
            return
        if stop:
            if rank == 0:
                ctx.log(f"early stop at epoch {epoch}: val_loss has not improved for {patience} epochs")
            break
    writer.settle()


class CheckpointWriter:
    """Rank 0's epoch checkpoints, stored and reported one at a time on a thread of their own, so that the next
    epoch trains meanwhile. Each is settled (stored, its metrics and progress sent, reported to the driver) before
    the next epoch's end, a stop or the loop's end: the driver never sees a checkpoint that is not stored, and one
    not yet reported when a worker dies is simply not there (the run resumes from the one before)."""

    def __init__(self, ctx: Any, rank: int) -> None:
        self.ctx, self.rank = ctx, rank
        self._pending: Any = None
        self._best: dict[str, Any] | None = None

    def submit(
        self,
        blob: bytes,
        epoch: int,
        epochs: int,
        metrics: dict[str, Any],
        report: dict[str, Any],
        best: dict[str, Any],
        held: float,
        halt: bool,
        score: str,
        val_acc: float,
        steps: int,
    ) -> None:
        import threading

        from aidc.training.session import Checkpoint

        def store() -> None:
            ctx = self.ctx
            tmp = tempfile.mkdtemp(prefix="aidc-ckpt-")
            try:
                ref = ctx.put_artifact(blob, kind="checkpoint", name=f"epoch-{epoch:03d}.pt")
                kept = {**best, "ref": ref} if best["ref"] is None else best
                _point_to(tmp, ref, kept)
                ctx.metric("checkpoint_seconds", epoch, held)  # its share of training time: benchmarks/recovery
                for name, value in metrics.items():  # after the checkpoint: a recorded epoch is a resumable one
                    ctx.metric(name, epoch, value)
                ctx.progress("batches", steps, steps, epoch=epoch)
                ctx.progress("epochs", epoch, epochs, force=True, **{f"val_{score}": round(val_acc, 4)})
                if halt:
                    ctx.log(f"stopped on request after epoch {epoch}")
                ctx.flush()  # this epoch's metrics and checkpoint are recorded before the next is reported
                session.report({**report, "best": json.dumps(kept)}, checkpoint=Checkpoint.from_directory(tmp))
                self._best = kept
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

        failed: list[BaseException] = []

        def run() -> None:
            try:
                store()
            except BaseException as exc:  # raised again on the training thread, at the next settle
                failed.append(exc)

        thread = threading.Thread(target=run, name=f"aidc-checkpoint-{epoch}", daemon=True)
        thread.start()
        self._pending = (thread, failed)

    def settle(self) -> float:
        """Wait for the checkpoint in flight (raising its error, if it failed); the seconds waited."""
        if self._pending is None:
            return 0.0
        began = time.perf_counter()
        thread, failed = self._pending
        thread.join()
        self._pending = None
        if failed:
            raise failed[0]
        return time.perf_counter() - began

    def best(self, best: dict[str, Any]) -> dict[str, Any]:
        """``best`` with the ref of the checkpoint settled last, where it is that checkpoint (stored since)."""
        kept, self._best = self._best, None
        if kept is not None and best["ref"] is None and kept["epoch"] == best["epoch"]:
            return kept
        return best


def _teacher(ctx: Any, distill: dict[str, Any]) -> tuple[nn.Module, Any]:
    """The teacher (eval mode, on CPU: its logits are worked out once, before the first step) and the student's
    loss on (student logits, labels, teacher logits)."""
    from aidc.compression.distill import soft_target_loss

    teacher = load_weights(distill["arch"], ctx.get_artifact(distill["checkpoint"]))
    return teacher, soft_target_loss(distill["temperature"], distill["alpha"])


def _point_to(folder: str, ref: str | None, best: dict[str, Any]) -> None:
    """Make ``folder`` the checkpoint reported to the driver: a pointer to the encrypted one in the artifact store,
    never the model itself (a restarted worker loads the real one through the artifact store, see _restore)."""
    for leftover in Path(folder).glob("*"):
        leftover.unlink()
    (Path(folder) / POINTER_FILE).write_text(json.dumps({"ref": ref, "best": best}))


def _report_finished(
    state: dict[str, Any], best: dict[str, Any], history: list[dict[str, Any]], *, early: bool, rank: int
) -> None:
    """The report the last epoch made, again, from its checkpoint (rank 0 reports the checkpoint too)."""
    from aidc.training.session import Checkpoint

    last = {k: v for k, v in (history[-1] if history else {}).items() if k != "epoch"}
    report = {"epoch": state["epoch"], **last, "stopped_early": early, "stopped": False, "best": json.dumps(best)}
    if rank != 0:
        session.report(report)
        return
    tmp = tempfile.mkdtemp(prefix="aidc-ckpt-")
    try:
        _point_to(tmp, state.get("ref"), best)
        session.report(report, checkpoint=Checkpoint.from_directory(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def evaluate_arrays(model: nn.Module, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    """Logits for ``x`` in batches, on CPU, in eval mode."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(torch.from_numpy(x[i : i + batch])).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)
