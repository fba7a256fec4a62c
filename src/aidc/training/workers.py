"""Data-parallel training workers on Ray: a warm pool of processes with torch imported, placed by a placement
group, formed into a torch.distributed group, restarted from the latest checkpoint when one dies or stalls.

Why not Ray Train (docs/architecture.md#training-workers): every ``fit()`` starts a controller actor, a
placement-group cleaner and fresh worker actors that import torch again — 9–12 s before the first line of the
loop on this 2-core host, against 4 s for ``torchrun`` to reach its first step. Here the workers outlive a
training: they are detached actors in the ``aidc-train`` namespace, holding no CPU while idle (the placement
group holds the CPUs while they train), claimed by one training at a time, and gone with the Ray cluster (a local
command's), or after ``IDLE_S`` unused (a server's or an operator's cluster). What Ray Train guaranteed is kept:

- placement: a placement group of one bundle per worker (PACK), the whole group or nothing; a worker runs on its
  bundle's node; with ``min_workers`` below ``workers`` a restart after a lost node shrinks to what fits;
- failure restarts: a worker process that dies, or a group that reports no progress for ``stall_s``, is stopped
  and the group restarted from the latest checkpoint, up to ``max_failures`` times; each failure and resume is
  logged and recorded as stage metrics (``worker_failures``, ``recovery_seconds``);
- checkpoints: rank 0's reports reach a small reports actor in order; a restarted group gets the latest one's
  pointer (``session.get_checkpoint``), as Ray Train's ``get_checkpoint`` did.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

NAMESPACE = "aidc-train"
PREFIX = "aidc-train-worker"
IDLE_S = float(os.environ.get("AIDC_TRAIN_POOL_IDLE_S", "900"))  # a pooled worker unused this long exits
CLAIM_HOLD_S = 60.0  # a claim whose training never starts lapses after this long
GRACE_S = 5.0  # after a failure, how long the other workers get to end on their own before they are stopped


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


# -- the driver's side


class TrainingFailed(Exception):
    """Training could not finish: the loop raised (``cause``), or workers kept failing past ``max_failures``."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass
class FitResult:
    metrics: dict[str, Any]
    checkpoint: dict[str, bytes] | None
    failures: int
    workers: int


def _worker_class() -> Any:
    import ray

    return ray.remote(TrainWorker)


def _pooled(tag: str) -> dict[str, list[str]]:
    """The pooled workers of this code by node id: names ``PREFIX-tag-NODE-xxxx``."""
    import ray

    by_node: dict[str, list[str]] = {}
    head = f"{PREFIX}-{tag}-"
    for entry in ray.util.list_named_actors(all_namespaces=True):
        name = entry["name"] if isinstance(entry, dict) else entry
        if isinstance(entry, dict) and entry.get("namespace") != NAMESPACE:
            continue
        if name.startswith(head):
            by_node.setdefault(name[len(head) :].rsplit("-", 1)[0], []).append(name)
    return by_node


def _new_worker(tag: str, node_id: str) -> Any:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return (
        _worker_class()
        .options(
            name=f"{PREFIX}-{tag}-{node_id}-{secrets.token_hex(3)}",
            namespace=NAMESPACE,
            lifetime="detached",
            num_cpus=0,
            max_concurrency=4,  # threaded: a claim or a ping is answered while it trains
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        )
        .remote()
    )


def warm_pool(count: int, node_id: str | None = None) -> None:
    """Start workers (without waiting) so that ``count`` of this code exist on a node (default: this one)."""
    import ray

    tag = pool_tag()
    node = node_id or ray.get_runtime_context().get_node_id()
    for _ in range(count - len(_pooled(tag).get(node, []))):
        _new_worker(tag, node)


class WorkerGroup:
    """``world`` claimed workers, one per bundle of a placement group that holds their CPUs (or GPUs)."""

    def __init__(self, pg: Any, handles: list[Any], token: str, pooled: bool) -> None:
        self.pg, self.handles, self.token, self.pooled = pg, handles, token, pooled
        self.marks: dict[str, float] = {}  # when placement, claiming and the dispatch ended (time.time())
        self.started = 0  # workers started for this group (the others came warm from the pool)

    @property
    def world(self) -> int:
        return len(self.handles)

    @classmethod
    def start(cls, workers: int, min_workers: int, use_gpu: bool, place_timeout_s: float) -> WorkerGroup:
        import ray
        from ray.util.placement_group import placement_group, placement_group_table, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        bundle = {"CPU": 1.0, "GPU": 1.0} if use_gpu else {"CPU": 1.0}
        pg = None
        for world in range(workers, min_workers - 1, -1):
            pg = placement_group([bundle] * world, strategy="PACK")
            last = world == min_workers
            if ray.wait([pg.ready()], timeout=place_timeout_s if last else min(10.0, place_timeout_s))[0]:
                break
            remove_placement_group(pg)
            pg = None
        placed = time.time()
        if pg is None:
            raise TrainingFailed(
                f"the Ray cluster has no room for {min_workers} training worker(s) of {bundle} "
                f"(waited {place_timeout_s:g} s)"
            )
        token = secrets.token_hex(8)
        if use_gpu:  # a GPU is the bundle's: the worker must be started in it (Ray sets CUDA_VISIBLE_DEVICES)
            handles = [
                _worker_class()
                .options(
                    num_cpus=1,
                    num_gpus=1,
                    max_concurrency=4,
                    scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=i),
                )
                .remote(0)
                for i in range(world)
            ]
            ray.get([h.claim.remote(token) for h in handles])
            made = cls(pg, handles, token, pooled=False)
            made.marks, made.started = {"placed": placed, "claimed": time.time()}, world
            return made
        nodes = placement_group_table(pg)["bundles_to_node_id"]
        tag = pool_tag()
        pooled = _pooled(tag)
        chosen: list[Any] = [None] * world
        started = 0
        for _ in range(3):  # a pooled worker may be taken by another training meanwhile: try others, then start one
            wanted = [i for i in range(world) if chosen[i] is None]
            if not wanted:
                break
            tries: list[tuple[int, Any, Any]] = []
            for i in wanted:
                node = nodes[i]
                names = pooled.get(node, [])
                handle = _lookup(names.pop(0)) if names else None
                if handle is None:
                    handle, started = _new_worker(tag, node), started + 1
                tries.append((i, handle, handle.claim.remote(token)))
            for i, handle, ref in tries:
                try:
                    if ray.get(ref, timeout=120):
                        chosen[i] = handle
                except Exception:
                    continue
        if any(h is None for h in chosen):
            remove_placement_group(pg)
            raise TrainingFailed("could not claim training workers on the placed nodes")
        made = cls(pg, chosen, token, pooled=True)
        made.marks, made.started = {"placed": placed, "claimed": time.time()}, started
        return made

    def run(
        self,
        fn: str,
        cfg: dict[str, Any],
        *,
        reports: Any,
        checkpoint: dict[str, bytes] | None,
        use_gpu: bool,
        stall_s: float | None,
        attempt: int = 0,
        on_start: Callable[[list[dict[str, Any]]], None] = lambda where: None,
    ) -> str | BaseException | None:
        """Train until done: None; a failure to restart from (a worker died, or the group stalled): its reason; the
        loop's own exception (not restarted: it would fail the same way) as is."""
        import ray
        from ray.exceptions import RayError, RayTaskError

        where = ray.get([h.where.remote() for h in self.handles], timeout=120)
        self.marks["located"] = time.time()
        on_start(where)
        master = f"{where[0]['ip']}:{where[0]['port']}"
        began = time.monotonic()
        refs = []
        for rank, handle in enumerate(self.handles):
            group = {
                "rank": rank,
                "world": self.world,
                "local_rank": sum(1 for w in where[:rank] if w["ip"] == where[rank]["ip"]),
                "master": master,
                "backend": "nccl" if use_gpu else "gloo",
                "device": "cuda:0" if use_gpu else "cpu",  # (Ray gives each GPU worker its own, as device 0)
                "threads": 1,
                "timeout_s": max(60.0, stall_s or 0.0) * 2,
                "reports": reports,
                "attempt": attempt,
                "checkpoint": checkpoint,
            }
            refs.append(handle.run.remote(self.token, fn, cfg, group))
        self.marks["dispatched"] = time.time()
        pending, died, raised = list(refs), [], []
        reason: str | None = None
        checked, asked = time.monotonic(), None
        while pending and reason is None:
            ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            for ref in ready:
                rank = refs.index(ref)
                try:
                    ray.get(ref)
                except RayTaskError as exc:  # (first: it is a RayError too)
                    raised.append((rank, exc))
                except RayError as exc:  # the actor, or its node, is gone
                    died.append(rank)
                    reason = f"worker {rank} (pid {where[rank]['pid']}) died: {type(exc).__name__}"
            if raised and reason is None:
                # a loop that raised: its own error, unless a peer dying caused it — give the peers a moment to tell
                ready, pending = ray.wait(pending, num_returns=len(pending), timeout=GRACE_S) if pending else ([], [])
                for ref in ready:
                    try:
                        ray.get(ref)
                    except RayTaskError:
                        pass
                    except RayError:
                        died.append(refs.index(ref))
                if died:
                    reason = f"worker {died[0]} (pid {where[died[0]]['pid']}) died"
                elif not pending:
                    first = raised[0][1]
                    cause: BaseException = first.cause if first.cause is not None else first
                    return cause
                else:
                    reason = f"worker {raised[0][0]} failed: {raised[0][1].cause!r}"
            if reason is None and stall_s:  # the heartbeat, read without waiting (the actor may still be starting)
                if asked is None and time.monotonic() - checked >= 1.0:
                    asked, checked = reports.state.remote(), time.monotonic()
                elif asked is not None and ray.wait([asked], timeout=0)[0]:
                    state = ray.get(asked)
                    asked = None
                    since = state["since_beat"] if state["attempt"] == attempt else float("inf")
                    quiet = min(since, time.monotonic() - began)
                    if quiet > stall_s:
                        reason = f"stalled: no progress for {quiet:.0f} s (stall_seconds {stall_s:g})"
                        died = list(range(self.world))  # stuck where they are: stop them all
        if reason is None:
            return None
        everyone = died == list(range(self.world))
        _, stuck = (
            ray.wait(pending, num_returns=len(pending), timeout=0 if everyone else GRACE_S) if pending else ([], [])
        )
        for ref in stuck:
            died.append(refs.index(ref))
        for rank in set(died):
            ray.kill(self.handles[rank], no_restart=True)
        return reason

    def close(self) -> None:
        import ray
        from ray.util.placement_group import remove_placement_group

        for handle in self.handles:
            if self.pooled:
                handle.release.remote(self.token)
            else:
                ray.kill(handle, no_restart=True)
        remove_placement_group(self.pg)


LAUNCH_PHASES = {  # phase: the mark it ends at (driver's marks, then rank 0's; see session.TrainContext.marks)
    "placement group": "placed",
    "claim workers": "claimed",
    "locate": "located",
    "dispatch": "dispatched",
    "to worker": "run",
    "process group": "group",
    "dataset read": "data",
    "model": "model",
    "DDP": "ddp",
    "first step": "first_step",
}


def launch_phases(began: float, driver: dict[str, float], worker: dict[str, float]) -> dict[str, float]:
    """Seconds per launch phase, from the driver's start of a group to rank 0's first step."""
    marks, out, last = {**driver, **worker}, {}, began
    for phase, mark in LAUNCH_PHASES.items():
        if mark in marks:
            out[phase] = max(0.0, marks[mark] - last)
            last = max(last, marks[mark])
    return out


def _lookup(name: str) -> Any:
    import ray

    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None


def fit(
    fn: str,
    cfg: dict[str, Any],
    *,
    workers: int,
    min_workers: int,
    use_gpu: bool,
    max_failures: int,
    stall_s: float | None,
    place_timeout_s: float = 60.0,
    log: Callable[[str], None] = lambda message: None,
    metric: Callable[[str, int, float], None] = lambda name, step, value: None,
) -> FitResult:
    """Run ``fn(cfg)`` (``fn`` = "module:function") on ``workers`` data-parallel workers until it returns on all
    of them, restarting the group from rank 0's latest reported checkpoint after each failure, at most
    ``max_failures`` times."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()  # with this driver: a lost worker node never takes it along
    reports: Any = (
        ray.remote(TrainingReports)
        .options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
        .remote()
    )
    failures, checkpoint, world = 0, None, workers
    failed_at: float | None = None
    try:
        while True:
            began = time.time()
            group = WorkerGroup.start(world, min(min_workers, world), use_gpu, place_timeout_s)
            world = group.world

            def started(where: list[dict[str, Any]], group: WorkerGroup = group) -> None:
                ips = ", ".join(sorted({w["ip"] for w in where}))
                pids = ", ".join(str(w["pid"]) for w in where)
                log(f"{group.world} worker(s) on {len({w['node'] for w in where})} node(s) at {ips} (pids {pids})")

            try:
                outcome = group.run(
                    fn,
                    cfg,
                    reports=reports,
                    checkpoint=checkpoint,
                    use_gpu=use_gpu,
                    stall_s=stall_s,
                    attempt=failures,
                    on_start=started,
                )
                state = ray.get(reports.state.remote(), timeout=30)
            finally:
                group.close()
            current = state["attempt"] == failures  # (heartbeats of this group, not of one before it)
            if current and state["marks"]:
                phases = launch_phases(began, group.marks, state["marks"])
                log(
                    f"launch {sum(phases.values()):.2f} s to the first step ({group.started} of {group.world} "
                    f"worker(s) started, the rest warm): "
                    + ", ".join(f"{name} {seconds:.2f}" for name, seconds in phases.items())
                )
                metric("launch_seconds", failures, sum(phases.values()))
            if current and failed_at is not None and state["since_first_beat"] is not None:
                # failure seen → the resumed group's first step (its first heartbeat): what a recovery cost
                seconds = time.monotonic() - state["since_first_beat"] - failed_at
                metric("recovery_seconds", failures, seconds)
                failed_at = None
            checkpoint = state["checkpoint"] or checkpoint
            if outcome is None:
                return FitResult(state["metrics"] or {}, checkpoint, failures, world)
            if isinstance(outcome, BaseException):
                raise TrainingFailed(f"{type(outcome).__name__}: {outcome}", outcome)
            failures += 1
            failed_at = time.monotonic()
            epoch = int((state["metrics"] or {}).get("epoch", 0)) if checkpoint is not None else 0
            metric("worker_failures", failures, float(epoch))
            if failures > max_failures:
                log(f"training failed: {outcome}; {failures} failures, more than max_failures {max_failures}")
                raise TrainingFailed(f"{outcome} (failure {failures}, max_failures {max_failures})")
            where = f"its checkpoint after epoch {epoch}" if checkpoint is not None else "the start"
            log(f"worker failure {failures} of at most {max_failures}: {outcome}; resuming from {where}")
    finally:
        ray.kill(reports, no_restart=True)
