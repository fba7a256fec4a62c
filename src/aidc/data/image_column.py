"""Images named by a table: a column of image files (paths relative to the table, or absolute; ``s3://`` beside an S3
table) and a label column — the CSV an image dataset often ships as — read like an image folder's files."""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aidc.data.readers import Place, decode_image, lineage_of
from aidc.data.sources import confined
from aidc.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd


def _row(i: int, csv_lines: bool) -> str:
    return f"row {i + 1} (line {i + 2})" if csv_lines else f"row {i + 1}"


def _file_of(place: Place, ref: str, roots: tuple[str, ...] | None) -> str:
    """The file a cell names: beside the table unless absolute; a local one confined to ``roots`` like the table."""
    remote = place.uri.startswith("s3://")
    if remote:
        return (
            ref.removeprefix("s3://") if ref.startswith("s3://") else posixpath.join(posixpath.dirname(place.path), ref)
        )
    path = Path(ref).expanduser()
    if not path.is_absolute():
        path = Path(place.path).parent / path
    return str(confined(ref, str(path), roots))


def read_image_column(
    place: Place,
    frame: pd.DataFrame,
    *,
    column: str,
    label: str,
    resize: tuple[int, int] | None,
    channels: int,
    roots: tuple[str, ...] | None,
) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]:
    """(N×H×W[×3] float64 in 0…255, class indices, class names — the label values, sorted —, lineage: the table's,
    and one digest over the image files). A row without a file or label, a file that is missing or not an image, or
    images of different sizes (without ``resize``) are refused naming the row and column."""
    csv_lines = place.uri.lower().endswith(".csv")
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    for name, setting in ((column, "data.columns.image"), (label, "data.columns.label")):
        if name not in columns:
            raise InvalidInput(
                f"{place.uri} has no {'image' if name == column else 'label'} column {name!r} "
                f"(its columns: {', '.join(columns)})",
                hint=f"set {setting} to the column that holds it",
            )
    mode = "L" if channels == 1 else "RGB"
    images: list[np.ndarray] = []
    files: list[str] = []
    for i, (ref, value) in enumerate(zip(frame[column].tolist(), frame[label].tolist(), strict=True)):
        where = f"{place.uri}, {_row(i, csv_lines)}, column"
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidInput(f"{where} {column!r}: no image file named", hint="name the image file of every row")
        if value is None or (isinstance(value, float) and np.isnan(value)):
            raise InvalidInput(f"{where} {label!r}: the label is missing", hint="fill in the label of every row")
        path = _file_of(place, ref, roots)
        if not place.fs.isfile(path):
            raise InvalidInput(
                f"{where} {column!r}: {ref!r} does not exist",
                hint="name it relative to the table's folder, or give its absolute path",
            )
        with place.fs.open(path, "rb") as fh:
            pixels, error = decode_image(fh.read(), mode, resize)
        if error is not None:
            raise InvalidInput(
                f"{where} {column!r}: {ref!r} is not a readable image ({error})",
                hint="remove the row or replace the file; PNG and JPEG are read",
            )
        if images and pixels.shape != images[0].shape:
            raise InvalidInput(
                f"{where} {column!r}: {ref!r} is {pixels.shape[1]}×{pixels.shape[0]} pixels, row 1's "
                f"{images[0].shape[1]}×{images[0].shape[0]}",
                hint="set data.resize: [HEIGHT, WIDTH] to bring every image to one size",
            )
        images.append(pixels)
        files.append(path)
    if not images:
        raise InvalidInput(f"{place.uri} has no rows", hint="one row per image: its file and its label")
    names = sorted({str(v) for v in frame[label].tolist()})
    index = {n: k for k, n in enumerate(names)}
    labels = np.asarray([index[str(v)] for v in frame[label].tolist()], dtype=np.int64)
    base = Place(place.fs, posixpath.commonpath(files) if len(files) > 1 else posixpath.dirname(files[0]), place.uri)
    lineage = {**lineage_of(place), "images": lineage_of(base, files)}
    lineage["images"].pop("uri")
    return np.stack(images), labels, names, lineage
