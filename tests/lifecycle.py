"""What the compression, federated and transfer tests share: stages run in this process on a real artifact store
(no Ray, to keep them short), the real digits split from the data stage, and a teacher CNN trained here."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aidc.pipeline.stage import Stage, StageContext


@dataclass
class Digits:
    ctx: StageContext
    splits: dict[str, Any]  # the data stage's artifact reference
    arrays: dict[str, np.ndarray]
    checkpoint: dict[str, Any]  # a trained CNN's checkpoint artifact
    arch: dict[str, Any]
    events: list[dict[str, Any]]
    onnx: dict[str, Any] | None = None  # its export, where a test made one


class _Events:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def put(self, event: dict[str, Any]) -> None:
        self.seen.append(event)


def context(root: Path, stage: str = "stage", *, listen: bool = True) -> tuple[StageContext, list[dict[str, Any]]]:
    """A stage's context on a file artifact store under ``root``; ``listen``: keep its events (a context that travels
    to Ray actors goes without: the listener lives in this test module)."""
    from aidc.store.artifacts import open_artifact_store

    events = _Events()
    store = open_artifact_store((root / "artifacts").as_uri())
    (root / "runs").mkdir(parents=True, exist_ok=True)
    log = str(root / "runs" / f"{stage}.log")
    return StageContext("test-run", stage, store, events if listen else None, log, str(root)), events.seen


def run_stage(cls: type[Stage], ctx: StageContext, inputs: dict[str, Any], **config: Any) -> dict[str, Any]:
    return cls().run(ctx, cls.Config.model_validate(config), inputs)


def digits(root: Path, *, epochs: int = 8, width: int | None = None, listen: bool = True) -> Digits:
    """The digits split (no augmentation: shorter) and a CNN trained on it for ``epochs`` in this process."""
    import torch

    from aidc.compression.finetune import fit
    from aidc.data.preprocess import load_arrays
    from aidc.data.stage import DataStage
    from aidc.training.zoo import build_model

    torch.manual_seed(0)
    ctx, events = context(root, listen=listen)
    splits = run_stage(DataStage, ctx, {}, augment={"copies": 0})["splits"]
    arrays = load_arrays(ctx.get_artifact(splits))
    arch = {"model": "cnn", "input_shape": [1, 8, 8], "classes": 10, "width": width, "dropout": 0.1}
    model = fit(build_model(arch), arrays["x_train"], arrays["y_train"], epochs=epochs, lr=2e-3, batch_size=64, seed=0)
    blob = io.BytesIO()
    torch.save({"model": model.state_dict(), "arch": arch}, blob)
    checkpoint = ctx.put_artifact(blob.getvalue(), kind="checkpoint", name="teacher.pt")
    return Digits(ctx, splits, arrays, checkpoint, arch, events)
