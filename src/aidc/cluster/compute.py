"""The compute backend: a Ray cluster to run stages on — joined at an address, or started locally for one command."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aidc.errors import BackendUnavailable


def cluster_resources(*, available: bool = False) -> dict[str, float]:
    """The connected Ray cluster's resources by name (CPU, GPU, memory, custom): all of them, or those free now."""
    import ray

    # Ray declares no types for these calls; each returns a dict of resource name → amount (float).
    found = ray.available_resources() if available else ray.cluster_resources()  # type: ignore[no-untyped-call]
    return {str(name): float(amount) for name, amount in found.items()}


def node_address() -> str:
    """This node's IP address as the Ray cluster knows it (other nodes reach it there)."""
    import ray

    # Ray declares no return type for it; it is the node's IP address as a string.
    return str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]


@contextmanager
def ray_cluster(address: str = "", *, num_cpus: int | None = None) -> Iterator[dict[str, Any]]:
    """Connect to Ray for the length of a command and yield its resources.

    An empty address starts a local Ray here and stops it when the block ends (so a CLI command leaves no
    processes behind); a given address joins that cluster and leaves it running.
    """
    import ray

    # Stage output goes to each stage's log file, not the terminal the live display is drawing on.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:
                # Two CPUs at least: the train stage's two Ray Train workers need one each.
                cpus = num_cpus or max(2, os.cpu_count() or 2)
                ray.init(num_cpus=cpus, **kwargs)
        except (ConnectionError, RuntimeError) as exc:
            raise BackendUnavailable(
                f"cannot start or reach Ray at {address or 'a local cluster'}: {exc}",
                hint="check AIDC_RAY_ADDRESS (empty starts a local Ray), or run `aidc doctor`",
            ) from exc
    try:
        yield cluster_resources()
    finally:
        if started_here:
            ray.shutdown()
