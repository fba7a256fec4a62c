"""The model zoo (small networks a pipeline names by key) and the user's own model builders (``module:function``),
each rebuilt anywhere from its architecture dict."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def cnn(input_shape: list[int], classes: int, width: int = 32, dropout: float = 0.1) -> nn.Module:
    """Two 3×3 conv blocks then a linear head: ~99% on digits within a few epochs."""
    channels, height, width_px = input_shape
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, width * 2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(width * 2 * (height // 2) * (width_px // 2), 128),
        nn.ReLU(),
        nn.Linear(128, classes),
    )


def mlp(input_shape: list[int], classes: int, width: int = 256, dropout: float = 0.1) -> nn.Module:
    """A two-hidden-layer perceptron on the flattened image."""
    features = 1
    for d in input_shape:
        features *= d
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(features, width),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(width, width // 2),
        nn.ReLU(),
        nn.Linear(width // 2, classes),
    )


ZOO = {"cnn": cnn, "mlp": mlp}


def build_model(arch: dict[str, Any]) -> nn.Module:
    """``arch`` = {"model": "cnn"|"mlp", "input_shape": [C, H, W] or [F], "classes": K (outputs), "width": …,
    "dropout": …}, or {"model": "mypkg.models:build", "folder": the pipeline's folder, "params": {…}, …}: the user's
    function, called as ``build(input_shape=[…], outputs=K, **params)``, returns the network."""
    if arch["model"] not in ZOO:
        return _users_model(arch)
    kwargs = {k: arch[k] for k in ("width", "dropout") if arch.get(k) is not None}
    return ZOO[arch["model"]](list(arch["input_shape"]), int(arch["classes"]), **kwargs)


def _users_model(arch: dict[str, Any]) -> nn.Module:
    from aidc.errors import InvalidInput
    from aidc.pipeline.usercode import load_callable

    build = load_callable(arch["model"], arch.get("folder"), what="model")
    model = build(input_shape=list(arch["input_shape"]), outputs=int(arch["classes"]), **(arch.get("params") or {}))
    if not isinstance(model, nn.Module):
        raise InvalidInput(
            f"model {arch['model']!r} returned {type(model).__name__}, not a torch.nn.Module",
            hint="return the network (an nn.Module) from your build function",
        )
    return model


def load_weights(arch: dict[str, Any], weights: bytes) -> nn.Module:
    """A model in eval mode with the weights in a training checkpoint artifact (see training.loop)."""
    import io

    model = build_model(arch)
    state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    return model.eval()
