"""The entry point of a short-lived deployment driver process (aidc.serving.driver starts it): one deployment change
on the serving cluster, for a process that already drives another Ray cluster."""

from __future__ import annotations

import json
import sys
from typing import Any

from aidc.errors import AidcError
from aidc.serving.driver import MARK, VERBS


def main() -> int:
    from aidc.platform import Platform
    from aidc.serving.deployments import Deployments
    from aidc.settings import Settings

    request = json.loads(sys.stdin.read())
    if request["verb"] not in VERBS:
        raise SystemExit(f"unknown verb {request['verb']!r}")
    platform = Platform(Settings(**request["settings"]))
    try:
        deployments = Deployments(platform.metadata, platform.artifacts, platform.settings)
        method = getattr(deployments, f"_{request['verb']}_on_ray")
        answer: dict[str, Any] = {"ok": method(int(request["id"]), float(request["timeout"]))}
    except AidcError as exc:
        answer = {"error": {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint}}
    finally:
        platform.close()
    print(MARK + json.dumps(answer, default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
