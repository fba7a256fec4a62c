"""Adaptive dynamic batching: a bounded per-model queue whose requests are merged along axis 0 off the event loop."""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aidc.errors import BackendUnavailable

# How often a batcher that has stopped waiting tries waiting again, so it notices when load rises; each
# probe that gathers nothing doubles the interval up to the most (a lone client pays for fewer probes).
PROBE_EVERY = 16
MOST_PROBE_EVERY = 512
EWMA = 0.2
# Batches the model is measured to finish faster than this run on the event loop instead of its thread.
INLINE_BELOW_S = 0.0005


class ServerOverloaded(BackendUnavailable):
    """The model's request queue is full; the client should retry after ``retry_after`` seconds."""

    code = "overloaded"
    http_status = 503

    def __init__(self, message: str, *, retry_after: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


@dataclass(frozen=True)
class BatchingConfig:
    """Limits for one model's queue. ``adaptive=False`` always waits up to the delay (tests, benchmarks)."""

    max_batch_size: int = 32
    max_queue_delay_ms: float = 2.0
    max_queue_size: int = 1024
    adaptive: bool = True

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.max_queue_size < 1 or self.max_queue_delay_ms < 0:
            raise ValueError("max_batch_size and max_queue_size must be ≥ 1 and max_queue_delay_ms ≥ 0")


@dataclass
class _Pending:
    inputs: dict[str, np.ndarray]
    rows: int
    key: tuple[Any, ...]  # requests merge only when every non-batch dim and dtype agree
    future: asyncio.Future[dict[str, np.ndarray]]
    arrival: float = field(default_factory=time.monotonic)
    on_done: Callable[[], None] | None = None  # called as soon as the future is settled, not a loop turn later


@dataclass
class BatcherStats:
    """What the batcher has learned and done; read by tests and metrics."""

    batches: int = 0
    requests: int = 0
    waits: int = 0
    wait_yield: float = 0.0  # EWMA of requests gathered per wait; starts pessimistic, probes raise it
    row_cost_single: float | None = None  # EWMA seconds per row at batch size 1
    row_cost_batched: float | None = None  # EWMA seconds per row at batch size > 1
    request_latency: float = 0.0  # EWMA seconds from arrival to answer
    inline: int = 0  # batches run on the event loop because the model is faster than a thread hop

    @property
    def batching_pays(self) -> bool:
        if self.row_cost_single is None or self.row_cost_batched is None:
            return True  # not measured yet: let the probes find out
        return self.row_cost_batched < 0.9 * self.row_cost_single


def _timed(
    infer: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]], inputs: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], float]:
    """The model's answer and how long the model itself took (not the hop to its thread)."""
    started = time.perf_counter()
    results = infer(inputs)
    return results, time.perf_counter() - started


def _settle(
    pending: _Pending, results: dict[str, np.ndarray] | None = None, *, error: BaseException | None = None
) -> None:
    if pending.future.done():
        return  # cancelled: the client went away
    if error is not None:
        pending.future.set_exception(error)
    else:
        pending.future.set_result(results)  # type: ignore[arg-type]
    if pending.on_done is not None:
        pending.on_done()


def _ewma(old: float | None, new: float) -> float:
    return new if old is None else (1 - EWMA) * old + EWMA * new


class DynamicBatcher:
    """Queues requests for one model and runs them, merged where that pays, on one inference thread.

    Requests that arrive while a batch runs are merged into the next one for free. Waiting up to the
    queue delay for more is a bet; the batcher only makes it while recent waits gathered requests and
    measured batches cost less per row than single requests, so at concurrency 1 or when the model
    gains nothing from batching it dispatches immediately.
    """

    def __init__(
        self,
        model: Any,
        config: BatchingConfig | None = None,
        *,
        on_batch: Callable[[int, int], None] | None = None,
        on_queue_depth: Callable[[int], None] | None = None,
    ) -> None:
        self.model = model
        self.config = config or BatchingConfig()
        self.stats = BatcherStats()
        self._batchable = bool(getattr(model, "batchable", False)) and self.config.max_batch_size > 1
        self._on_batch = on_batch
        self._on_queue_depth = on_queue_depth
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"infer-{model.name}")
        self._queue: collections.deque[_Pending] = collections.deque()
        self._probe_every = PROBE_EVERY
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._idle = False  # the dispatcher is asleep on an empty queue, no batch running

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    async def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Queue one validated request and wait for its outputs; raises ServerOverloaded when full."""
        return await self.submit(inputs)

    def submit(
        self, inputs: dict[str, np.ndarray], on_done: Callable[[], None] | None = None
    ) -> asyncio.Future[dict[str, np.ndarray]]:
        """Queue one validated request; its outputs arrive on the returned future (cancel it if the client goes).

        Callable from a protocol callback on the loop: a front end that passes ``on_done`` instead of awaiting
        saves a task switch and a loop turn per request (``on_done`` runs right after the future is settled,
        on the loop, and must not raise). When the dispatcher is idle and the model is fast enough to run on
        the loop, the request is answered before ``submit`` returns, without waking the dispatcher: the
        future comes back already done and ``on_done`` is *not* called, so check ``future.done()``.
        """
        self._ensure_running()
        assert self._loop is not None and self._wakeup is not None
        if len(self._queue) >= self.config.max_queue_size:
            retry = max(1, math.ceil(len(self._queue) * max(self.stats.request_latency, 0.001)))
            raise ServerOverloaded(
                f"model {self.model.name!r} has {len(self._queue)} requests queued "
                f"(limit {self.config.max_queue_size})",
                retry_after=retry,
                hint=f"retry after {retry}s or add replicas",
            )
        arrays = list(inputs.values())
        rows = int(arrays[0].shape[0]) if arrays and arrays[0].ndim else 1
        key = tuple((n, a.dtype.str, a.shape[1:]) for n, a in sorted(inputs.items()))
        pending = _Pending(inputs, rows, key, self._loop.create_future(), on_done=on_done)
        if self._idle and not self._queue and self._runs_inline(rows) and not (self._batchable and self._should_wait()):
            self._run_now(pending)
            return pending.future
        self._queue.append(pending)
        self._depth_changed()
        self._wakeup.set()
        return pending.future

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        # A new event loop (a test client without lifespan, a restarted server) gets a fresh dispatcher.
        if self._loop is not loop or self._task is None or self._task.done():
            self._loop = loop
            self._wakeup = asyncio.Event()
            self._idle = False
            self._queue.clear()
            self._task = loop.create_task(self._dispatch_forever(), name=f"batcher-{self.model.name}")

    async def close(self) -> None:
        """Stop dispatching; queued requests fail with BackendUnavailable."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        while self._queue:
            pending = self._queue.popleft()
            _settle(pending, error=BackendUnavailable("the model server is shutting down"))
        self._executor.shutdown(wait=False)

    # --------------------------------------------------------------------------------- dispatching

    def _depth_changed(self) -> None:
        if self._on_queue_depth is not None:
            self._on_queue_depth(len(self._queue))

    def _take_ready(self, batch: list[_Pending], rows: int) -> int:
        """Move queued requests compatible with the batch into it, oldest first, while they fit."""
        keep: collections.deque[_Pending] = collections.deque()
        while self._queue:
            pending = self._queue.popleft()
            if pending.future.done():  # the client went away
                continue
            if pending.key == batch[0].key and rows + pending.rows <= self.config.max_batch_size:
                batch.append(pending)
                rows += pending.rows
            else:
                keep.append(pending)
        self._queue = keep
        return rows

    def _should_wait(self) -> bool:
        if self.config.max_queue_delay_ms <= 0:
            return False
        if not self.config.adaptive:
            return True
        if not self.stats.batching_pays:
            return self.stats.batches % (PROBE_EVERY * 4) == 0  # re-measure rarely
        return self.stats.wait_yield >= 0.5 or self.stats.batches % self._probe_every == 0

    async def _collect(self) -> list[_Pending]:
        assert self._wakeup is not None
        while True:
            while not self._queue:
                self._wakeup.clear()
                self._idle = True
                try:
                    await self._wakeup.wait()
                finally:
                    self._idle = False
            first = self._queue.popleft()
            if not first.future.done():
                break
        batch = [first]
        if not self._batchable:
            return batch
        rows = self._take_ready(batch, first.rows)
        if len(batch) > 1:  # requests queued up by themselves: load is back, probe often again
            self._probe_every = PROBE_EVERY
        if rows >= self.config.max_batch_size or not self._should_wait():
            return batch
        self.stats.waits += 1
        before = len(batch)
        deadline = first.arrival + self.config.max_queue_delay_ms / 1000
        while rows < self.config.max_batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.clear()
            if not self._queue:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
            rows = self._take_ready(batch, rows)
        gathered = len(batch) - before
        self.stats.wait_yield = _ewma(self.stats.wait_yield, gathered)
        self._probe_every = PROBE_EVERY if gathered else min(self._probe_every * 2, MOST_PROBE_EVERY)
        return batch

    async def _dispatch_forever(self) -> None:
        while True:
            batch = await self._collect()
            self._depth_changed()
            await self._run(batch)

    async def _run(self, batch: list[_Pending]) -> None:
        assert self._loop is not None
        rows = sum(p.rows for p in batch)
        merged = (
            batch[0].inputs
            if len(batch) == 1
            else {name: np.concatenate([p.inputs[name] for p in batch]) for name in batch[0].inputs}
        )
        try:
            if self._runs_inline(rows):
                results, elapsed = self._infer_inline(merged)
            else:
                results, elapsed = await self._loop.run_in_executor(self._executor, _timed, self.model.infer, merged)
        except Exception as exc:  # a model failure fails every request in the batch, nothing else
            for pending in batch:
                _settle(pending, error=exc)
            return
        self._learn(len(batch), rows, elapsed)
        if len(batch) == 1:
            self._answer(batch[0], results)
            return
        if any(a.ndim == 0 or a.shape[0] != rows for a in results.values()):
            # Outputs not aligned with the batch axis cannot be split: answer each request on its own.
            for pending in batch:
                await self._run([pending])
            return
        bounds = np.cumsum([p.rows for p in batch])[:-1]
        parts = {name: np.split(array, bounds) for name, array in results.items()}
        for i, pending in enumerate(batch):
            self._answer(pending, {name: chunks[i] for name, chunks in parts.items()})

    def _run_now(self, pending: _Pending) -> None:
        """Answer a lone request in the caller's turn of the loop: a concurrency-1 client saves the dispatcher's
        wake-up (~15 µs). Its ``on_done`` is dropped: the caller sees the future done when ``submit`` returns."""
        pending.on_done = None
        try:
            results, elapsed = self._infer_inline(pending.inputs)
        except Exception as exc:  # a model failure fails this request, nothing else
            _settle(pending, error=exc)
            return
        self._learn(1, pending.rows, elapsed)
        self._answer(pending, results)

    def _infer_inline(self, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        """Run a batch on the event loop, on the model's single-threaded session where it has one."""
        self.stats.inline += 1
        return _timed(getattr(self.model, "infer_small", self.model.infer), inputs)

    def _answer(self, pending: _Pending, results: dict[str, np.ndarray]) -> None:
        self.stats.request_latency = _ewma(self.stats.request_latency or None, time.monotonic() - pending.arrival)
        _settle(pending, results)

    def _runs_inline(self, rows: int) -> bool:
        """Whether to run this batch on the event loop: handing it to the inference thread and back costs
        ~0.1-0.4 ms (queue, wake-up, GIL), more than a small model takes, so only measured-slow batches go."""
        per_row = self.stats.row_cost_single if rows == 1 else self.stats.row_cost_batched
        return per_row is not None and per_row * rows < INLINE_BELOW_S

    def _learn(self, requests: int, rows: int, elapsed: float) -> None:
        self.stats.batches += 1
        self.stats.requests += requests
        per_row = elapsed / max(rows, 1)
        if rows == 1:
            self.stats.row_cost_single = _ewma(self.stats.row_cost_single, per_row)
        else:
            self.stats.row_cost_batched = _ewma(self.stats.row_cost_batched, per_row)
        if self._on_batch is not None:
            self._on_batch(requests, rows)
