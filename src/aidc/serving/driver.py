"""A short-lived Ray driver for a deployment change, for a process that already drives another Ray cluster.

Ray lets a process drive one cluster at a time. ``aidc server`` drives the job cluster from its first job on
(its scheduler places gangs there), so a deployment change — reaching the serving cluster's controller actors —
cannot be made from the server process once a job has run. It is made from a child process instead: this
module's partner, run as ``python -m aidc.cli.deployment_driver``, given the settings and the change on stdin (never on its command
line, which any local user can read), answering one JSON line on stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from aidc import errors
from aidc.errors import AidcError, BackendUnavailable

if TYPE_CHECKING:
    from aidc.settings import Settings

MARK = "aidc-driver-result: "
VERBS = ("settle", "stop")


def drives_another_ray() -> bool:
    """Whether this process is already a Ray driver (without importing Ray when nothing here has)."""
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def run_elsewhere(settings: Settings, verb: str, deployment_id: int, timeout: float) -> dict[str, Any]:
    """``Deployments._<verb>_on_ray(deployment_id, timeout)`` in a child process; its AidcError raised here."""
    given = {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in settings.model_dump().items()
    }
    request = json.dumps({"settings": given, "verb": verb, "id": deployment_id, "timeout": timeout}, default=str)
    from aidc.cluster.compute import auth_made_here

    # The child finds its cluster by our settings, never by the Ray this process drives; the token made for
    # that Ray stays here (an operator's RAY_AUTH_* for a cluster of theirs goes along).
    dropped = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN") if auth_made_here() else ("RAY_ADDRESS",)
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "aidc.cli.deployment_driver"],
            input=request,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout + 120,
        )
    except subprocess.TimeoutExpired:
        raise BackendUnavailable(
            f"the deployment change did not finish within {timeout + 120:g}s", hint="see the serving logs"
        ) from None
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARK):
            answer = json.loads(line[len(MARK) :])
            break
    else:
        tail = "\n".join((done.stderr or "").strip().splitlines()[-5:])
        raise BackendUnavailable(f"the deployment driver process failed ({done.returncode}): {tail}")
    if "error" in answer:
        error = answer["error"]
        cls = getattr(errors, error.get("type", ""), None)
        if not (isinstance(cls, type) and issubclass(cls, AidcError)) or cls is errors.RateLimited:
            cls = BackendUnavailable
        raise cls(error["message"], hint=error.get("hint"))
    return dict(answer["ok"])
