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


class TextCNN(nn.Module):
    """Token ids → embedding → a 1-D convolution over neighbouring tokens → the mean over the text's own tokens (padding,
    id 0, left out) → a linear head. Exports to ONNX with an int64 ``tokens`` input."""

    def __init__(self, vocab_size: int, length: int, classes: int, width: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width, padding_idx=0)
        self.conv = nn.Conv1d(width, width, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * width, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).unsqueeze(-1).to(self.embed.weight.dtype)  # N×L×1
        words = self.embed(ids)  # N×L×D
        phrases = torch.relu(self.conv(words.transpose(1, 2))).transpose(1, 2)
        count = mask.sum(1).clamp(min=1.0)
        pooled = torch.cat([(words * mask).sum(1) / count, (phrases * mask).sum(1) / count], dim=1)
        return self.head(self.drop(pooled))  # type: ignore[no-any-return]


def textcnn(
    input_shape: list[int], classes: int, width: int = 64, dropout: float = 0.1, vocab_size: int | None = None
) -> nn.Module:
    """A small text classifier over token ids (see TextCNN); ``vocab_size`` comes from the dataset."""
    if vocab_size is None:
        from aidc.errors import InvalidInput

        raise InvalidInput(
            "model 'textcnn' takes token ids, and this dataset has none",
            hint="give the data stage a text source (data.columns.text, or a folder of .txt files per class)",
        )
    (length,) = input_shape
    return TextCNN(vocab_size, length, classes, width, dropout)


ZOO = {"cnn": cnn, "mlp": mlp, "textcnn": textcnn}


def build_model(arch: dict[str, Any]) -> nn.Module:
    """``arch`` = {"model": "cnn"|"mlp", "input_shape": [C, H, W] or [F], "classes": K (outputs), "width": …,
    "dropout": …, "vocab_size": V (token ids)}, or {"model": "mypkg.models:build", "folder": the pipeline's folder,
    "params": {…}, …}: the user's function, called as ``build(input_shape=[…], outputs=K, **params)`` (and
    ``vocab_size=V`` when the data is token ids), returns the network."""
    if arch["model"] not in ZOO:
        return _users_model(arch)
    kwargs = {k: arch[k] for k in ("width", "dropout", "vocab_size") if arch.get(k) is not None}
    return ZOO[arch["model"]](list(arch["input_shape"]), int(arch["classes"]), **kwargs)


def _users_model(arch: dict[str, Any]) -> nn.Module:
    from aidc.errors import InvalidInput
    from aidc.pipeline.usercode import load_callable

    build = load_callable(arch["model"], arch.get("folder"), what="model")
    text = {"vocab_size": int(arch["vocab_size"])} if arch.get("vocab_size") is not None else {}
    model = build(
        input_shape=list(arch["input_shape"]), outputs=int(arch["classes"]), **text, **(arch.get("params") or {})
    )
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
