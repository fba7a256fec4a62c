"""The data stage: source → clean → split → augment → normalize → a registered dataset version."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aidc.data import preprocess
from aidc.data.sources import DIGITS, load_source
from aidc.pipeline.stage import DatasetRegistration, Stage, StageContext


class Augment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    copies: int = Field(1, ge=0, le=10, description="jittered copies added per training image")
    max_shift: int = Field(1, ge=0, le=3, description="largest shift, in pixels")
    max_rotation: float = Field(10.0, ge=0, le=45, description="largest rotation, in degrees")


class Split(BaseModel):
    model_config = ConfigDict(extra="forbid")
    val: float = Field(0.15, gt=0, lt=0.5)
    test: float = Field(0.2, gt=0, lt=0.5)


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = Field("digits", description="name the dataset versions are registered under")
    source: str = Field(DIGITS, description="'sklearn:digits' or 'file:PATH.npz' with arrays images and labels")
    normalize: Literal["standard", "minmax"] = "standard"
    augment: Augment = Field(default_factory=Augment)
    split: Split = Field(default_factory=Split)
    seed: int = 0

    @model_validator(mode="after")
    def _leaves_training_data(self) -> DataConfig:
        if self.split.val + self.split.test >= 0.8:
            raise ValueError("split.val + split.test must leave at least 20% for training")
        return self


def preparation_summary(rows_in: int, dropped: dict[str, int], splits: dict[str, int], *, augmented: int) -> str:
    """What the data stage did, in one sentence a person reads in the stage's log."""
    invalid, duplicate = dropped.get("dropped_invalid", 0), dropped.get("dropped_duplicate", 0)
    kept = rows_in - invalid - duplicate
    parts = ", ".join(
        f"{n} {part}" + (f" ({augmented} of them augmented copies)" if part == "train" and augmented else "")
        for part, n in splits.items()
    )
    return f"{rows_in} rows in; dropped {invalid} invalid and {duplicate} duplicate, kept {kept}; split into {parts}"


class DataStage(Stage):
    kind = "data"
    Config = DataConfig
    outputs = {"dataset": "the registered dataset version", "splits": "train/val/test arrays (.npz)"}

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        cfg: DataConfig = config
        images, labels, max_value = load_source(cfg.source)
        rows_in = len(images)
        ctx.progress("prepare", 1, 5, force=True, step="clean")
        images, labels, dropped = preprocess.clean(images, labels, max_value)
        ctx.progress("prepare", 2, 5, force=True, step="split")
        parts = preprocess.split(images, labels, val=cfg.split.val, test=cfg.split.test, seed=cfg.seed)
        ctx.progress("prepare", 3, 5, force=True, step="augment")
        x_train, y_train = parts["train"]
        n_original = len(x_train)
        x_train, y_train = preprocess.augment(
            x_train,
            y_train,
            copies=cfg.augment.copies,
            max_shift=cfg.augment.max_shift,
            max_rotation=cfg.augment.max_rotation,
            seed=cfg.seed,
        )
        parts["train"] = (x_train, y_train)
        ctx.progress("prepare", 4, 5, force=True, step="normalize")
        xs, norm = preprocess.normalize(
            {k: x for k, (x, _) in parts.items()}, method=cfg.normalize, max_value=max_value
        )
        arrays: dict[str, np.ndarray] = {}
        for part, (_, y) in parts.items():
            arrays[f"x_{part}"] = xs[part][:, None, :, :].astype(np.float32)  # N×1×H×W, what a conv net takes
            arrays[f"y_{part}"] = y.astype(np.int64)
        blob = preprocess.save_arrays(arrays)
        splits = ctx.put_artifact(blob, kind="dataset", name="splits.npz")
        ctx.progress("prepare", 5, 5, force=True, step="registered")
        classes = sorted(int(c) for c in np.unique(labels))
        stats = {
            "rows_in": rows_in,
            **dropped,
            "augmented": len(x_train) - n_original,
            "splits": {part: len(y) for part, (_, y) in parts.items()},
            "pixel_mean": norm["mean"],
            "pixel_std": norm["std"],
            "pixel_scale": norm["scale"],
            "normalize": cfg.normalize,
            "source": cfg.source,
        }
        balance = {part: {str(c): int((y == c).sum()) for c in classes} for part, (_, y) in parts.items()}
        schema = {
            "features": {"shape": list(arrays["x_train"].shape[1:]), "dtype": "float32"},
            "label": {"dtype": "int64", "classes": classes},
        }
        splits_rows = {part: len(y) for part, (_, y) in parts.items()}
        ctx.log(preparation_summary(rows_in, dropped, splits_rows, augmented=len(x_train) - n_original))
        return {
            "dataset": DatasetRegistration(
                cfg.dataset, splits, schema, stats, balance, hashlib.sha256(blob).hexdigest()
            ),
            "splits": splits,
        }
