"""The worker side of data-parallel training (the driver side is training.workers): a pooled Ray actor with torch
imported that runs one training at a time in a torch.distributed group, its view of the stage (progress as a
heartbeat, stop when the driver is gone) and the small actor rank 0 reports to."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from typing import Any

NAMESPACE = "aidc-train"
PREFIX = "aidc-train-worker"
IDLE_S = float(os.environ.get("AIDC_TRAIN_POOL_IDLE_S", "900"))  # a pooled worker unused this long exits
CLAIM_HOLD_S = 60.0  # a claim whose training never starts lapses after this long


# Tests only: the workers hold after reporting the epoch this file names ("epoch:N"), for as long as it exists,
# so that a test acts (kills a node) at an exact point of training, never too late. Unset in real use.
HOLD_FILE = os.environ.get("AIDC_TEST_HOLD_FILE", "")


def _hold_if_asked(metrics: dict[str, Any], sent: list[Any]) -> None:
    """Hold here (the epoch's report delivered first) while the test's hold file names this epoch; a file
    ``HOLD_FILE.held`` says a worker is holding."""
    import ray

    try:
        wanted = open(HOLD_FILE, encoding="utf-8").read().strip()
    except OSError:
        return
    if wanted != f"epoch:{metrics.get('epoch')}":
        return
    ray.get(sent, timeout=30)
    open(f"{HOLD_FILE}.held", "a", encoding="utf-8").close()
    while os.path.exists(HOLD_FILE):
        time.sleep(0.05)


def pool_tag() -> str:
    """The code a pooled worker has imported: a worker of other code is never reused (its modules are cached)."""
    from aidc import __version__
    from aidc.pipeline.stage import package_source_digest

    digests = (package_source_digest(p)[:8] for p in ("aidc.training", "aidc.data", "aidc.compression"))
    return "-".join([__version__, *digests])  # (compression: a distillation's loss is imported by the workers)


def _first_step_paths() -> None:
    """Everything a training's first step imports or sets up once per process, done ahead: torch, the loop, an
    optimizer (its first construction imports torch._dynamo: seconds), autograd's first backward, DDP's module."""
    import torch
    import torch.distributed
    import torch.nn.parallel  # noqa: F401

    from aidc.training.loop import make_optimizer

    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    model(torch.zeros(1, 1, 4, 4))
    optimizer = make_optimizer("adam", model.parameters(), 1e-3, 0.0)
    torch.nn.functional.cross_entropy(model(torch.zeros(2, 1, 4, 4)), torch.zeros(2, dtype=torch.long)).backward()  # type: ignore[no-untyped-call]
    optimizer.step()


class TrainWorker:
    """A Ray actor (threaded: a claim or a ping is answered while it trains) that runs one training at a time."""

    def __init__(self, idle_s: float = IDLE_S) -> None:
        _first_step_paths()
        self._lock = threading.Lock()
        self._holder: str | None = None
        self._held_until = 0.0
        self._used = time.monotonic()
        self._idle_s = idle_s
        if idle_s > 0:
            threading.Thread(target=self._exit_when_idle, daemon=True).start()

    def _exit_when_idle(self) -> None:
        while True:
            time.sleep(min(30.0, self._idle_s))
            with self._lock:
                if self._holder is None and time.monotonic() - self._used > self._idle_s:
                    os._exit(0)  # detached, not restarted: the pool simply has one worker fewer

    def where(self) -> dict[str, Any]:
        import socket

        import ray

        with socket.socket() as s:  # a port for the group's rendezvous, if this worker is rank 0
            s.bind(("", 0))
            port = s.getsockname()[1]
        node = ray.get_runtime_context().get_node_id()
        return {"ip": ray.util.get_node_ip_address(), "node": node, "pid": os.getpid(), "port": port}  # type: ignore[no-untyped-call]

    def claim(self, token: str) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._holder is not None and self._held_until > now:
                return False
            self._holder, self._held_until, self._used = token, now + CLAIM_HOLD_S, now
            return True

    def release(self, token: str) -> None:
        with self._lock:
            if self._holder == token:
                self._holder, self._used = None, time.monotonic()

    def run(self, token: str, fn: str, cfg: dict[str, Any], group: dict[str, Any]) -> None:
        """``fn``: "module:function", imported here (the driver never imports torch for it)."""
        import importlib

        import torch
        import torch.distributed as dist

        from aidc.training import session

        began = time.time()
        with self._lock:
            if self._holder != token:
                raise RuntimeError("this worker's claim lapsed before its training started")
            self._held_until = float("inf")
        rank, world, reports = group["rank"], group["world"], group["reports"]
        sent: list[Any] = []
        try:
            torch.set_num_threads(group["threads"])
            device = torch.device(group["device"])
            if device.type == "cuda":
                torch.cuda.set_device(device)
            if world > 1:
                dist.init_process_group(
                    group["backend"],
                    init_method=f"tcp://{group['master']}",
                    rank=rank,
                    world_size=world,
                    timeout=timedelta(seconds=group["timeout_s"]),
                )

            def send(metrics: dict[str, Any], checkpoint: Any) -> None:
                files = checkpoint.files if checkpoint is not None else None
                sent.append(reports.report.remote(group["attempt"], metrics, files))
                if HOLD_FILE:
                    _hold_if_asked(metrics, sent)

            ckpt = group["checkpoint"]
            context = session.TrainContext(
                rank=rank,
                world=world,
                local_rank=group["local_rank"],
                device=device,
                checkpoint=session.Checkpoint(ckpt) if ckpt is not None else None,
                send=send,
                marks={"run": began, "group": time.time()},
            )
            session.begin(context)
            module, _, name = fn.partition(":")
            watched = _Watched(cfg["ctx"], reports, rank, context, group["attempt"])
            getattr(importlib.import_module(module), name)({**cfg, "ctx": watched})
        finally:
            session.end()
            try:
                if sent:
                    import ray

                    ray.get(sent, timeout=30)  # the driver reads the reports once every worker has returned
            finally:
                if dist.is_initialized():
                    dist.destroy_process_group()
                with self._lock:
                    self._holder, self._used = None, time.monotonic()


class _Watched:
    """The stage context as a worker's loop sees it: each progress report is also a heartbeat to the driver (at
    most one a second), and the stop request also fires when the driver is gone (its reports actor died with it),
    so a pooled worker never trains on for a stage nobody waits on."""

    def __init__(self, ctx: Any, reports: Any, rank: int, context: Any, attempt: int) -> None:
        self._ctx, self._reports, self._rank, self._context, self._attempt = ctx, reports, rank, context, attempt
        self._beat = 0.0
        self.stop = _StopOrOrphaned(getattr(ctx, "stop", None), reports)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    def get_artifact(self, value: dict[str, Any]) -> bytes:
        data: bytes = self._ctx.get_artifact(value)
        self._context.mark("data")  # the first read is the dataset
        return data

    def progress(self, *args: Any, **kwargs: Any) -> None:
        now = time.monotonic()
        if self._rank == 0 and now - self._beat >= 1.0:
            first = self._beat == 0.0
            self._beat = now
            if first:
                self._context.mark("first_step")
            self._reports.beat.remote(self._attempt, self._context.marks if first else None)
        self._ctx.progress(*args, **kwargs)


class _StopOrOrphaned:
    """The stage's StopRequest, or-ed with "the driver is gone" (a non-blocking liveness read every second)."""

    def __init__(self, stop: Any, reports: Any) -> None:
        self.stop, self.reports = stop, reports
        self._pending: Any = None
        self._asked = 0.0
        self._orphaned = False

    def requested(self) -> bool:
        if self._orphaned or (self.stop is not None and self.stop.requested()):
            return True
        import ray

        if self._pending is not None:
            ready, _ = ray.wait([self._pending], timeout=0)
            if ready:
                try:
                    ray.get(self._pending)
                except Exception:
                    self._orphaned = True
                self._pending = None
        elif time.monotonic() - self._asked >= 1.0:
            self._asked = time.monotonic()
            self._pending = self.reports.alive.remote()
        return self._orphaned

    def was_set(self) -> bool:
        return self._orphaned or (self.stop is not None and bool(self.stop.was_set()))


class TrainingReports:
    """Rank 0's reports (the last one, and the last one with a checkpoint) and its heartbeat, for the driver."""

    def __init__(self) -> None:
        self.metrics: dict[str, Any] | None = None
        self.checkpoint: dict[str, bytes] | None = None
        self.last_beat = time.monotonic()
        self.attempt = -1
        self.first_beat: float | None = None
        self.marks: dict[str, float] | None = None

    def alive(self) -> bool:
        return True

    def beat(self, attempt: int, marks: dict[str, float] | None = None) -> None:
        if attempt != self.attempt:  # the first beat of a (re)started group
            self.attempt, self.first_beat, self.marks = attempt, None, None
        if marks is not None:
            self.marks = marks
        self.last_beat = time.monotonic()
        if self.first_beat is None:
            self.first_beat = self.last_beat

    def report(self, attempt: int, metrics: dict[str, Any], checkpoint: dict[str, bytes] | None) -> None:
        self.metrics = metrics
        if checkpoint is not None:
            self.checkpoint = checkpoint
        self.beat(attempt)

    def state(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "attempt": self.attempt,
            "metrics": self.metrics,
            "checkpoint": self.checkpoint,
            "since_beat": now - self.last_beat,
            "since_first_beat": None if self.first_beat is None else now - self.first_beat,
            "marks": self.marks,
        }
