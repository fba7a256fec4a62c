"""Dataset sources: where images and labels come from (scikit-learn's bundled digits, or a user's .npz file)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from aidc.errors import InvalidInput

DIGITS = "sklearn:digits"


class ServedRoots(tuple[str, ...]):
    """A job's data folders that it cannot read itself (it runs as another OS user): ``fetch(raw)`` has the server
    read the file inside them on the job's behalf and returns the job's local copy."""

    fetch: Callable[[str], Path]

    def __new__(cls, roots: tuple[str, ...], fetch: Callable[[str], Path]) -> ServedRoots:
        made = super().__new__(cls, roots)
        made.fetch = fetch
        return made

    def __reduce__(self) -> tuple[Any, ...]:  # (shipped to the stage's Ray task with its context)
        return (ServedRoots, (tuple(self), self.fetch))


def confined(source: str, raw: str, roots: tuple[str, ...] | None) -> Path:
    """The file ``raw`` names, once it lies inside one of ``roots`` (None: anywhere — the CLI on one's own store).

    A relative path is taken in the first root. Links are resolved first, so a link inside a root that points out of
    it is refused; the refusal says nothing of the file (whether it exists, what it holds), only where files may be.
    """
    if isinstance(roots, ServedRoots):
        return roots.fetch(raw)
    path = Path(raw).expanduser()
    if roots is None:
        return path
    if not path.is_absolute():
        path = Path(roots[0]) / path
    resolved = path.resolve()
    if not any(resolved.is_relative_to(Path(root).resolve()) for root in roots):
        raise InvalidInput(
            f"dataset source {source!r} is outside this project's data folders",
            hint=f"put the file under {roots[0]} (this project's data area) and name it relative to it; an admin "
            "may allow another folder with AIDC_PROJECT_DATA_ROOTS",
        )
    return resolved


def load_source(source: str, roots: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """(images N×H×W float64, labels N int64, the pixel scale's maximum) for ``source``.

    ``sklearn:digits`` is the 1,797 real 8×8 handwritten digits that ship with scikit-learn (no download);
    ``file:PATH.npz`` reads arrays ``images`` (N×H×W) and ``labels`` (N) that a user prepared, from inside ``roots``
    when the run is confined to its project's data folders (a job on the server).
    """
    if source == DIGITS:
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.images.astype(np.float64), digits.target.astype(np.int64), 16.0
    if source.startswith("file:"):
        path = confined(source, source.removeprefix("file:"), roots)
        if not path.is_file():
            raise InvalidInput(
                f"dataset file {path} does not exist", hint="give file:PATH to an .npz with arrays images and labels"
            )
        with np.load(path) as data:
            if "images" not in data or "labels" not in data:
                raise InvalidInput(
                    f"{path} lacks arrays 'images' and 'labels' (it has: {', '.join(data.files)})",
                    hint="save with np.savez(path, images=N×H×W array, labels=N array)",
                )
            images, labels = data["images"].astype(np.float64), data["labels"].astype(np.int64)
        if images.ndim != 3 or len(images) != len(labels):
            raise InvalidInput(
                f"{path}: images must be N×H×W and labels N long (got {images.shape} and {labels.shape})"
            )
        finite = images[np.isfinite(images)]
        return images, labels, float(finite.max()) if finite.size else 1.0
    raise InvalidInput(f"unknown dataset source {source!r}", hint=f"use {DIGITS!r} or 'file:PATH.npz'")
