"""The compute backend: a Ray cluster to run stages on — joined at an address, or started locally for one command.

A Ray started here (no address) is this host's alone: every listener on 127.0.0.1 and token authentication on,
with a token made for it, so neither the network nor another local user can run code on it. A cluster joined at
an address is the operator's: aidc joins it with whatever ``RAY_AUTH_MODE``/``RAY_AUTH_TOKEN`` the environment
gives (docs/control-plane.md says what a shared, multi-node cluster must set).
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aidc.errors import BackendUnavailable

# Ray's switch for "no multi-node cluster": with it off, Ray puts the node's IP — and so GCS, raylet, object
# manager and agents — on 127.0.0.1 instead of the host's first interface (and all interfaces).
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_made_here: set[str] = set()  # the Ray tokens this process made for a Ray it started (not the operator's)


def _loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rpartition(":")[0] or address
    return host in ("127.0.0.1", "localhost", "::1", "[::1]")


def keep_ray_on_loopback() -> None:
    """Make this process's Ray (and every Ray process it starts) bind 127.0.0.1 only."""
    import ray._private.ray_constants as constants

    os.environ[LOOPBACK_ONLY] = "0"
    constants.ENABLE_RAY_CLUSTER = False  # read at import; Ray may have been imported before this call


def start_token_auth() -> None:
    """Token authentication for a Ray started here, with a fresh token in this process's environment (which
    the Ray processes it starts, and the job processes the server starts, inherit). Never ~/.ray/auth_token:
    Ray writes that 0644, and every later Ray on the host would pick it up."""
    if os.environ.get("RAY_AUTH_MODE") == "token" and os.environ.get("RAY_AUTH_TOKEN"):
        return
    token = secrets.token_hex(32)
    _made_here.add(token)
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = token
    reload_ray_auth()


def reload_ray_auth() -> None:
    """Make an already imported Ray see the auth environment again (what Ray itself does when it turns auth on)."""
    # Both exist in Ray 2.60's compiled _raylet module; its type stub does not declare them.
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def auth_made_here() -> bool:
    """Whether this process's Ray auth environment is one it made for its own local Ray (else: the operator's)."""
    return os.environ.get("RAY_AUTH_TOKEN") in _made_here


RAY_LOG = logging.getLogger("aidc.cluster.ray")  # what Ray's driver would print: shown with --debug


def keep_ray_errors_off_stdout() -> None:
    """Ray's driver prints the errors the cluster publishes (a worker that died: "(raylet) A worker died or was
    killed…") on this process's stdout, whatever ``log_to_driver`` says; a command's stdout is its own (``aidc run
    --json`` is one JSON document). They go to the ``aidc.cluster.ray`` log instead; the failure itself reaches
    the caller as Ray's exception, and the stage log says what it cost."""
    import ray._private.worker as ray_worker

    printer = ray_worker.print_to_stdstream
    if getattr(printer, "_aidc", False):
        return

    def to_log(data: dict[str, Any], ignore_prefix: bool) -> None:
        if data.get("pid") == "raylet":
            for line in data.get("lines", []):
                RAY_LOG.info("(%s) %s", data.get("pid"), line)
            return
        printer(data, ignore_prefix)

    to_log._aidc = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_log  # (the error listener looks it up at every message)


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
    started_here = not ray.is_initialized()
    if started_here:
        if not address or _loopback(address):
            keep_ray_on_loopback()  # a cluster on 127.0.0.1 (ours, or a job joining the server's) stays there
        if not address:
            start_token_auth()
        else:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # joined: the operator's environment decides
        kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:
                # Two CPUs at least: the train stage's two training workers need one each.
                cpus = num_cpus or max(2, os.cpu_count() or 2)
                ray.init(num_cpus=cpus, **kwargs)
        except (ConnectionError, RuntimeError) as exc:
            raise BackendUnavailable(
                f"cannot start or reach Ray at {address or 'a local cluster'}: {exc}",
                hint="check AIDC_RAY_ADDRESS (empty starts a local Ray), or run `aidc doctor`",
            ) from exc
    keep_ray_errors_off_stdout()
    try:
        yield cluster_resources()
    finally:
        if started_here:
            leave_ray()


def leave_ray() -> None:
    """``ray.shutdown()``, with no garbage collection inside it.

    An ObjectRef freed while Ray's driver is half shut down (its core worker stopped, not yet dropped) makes the core
    worker end the whole process at once, exit status 1, no traceback: a dropped ref tells the core worker, and it
    quits when asked anything after its shutdown. Refs caught in reference cycles (an exception's traceback, an
    abandoned iterator) are freed by whichever collection comes next, in any thread, and ``shutdown`` allocates
    enough to start one. So they are collected here first, while Ray is whole, and no automatic collection runs
    until it is gone."""
    import ray

    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        ray.shutdown()
    finally:
        if was_enabled:
            gc.enable()
