"""serving: the OIP v2 data plane (ONNX Runtime, dynamic batching), endpoint processes and deployments on Ray.

Importing this package is cheap: ONNX Runtime, FastAPI and httpx load only when the name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CanaryPolicy": "aidc.serving.canary",
    "Deployments": "aidc.serving.deployments",
    "OnnxModel": "aidc.serving.model",
    "create_app": "aidc.serving.app",
    "BatchingConfig": "aidc.serving.batching",
    "EndpointClient": "aidc.serving.endpoint",
    "EndpointProcess": "aidc.serving.endpoint",
    "start_endpoint": "aidc.serving.endpoint",
    "stop_endpoint": "aidc.serving.endpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aidc.serving' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
