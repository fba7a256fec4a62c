"""Reading a dataset source through fsspec — a CSV, Parquet or JSON Lines table, an image folder, an .npz, or the
user's own ``module:function`` — with its lineage (URI, content digest or ETag, size) and located errors."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aidc.data.sources import confined
from aidc.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

TABLE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
TEXT_SUFFIXES = (".txt",)
FORMATS = ("auto", "csv", "parquet", "jsonl", "images", "text", "npz", "python")


@dataclass
class Loaded:
    """What a source holds: a table (``frame``), images with their labels (N×H×W or N×H×W×C, 0…``max_value``), or
    texts with their labels (a text folder: ``frame`` with columns ``text`` and ``label``, ``texts`` True)."""

    origin: str  # the file or folder, as the user reads it in a message
    lineage: dict[str, Any]
    frame: pd.DataFrame | None = None
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    max_value: float = 1.0
    class_names: list[str] = field(default_factory=list)
    texts: bool = False


@dataclass(frozen=True)
class Place:
    """Where a file source lives: the fsspec filesystem and the path on it, and the URI a person reads."""

    fs: Any
    path: str
    uri: str


def locate(source: str, roots: tuple[str, ...] | None, spec_dir: str | None, storage_options: dict[str, Any]) -> Place:
    """The filesystem and path ``source`` names: ``s3://bucket/key`` (with the artifact store's endpoint) or a local
    path (``file:`` optional), confined to ``roots`` when the run is a project's job."""
    import fsspec

    if source.startswith("s3://"):
        fs, path = fsspec.core.url_to_fs(source, **storage_options)
        return Place(fs, path, source)
    if "://" in source and not source.startswith("file://"):
        raise InvalidInput(
            f"dataset source {source!r}: only s3:// and local paths are read",
            hint="copy the data to S3 or into the project's data folder",
        )
    raw = source.removeprefix("file://").removeprefix("file:")
    if roots is None and spec_dir and not Path(raw).expanduser().is_absolute() and (Path(spec_dir) / raw).exists():
        raw = str(Path(spec_dir) / raw)  # a file next to the pipeline (the examples' way); else from where aidc runs
    path = confined(source, raw, roots)
    return Place(fsspec.filesystem("file"), str(path.resolve()), str(path))


def _digest_file(fs: Any, path: str) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with fs.open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def lineage_of(place: Place, files: list[str] | None = None) -> dict[str, Any]:
    """URI, then the content's identity: S3's ETag and size (no download twice), or SHA-256 and size; for a folder
    one digest over every file's path and identity."""
    remote = not place.fs.protocol or "file" not in (
        place.fs.protocol if isinstance(place.fs.protocol, tuple) else (place.fs.protocol,)
    )

    def identity(path: str) -> tuple[str, int]:
        if remote:
            info = place.fs.info(path)
            return str(info.get("ETag") or info.get("etag") or "").strip('"'), int(info.get("size") or 0)
        return _digest_file(place.fs, path)

    if files is None:
        ident, size = identity(place.path)
        return {"uri": place.uri, ("etag" if remote else "sha256"): ident, "size": size}
    h, total = hashlib.sha256(), 0
    for path in files:
        ident, size = identity(path)
        h.update(f"{path[len(place.path) :]}\0{ident}\0{size}\n".encode())
        total += size
    return {"uri": place.uri, "sha256": h.hexdigest(), "size": total, "files": len(files)}


def detect_format(place: Place, declared: str) -> str:
    if declared != "auto":
        return declared
    if place.fs.isdir(place.path):
        found = [p.lower() for p in place.fs.find(place.path)]
        texts = sum(p.endswith(TEXT_SUFFIXES) for p in found)
        return "text" if texts > sum(p.endswith(IMAGE_SUFFIXES) for p in found) else "images"
    suffix = Path(place.path).suffix.lower()
    if suffix == ".npz":
        return "npz"
    if suffix in TABLE_FORMATS:
        return TABLE_FORMATS[suffix]
    if not place.fs.exists(place.path):
        raise InvalidInput(
            f"dataset source {place.uri} does not exist",
            hint="give a CSV, Parquet, JSON Lines or .npz file, an image folder, or MODULE:FUNCTION",
        )
    raise InvalidInput(
        f"dataset source {place.uri}: cannot tell its format from the name",
        hint="set data.format to one of csv, parquet, jsonl, images, text, npz",
    )


def read_table(place: Place, fmt: str) -> pd.DataFrame:
    """A CSV, Parquet or JSON Lines file as a DataFrame; a malformed one is refused naming the file (and line)."""
    import pandas as pd

    if not place.fs.isfile(place.path):
        raise InvalidInput(f"dataset file {place.uri} does not exist", hint=f"give the path to a {fmt} file")
    with place.fs.open(place.path, "rb") as fh:
        data = fh.read()
    try:
        if fmt == "csv":  # pyarrow's parser: the same numbers as Ray Data's reader (engine: ray) gives
            return pd.read_csv(io.BytesIO(data), engine="pyarrow")
        if fmt == "parquet":
            return pd.read_parquet(io.BytesIO(data))
        return _read_jsonl(place, data)
    except pd.errors.EmptyDataError:
        raise InvalidInput(f"{place.uri} is empty", hint="a CSV needs a header line and rows") from None
    except pd.errors.ParserError as exc:
        raise InvalidInput(
            f"{place.uri}{_csv_fault(data) or f' is not a well-formed CSV: {exc}'.rstrip()}",
            hint="fix the line named (a value with a comma in it needs double quotes)",
        ) from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"{place.uri} is not a readable {fmt} file: {exc}") from None


def _csv_fault(data: bytes) -> str | None:
    """Where a CSV that pyarrow refused goes wrong, as ``, line N: ...`` (pyarrow's message names no line; pandas'
    own parser, run only on this error path, does)."""
    import re

    import pandas as pd

    try:
        pd.read_csv(io.BytesIO(data), engine="c", dtype=str)
    except pd.errors.ParserError as exc:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if found:
            expected, line, saw = found.groups()
            return f", line {line}: {saw} fields where the header has {expected}"
    except (ValueError, OSError):
        return None
    return None


def _read_jsonl(place: Place, data: bytes) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for line_no, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"{place.uri}, line {line_no}: not a JSON object ({exc.msg})", hint="one JSON object per line"
            ) from None
        if not isinstance(row, dict):
            raise InvalidInput(f"{place.uri}, line {line_no}: not a JSON object", hint="one JSON object per line")
        rows.append(row)
    if not rows:
        raise InvalidInput(f"{place.uri} is empty", hint="one JSON object per line")
    return pd.DataFrame(rows)


def image_files(place: Place) -> tuple[list[str], list[int], list[str]]:
    """(files, class indices, class names) of an image folder, or an error when there is none to read."""
    if not place.fs.isdir(place.path):
        raise InvalidInput(f"image folder {place.uri} does not exist", hint="FOLDER/CLASS_NAME/*.png|jpg")
    files, labels, classes = _class_files(place, IMAGE_SUFFIXES)
    if not files:
        raise InvalidInput(
            f"image folder {place.uri} has no images",
            hint="put them in one folder per class: FOLDER/CLASS_NAME/*.png (or .jpg)",
        )
    return files, labels, classes


def read_image_folder(
    place: Place, *, resize: tuple[int, int] | None, channels: int
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Images under ``FOLDER/CLASS_NAME/*.png|jpg`` → (N×H×W[×3] float64 in 0…255, labels, class names, files)."""
    files, labels, classes = image_files(place)
    mode = "L" if channels == 1 else "RGB"
    images: list[np.ndarray] = []
    for path in files:
        with place.fs.open(path, "rb") as fh:
            data = fh.read()
        pixels, error = decode_image(data, mode, resize)
        if error is not None:
            raise unreadable_image(place, path, error)
        images.append(pixels)
    return stack_images(place, images, files), np.asarray(labels, dtype=np.int64), classes, files


def unreadable_image(place: Place, path: str, error: str) -> InvalidInput:
    return InvalidInput(
        f"{_shown(place, path)}: not a readable image ({error})",
        hint="remove or replace the file; PNG and JPEG are read",
    )


def decode_image(data: bytes, mode: str, resize: tuple[int, int] | None) -> tuple[np.ndarray, str | None]:
    """An image file's pixels (H×W, or H×W×3 for ``mode`` RGB; float64 0…255), resized bilinearly to ``resize``
    (height, width) when given; or why it cannot be read. One function for both engines: the same pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        opened = Image.open(io.BytesIO(data))
        opened.load()
    except (UnidentifiedImageError, OSError) as exc:
        return np.zeros(0), str(exc)
    image = opened.convert(mode)
    if resize is not None:
        image = image.resize((resize[1], resize[0]), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float64), None


def stack_images(place: Place, images: list[np.ndarray], files: list[str]) -> np.ndarray:
    """The images as one N×H×W[×3] array, or an error naming the first file whose size differs from the first's."""
    for pixels, path in zip(images, files, strict=True):
        if pixels.shape != images[0].shape:
            raise InvalidInput(
                f"{_shown(place, path)} is {pixels.shape[1]}×{pixels.shape[0]} pixels, "
                f"{_shown(place, files[0])} {images[0].shape[1]}×{images[0].shape[0]}",
                hint="set data.resize: [HEIGHT, WIDTH] to bring every image to one size",
            )
    return np.stack(images)


def _class_files(place: Place, suffixes: tuple[str, ...]) -> tuple[list[str], list[int], list[str]]:
    """(files, their class indices, the class names) of ``FOLDER/CLASS_NAME/*suffix``, classes in sorted order."""
    classes = sorted(Path(p).name for p in place.fs.ls(place.path, detail=False) if place.fs.isdir(p))
    files: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        found = sorted(
            p for p in place.fs.ls(f"{place.path.rstrip('/')}/{name}", detail=False) if p.lower().endswith(suffixes)
        )
        files += found
        labels += [index] * len(found)
    return files, labels, classes


def read_text_folder(place: Place) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Texts under ``FOLDER/CLASS_NAME/*.txt`` (one text a file, UTF-8) → (a frame of ``text`` and ``label`` — the
    class name —, the class names, the files)."""
    import pandas as pd

    if not place.fs.isdir(place.path):
        raise InvalidInput(f"text folder {place.uri} does not exist", hint="FOLDER/CLASS_NAME/*.txt")
    files, labels, classes = _class_files(place, TEXT_SUFFIXES)
    if not files:
        raise InvalidInput(
            f"text folder {place.uri} has no texts",
            hint="put them in one folder per class: FOLDER/CLASS_NAME/*.txt, one text a file (UTF-8)",
        )
    texts: list[str] = []
    for path in files:
        with place.fs.open(path, "rb") as fh:
            data = fh.read()
        try:
            texts.append(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise InvalidInput(
                f"{_shown(place, path)}, line {line}: not UTF-8 text (byte {data[exc.start]:#04x} at offset "
                f"{exc.start})",
                hint="save the file as UTF-8, or remove it",
            ) from None
    frame = pd.DataFrame({"text": texts, "label": [classes[i] for i in labels]})
    return frame, classes, files


def _shown(place: Place, path: str) -> str:
    """A file under a source, as the user named it."""
    rel = path[len(place.path.rstrip("/")) :].lstrip("/")
    return f"{place.uri.rstrip('/')}/{rel}"


def read_npz(place: Place) -> tuple[np.ndarray, np.ndarray, float]:
    if not place.fs.isfile(place.path):
        raise InvalidInput(
            f"dataset file {place.uri} does not exist", hint="give file:PATH to an .npz with arrays images and labels"
        )
    with place.fs.open(place.path, "rb") as fh, np.load(io.BytesIO(fh.read()), allow_pickle=False) as data:
        if "images" not in data or "labels" not in data:
            raise InvalidInput(
                f"{place.uri} lacks arrays 'images' and 'labels' (it has: {', '.join(data.files)})",
                hint="save with np.savez(path, images=N×H×W array, labels=N array)",
            )
        images, labels = data["images"].astype(np.float64), data["labels"].astype(np.int64)
    if images.ndim != 3 or len(images) != len(labels):
        raise InvalidInput(
            f"{place.uri}: images must be N×H×W and labels N long (got {images.shape} and {labels.shape})"
        )
    finite = images[np.isfinite(images)]
    return images, labels, float(finite.max()) if finite.size else 1.0


def from_callable(ref: str, value: Any, label: str | None) -> tuple[pd.DataFrame | None, tuple[np.ndarray, ...]]:
    """What a user's data function returned, as a table, or as (images, labels) arrays.

    Accepted: a DataFrame; a dict of equal-length columns; rows (an iterable of dicts); ``(X, y)`` arrays — X N×F
    becomes feature columns ``x0…`` and y the label column, X N×H×W images."""
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return value, ()
    if isinstance(value, tuple) and len(value) == 2:
        x, y = np.asarray(value[0]), np.asarray(value[1])
        if len(x) != len(y):
            raise InvalidInput(f"{ref} returned X with {len(x)} rows and y with {len(y)}", hint="one label per row")
        if x.ndim == 3:
            return None, (x.astype(np.float64), y.astype(np.int64))
        if x.ndim != 2:
            raise InvalidInput(f"{ref} returned X of shape {x.shape}", hint="N×F features or N×H×W images")
        frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
        frame[label or "label"] = y
        return frame, ()
    if isinstance(value, dict):
        return pd.DataFrame(value), ()
    if hasattr(value, "__iter__") and not isinstance(value, (str, bytes)):
        rows = list(value)
        if rows and all(isinstance(r, dict) for r in rows):
            return pd.DataFrame(rows), ()
    raise InvalidInput(
        f"{ref} returned {type(value).__name__}, which is not a dataset",
        hint="return a pandas DataFrame, a dict of columns, an iterable of row dicts, or (X, y) arrays",
    )


def read_table_ray(place: Place, fmt: str) -> pd.DataFrame:
    """The table read by Ray Data: the file parsed in a Ray task on the cluster (pyarrow, as the in-memory path
    parses it; Ray Data gives each file one read task and splits its output into blocks), row order kept, then
    gathered into one DataFrame for the rest of the stage."""
    import pandas as pd
    import pyarrow.fs
    import ray
    import ray.data

    if not place.fs.isfile(place.path):
        raise InvalidInput(f"dataset file {place.uri} does not exist", hint=f"give the path to a {fmt} file")
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the split depends on row order: same rows, same dataset
    filesystem = pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(place.fs))
    try:
        if fmt == "csv":
            ds = ray.data.read_csv(place.path, filesystem=filesystem)
        elif fmt == "parquet":
            ds = ray.data.read_parquet(place.path, filesystem=filesystem)
        else:
            ds = ray.data.read_json(place.path, filesystem=filesystem, lines=True)
        # Arrow blocks, in order, turned into a DataFrame by pyarrow (as pandas' pyarrow engine does)
        blocks = ray.get(ds.to_arrow_refs())
    except Exception as exc:  # Ray Data wraps the parser's error, which names neither the line nor the row
        if isinstance(exc, InvalidInput):
            raise
        read_table(place, fmt)  # the error path only: read here, for the message that names the line at fault
        raise InvalidInput(
            f"{place.uri} is not a readable {fmt} file: {str(exc).strip().splitlines()[-1]}",
            hint="read it with data.engine: pandas to find the fault",
        ) from None
    import pyarrow as pa

    return pa.concat_tables(blocks).to_pandas() if blocks else pd.DataFrame()
