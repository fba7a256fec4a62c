"""Preprocessing operations on image arrays: clean, split (stratified), augment, normalize — pure numpy."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np


def clean(images: np.ndarray, labels: np.ndarray, max_value: float) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Drop rows with non-finite or out-of-range pixels or a negative label, then exact duplicate rows."""
    flat = images.reshape(len(images), -1)
    valid = np.isfinite(flat).all(axis=1) & (flat >= 0).all(axis=1) & (flat <= max_value).all(axis=1) & (labels >= 0)
    images, labels, flat = images[valid], labels[valid], flat[valid]
    rows = np.concatenate([flat, labels[:, None].astype(flat.dtype)], axis=1)
    _, first = np.unique(rows, axis=0, return_index=True)
    keep = np.sort(first)
    return (
        images[keep],
        labels[keep],
        {"dropped_invalid": int((~valid).sum()), "dropped_duplicate": int(len(flat) - len(keep))},
    )


def split(
    images: np.ndarray, labels: np.ndarray, *, val: float, test: float, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Stratified train/val/test split: every class keeps its share in each part."""
    from sklearn.model_selection import train_test_split

    x_rest, x_test, y_rest, y_test = train_test_split(
        images, labels, test_size=test, stratify=labels, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val / (1 - test), stratify=y_rest, random_state=seed
    )
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}


def augment(
    images: np.ndarray, labels: np.ndarray, *, copies: int, max_shift: int, max_rotation: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Append ``copies`` jittered versions of each image: a random shift of up to ``max_shift`` pixels and a
    rotation of up to ``max_rotation`` degrees, the way handwriting varies. Each copy of each image draws from its
    own random stream (seed, copy, image), so the result does not depend on how the images are batched: the Ray
    Data path (data.images_on_ray) makes the very same copies."""
    if copies == 0:
        return images, labels
    ceiling = float(images.max())
    rows = np.arange(len(images) * copies)
    jittered = jitter_rows(images, rows, max_shift=max_shift, max_rotation=max_rotation, seed=seed, ceiling=ceiling)
    return np.concatenate([images, jittered]), np.tile(labels, copies + 1)


def jitter_rows(
    images: np.ndarray, rows: np.ndarray, *, max_shift: int, max_rotation: float, seed: int, ceiling: float
) -> np.ndarray:
    """The augmented copies numbered ``rows``: row r is copy ``r // N + 1`` of image ``r % N`` (N images)."""
    from scipy import ndimage

    n = len(images)
    out = np.empty((len(rows), *images.shape[1:]), dtype=images.dtype)
    for k, row in enumerate(rows):
        copy, index = divmod(int(row), n)
        rng = np.random.default_rng((seed, copy + 1, index))
        img = images[index]
        angle = rng.uniform(-max_rotation, max_rotation)
        moved = ndimage.rotate(img, angle, reshape=False, order=1, mode="constant")
        dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
        out[k] = ndimage.shift(moved, (dy, dx) + (0,) * (img.ndim - 2), order=0, mode="constant")  # (RGB: H×W×C)
    return np.clip(out, 0, ceiling)


def normalize(
    parts: dict[str, np.ndarray], *, method: str, max_value: float
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Scale pixels to [0, 1], then (``standard``) centre and scale by the training split's mean and std."""
    scaled = {k: v / max_value for k, v in parts.items()}
    if method in ("minmax", "none"):
        return scaled, {"scale": 1 / max_value, "mean": 0.0, "std": 1.0}
    mean, std = float(scaled["train"].mean()), float(scaled["train"].std()) or 1.0
    return {k: (v - mean) / std for k, v in scaled.items()}, {"scale": 1 / max_value, "mean": mean, "std": std}


def save_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz whose bytes depend only on the arrays (fixed timestamps), so equal data has one digest."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buf.getvalue()


def load_arrays(data: bytes) -> dict[str, Any]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}
