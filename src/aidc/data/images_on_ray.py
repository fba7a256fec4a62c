"""An image folder read, decoded, resized and augmented by Ray Data batch transforms across the cluster
(``data.engine: ray``): the same per-image functions as the in-memory path, so the same seed gives the same dataset.

Decoding and resizing map over the folder's files; the training split's augmented copies map over their row
numbers, each copy drawing from its own random stream (seed, copy, image), so block boundaries and the number of
workers change nothing. Cleaning, the stratified split and normalisation need every row at once and stay on the
driver. A file that cannot be read is reported by the batch that met it (no exception crosses Ray), and the stage
names the first such file as the in-memory path does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from aidc.data import preprocess
from aidc.data.readers import Place, decode_image, image_files, stack_images, unreadable_image

ROWS_PER_BATCH = 64  # images per Ray Data batch: small enough to spread a few thousand images over the workers


def _in_order() -> None:
    import ray.data

    ray.data.DataContext.get_current().execution_options.preserve_order = True


def _gather(ds: Any, column: str) -> list[np.ndarray]:
    """Every batch's ``column``, in row order."""
    return [batch[column] for batch in ds.iter_batches(batch_size=None, batch_format="numpy")]


def read_image_folder(
    place: Place, *, resize: tuple[int, int] | None, channels: int, log: Callable[[str], None] = print
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """As readers.read_image_folder, each file read and decoded (and resized) by a Ray Data task."""
    import ray.data

    files, labels, classes = image_files(place)
    mode = "L" if channels == 1 else "RGB"
    fs = place.fs

    def decode(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pixels, shapes, errors = [], [], []
        for path in batch["path"]:
            with fs.open(str(path), "rb") as fh:
                image, error = decode_image(fh.read(), mode, resize)
            pixels.append(image.tobytes())
            shapes.append(np.asarray(image.shape + (0,) * (3 - image.ndim), dtype=np.int64))
            errors.append(error or "")
        return {
            "pixels": np.asarray(pixels, dtype=object),
            "shape": np.stack(shapes),
            "error": np.asarray(errors, dtype=object),
        }

    _in_order()
    ds = ray.data.from_items([{"path": f} for f in files]).map_batches(
        decode, batch_size=ROWS_PER_BATCH, batch_format="numpy"
    )
    images: list[np.ndarray] = []
    batches = 0
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        batches += 1
        for raw, shape, error in zip(batch["pixels"], batch["shape"], batch["error"], strict=True):
            if error:
                raise unreadable_image(place, files[len(images)], str(error))
            dims = tuple(int(d) for d in shape if d)
            images.append(np.frombuffer(raw, dtype=np.float64).reshape(dims))
    log(f"Ray Data read and decoded {len(images)} images" + (" resized" if resize else "") + f" in {batches} batches")
    return stack_images(place, images, files), np.asarray(labels, dtype=np.int64), classes, files


def augment(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    copies: int,
    max_shift: int,
    max_rotation: float,
    seed: int,
    log: Callable[[str], None] = print,
) -> tuple[np.ndarray, np.ndarray]:
    """As preprocess.augment, the copies made by Ray Data tasks over their row numbers."""
    if copies == 0:
        return images, labels
    import ray
    import ray.data

    ceiling = float(images.max())
    shared = ray.put(images)  # one copy in the object store, read zero-copy by every task on a node

    def jitter(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = batch["id"]
        made = preprocess.jitter_rows(
            ray.get(shared), rows, max_shift=max_shift, max_rotation=max_rotation, seed=seed, ceiling=ceiling
        )
        return {"image": made}

    _in_order()
    ds = ray.data.range(len(images) * copies).map_batches(jitter, batch_size=ROWS_PER_BATCH, batch_format="numpy")
    made = _gather(ds, "image")
    jittered = np.concatenate(made)
    log(f"Ray Data made {len(jittered)} augmented copies in {len(made)} batches")
    return np.concatenate([images, jittered]), np.tile(labels, copies + 1)
