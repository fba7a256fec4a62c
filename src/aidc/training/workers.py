"""Data-parallel training on Ray, the driver's side (the workers' side is training.worker): a warm pool of
processes with torch imported, placed by a placement group, formed into a torch.distributed group, restarted from
the latest checkpoint when one dies or stalls; a node whose worker died is reported (``on_node_failure``).

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

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aidc.training.worker import NAMESPACE, PREFIX, TrainingReports, TrainWorker, pool_tag

GRACE_S = 5.0  # after a failure, how long the other workers get to end on their own before they are stopped


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
        self.lost: list[str] = []  # after run(): the Ray nodes of the workers that died (not those stopped here)
        self.started = 0  # workers started for this group (the others came warm from the pool)

    @property
    def world(self) -> int:
        return len(self.handles)

    @classmethod
    def start(
        cls,
        workers: int,
        min_workers: int,
        use_gpu: bool,
        place_timeout_s: float,
        label_selector: dict[str, str] | None = None,
    ) -> WorkerGroup:
        """``label_selector``: the nodes every bundle must be on (a Ray label selector; None: any)."""
        import ray
        from ray.util.placement_group import placement_group, placement_group_table, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        bundle = {"CPU": 1.0, "GPU": 1.0} if use_gpu else {"CPU": 1.0}
        pg = None
        for world in range(workers, min_workers - 1, -1):
            pg = placement_group(
                [bundle] * world,
                strategy="PACK",
                bundle_label_selector=[label_selector] * world if label_selector else None,
            )
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
                    self.lost.append(where[rank]["node"])
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
                        self.lost.append(where[refs.index(ref)]["node"])
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
    on_node_failure: Callable[[str, str], None] = lambda node, reason: None,
    label_selector: dict[str, str] | None = None,
) -> FitResult:
    """Run ``fn(cfg)`` (``fn`` = "module:function") on ``workers`` data-parallel workers until it returns on all
    of them, restarting the group from rank 0's latest reported checkpoint after each failure, at most
    ``max_failures`` times. ``on_node_failure(ray_node_id, reason)``: told of each node a worker died on (the
    history the automatic cordon counts; a stall is no node's fault and is not told); ``label_selector``: the
    nodes the workers may run on (cluster.placement)."""
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
            group = WorkerGroup.start(world, min(min_workers, world), use_gpu, place_timeout_s, label_selector)
            world = group.world

            def started(where: list[dict[str, Any]], group: WorkerGroup = group) -> None:
                ips = ", ".join(sorted({w["ip"] for w in where}))
                pids = ", ".join(str(w["pid"]) for w in where)
                nodes = ", ".join(dict.fromkeys(w["node"] for w in where))
                log(
                    f"{group.world} worker(s) on {len({w['node'] for w in where})} node(s) at {ips} (pids {pids}; "
                    f"Ray nodes {nodes})"
                )

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
            for node in dict.fromkeys(group.lost):
                on_node_failure(node, outcome)
            epoch = int((state["metrics"] or {}).get("epoch", 0)) if checkpoint is not None else 0
            metric("worker_failures", failures, float(epoch))
            if failures > max_failures:
                log(f"training failed: {outcome}; {failures} failures, more than max_failures {max_failures}")
                raise TrainingFailed(f"{outcome} (failure {failures}, max_failures {max_failures})")
            where = f"its checkpoint after epoch {epoch}" if checkpoint is not None else "the start"
            log(f"worker failure {failures} of at most {max_failures}: {outcome}; resuming from {where}")
    finally:
        ray.kill(reports, no_restart=True)
