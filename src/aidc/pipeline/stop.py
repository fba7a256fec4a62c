"""Asking a running stage to stop where it can resume from: a flag in a small Ray actor, read without waiting.

The runner makes one flag per stage execution, for stages that can stop on request (``Stage.stops_on_request``),
and hands the stage a ``StopRequest`` in its context. On Ctrl-C or a preemption (SIGINT to the run's process)
it sets the flag and gives the stage a bounded time to save its state and end. The flag is an actor, not a
file: it works the same wherever on a multi-node Ray cluster the stage and its workers were placed.
"""

from __future__ import annotations

import time
from typing import Any

POLL_S = 0.5  # how often a StopRequest asks the actor; one small remote call per interval, never awaited


class StageStopped(Exception):
    """A stage ended early because it was asked to; what it saved lets a resumed run continue from there."""


class StopFlag:
    """The actor: set once by the runner, read by the stage."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


def new_stop_flag() -> Any:
    """A flag actor owned by the caller (it goes when the run's process does)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)  # beside its owner
    return ray.remote(StopFlag).options(num_cpus=0, scheduling_strategy=here).remote()


class StopRequest:
    """The stage's side of the flag. ``requested()`` is cheap enough for every training step: it sends a read to
    the actor at most every ``poll_s`` and only looks whether the last one has answered, so a step never waits
    on the network. A stop is seen at most ``poll_s`` plus one round trip after the flag is set."""

    def __init__(self, flag: Any, poll_s: float = POLL_S) -> None:
        self.flag, self.poll_s = flag, poll_s
        self._seen = False
        self._pending: Any = None
        self._asked = float("-inf")

    def requested(self) -> bool:
        if self._seen:
            return True
        import ray

        if self._pending is not None:
            ready, _ = ray.wait([self._pending], timeout=0)
            if ready:
                self._seen, self._pending = bool(ray.get(self._pending)), None
        elif time.monotonic() - self._asked >= self.poll_s:
            self._asked = time.monotonic()
            self._pending = self.flag.is_set.remote()
        return self._seen

    def was_set(self) -> bool:
        """The flag as it is now (waits for the answer: for after the work, not inside it)."""
        import ray

        return bool(ray.get(self.flag.is_set.remote()))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pending": None, "_asked": float("-inf")}  # a read in flight stays with its sender
