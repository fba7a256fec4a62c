"""Preparing a table for training: typed columns (with located errors), cleaning rules, a stratified split,
categorical one-hot encoding and per-column normalisation fitted on the training split — pandas, in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from aidc.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class TableSpec:
    """The columns and rules a data stage applies to a table."""

    origin: str
    features: list[str] | None
    label: str
    categorical: list[str] = field(default_factory=list)
    task: str = "classification"
    drop_nulls: bool = True
    drop_duplicates: bool = True
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    normalize: str = "standard"
    val: float = 0.15
    test: float = 0.2
    seed: int = 0
    csv_lines: bool = False  # a CSV: rows are also told as file lines (the header is line 1)


@dataclass
class PreparedTable:
    arrays: dict[str, np.ndarray]
    schema: dict[str, Any]
    stats: dict[str, Any]
    balance: dict[str, Any]
    dropped: dict[str, int]
    rows_in: int


def _row(spec: TableSpec, index: int) -> str:
    return f"row {index + 1} (line {index + 2})" if spec.csv_lines else f"row {index + 1}"


def _numeric(frame: pd.DataFrame, column: str, spec: TableSpec) -> pd.Series:
    """``column`` as float64, or InvalidInput at its first value that is not a number."""
    import pandas as pd

    raw = frame[column]
    if pd.api.types.is_bool_dtype(raw) or pd.api.types.is_numeric_dtype(raw):
        return raw.astype("float64")
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if bad.any():
        at = int(np.flatnonzero(bad.to_numpy())[0])
        raise InvalidInput(
            f"{spec.origin}, {_row(spec, at)}, column {column!r}: {raw.iloc[at]!r} is not a number",
            hint=f"fix the value, or list {column!r} under data.columns.categorical if it is a category",
        )
    return values.astype("float64")


def typed_columns(frame: pd.DataFrame, spec: TableSpec) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The label and feature columns, numeric ones as float64; (frame, numeric feature names, categorical names)."""
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    listed = ", ".join(columns)
    if spec.label not in columns:
        raise InvalidInput(
            f"{spec.origin} has no label column {spec.label!r} (its columns: {listed})",
            hint="set data.columns.label to the column that holds the label",
        )
    features = spec.features if spec.features is not None else [c for c in columns if c != spec.label]
    for name in [*features, *spec.categorical, *spec.ranges]:
        if name not in columns:
            raise InvalidInput(
                f"{spec.origin} has no column {name!r} (its columns: {listed})",
                hint="fix the name under data.columns (or data.clean.ranges)",
            )
    if not features:
        raise InvalidInput(f"{spec.origin}: no feature columns besides the label {spec.label!r}")
    categorical = [c for c in features if c in spec.categorical]
    numeric = [c for c in features if c not in spec.categorical]
    out = {c: _numeric(frame, c, spec) for c in numeric}
    out |= {c: frame[c].astype("string") for c in categorical}
    out[spec.label] = _numeric(frame, spec.label, spec) if spec.task == "regression" else frame[spec.label]
    import pandas as pd

    return pd.DataFrame(out, index=frame.index), numeric, categorical


def clean(frame: pd.DataFrame, spec: TableSpec) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop rows with a missing value, out of a declared range, then exact duplicates; how many each rule took."""
    dropped = {"dropped_null": 0, "dropped_out_of_range": 0, "dropped_duplicate": 0}
    if spec.drop_nulls:
        keep = frame.notna().all(axis=1)
        dropped["dropped_null"] = int((~keep).sum())
        frame = frame[keep]
    else:
        missing = frame[spec.label].isna()
        if missing.any():
            at = int(np.flatnonzero(missing.to_numpy())[0])
            raise InvalidInput(
                f"{spec.origin}, {_row(spec, int(frame.index[at]))}, column {spec.label!r}: the label is missing",
                hint="set data.clean.drop_nulls: true, or fill in the label",
            )
    for column, (low, high) in spec.ranges.items():
        values = frame[column].astype("float64")
        keep = values.notna()
        if low is not None:
            keep &= values >= low
        if high is not None:
            keep &= values <= high
        dropped["dropped_out_of_range"] += int((~keep).sum())
        frame = frame[keep]
    if spec.drop_duplicates:
        before = len(frame)
        frame = frame.drop_duplicates()
        dropped["dropped_duplicate"] = before - len(frame)
    return frame, dropped


def split_rows(labels: np.ndarray | None, n: int, spec: TableSpec) -> dict[str, np.ndarray]:
    """Row positions of train/val/test, stratified by ``labels`` when given, reproducible by the seed."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(n)
    try:
        rest, test = train_test_split(rows, test_size=spec.test, stratify=labels, random_state=spec.seed)
        train, val = train_test_split(
            rest,
            test_size=spec.val / (1 - spec.test),
            stratify=None if labels is None else labels[rest],
            random_state=spec.seed,
        )
    except ValueError as exc:
        raise InvalidInput(
            f"{spec.origin}: cannot split {n} rows into train/val/test ({exc})",
            hint="every class needs a few rows in each split: add rows, or merge the smallest classes",
        ) from None
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def column_stats(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    for c in numeric:
        v = frame[c].to_numpy(dtype=np.float64)
        stats[c] = {
            "kind": "numeric",
            "mean": float(v.mean()) if len(v) else 0.0,
            "std": float(v.std()) if len(v) else 0.0,
            "min": float(v.min()) if len(v) else 0.0,
            "max": float(v.max()) if len(v) else 0.0,
        }
    for c in categorical:
        counts = frame[c].value_counts()
        stats[c] = {
            "kind": "categorical",
            "distinct": int(len(counts)),
            "top": {str(k): int(n) for k, n in counts[:10].items()},
        }
    return stats


def prepare_table(frame: pd.DataFrame, spec: TableSpec) -> PreparedTable:
    """A table → train/val/test arrays (``x_*`` N×F float32; ``y_*`` class indices int64, or N×1 float32 for a
    regression), with the schema, per-column statistics and class balance the dataset version records."""
    rows_in = len(frame)
    if rows_in == 0:
        raise InvalidInput(f"{spec.origin} has no rows", hint="a table needs a header and at least a few rows")
    frame, numeric, categorical = typed_columns(frame, spec)
    frame, dropped = clean(frame, spec)
    if len(frame) < 5:
        raise InvalidInput(
            f"{spec.origin}: {len(frame)} rows left after cleaning ({rows_in} in)",
            hint="check data.clean: it dropped " + ", ".join(f"{n} {k[8:]}" for k, n in dropped.items()),
        )
    classification = spec.task == "classification"
    if classification:
        labels_raw = frame[spec.label]
        classes = sorted(labels_raw.unique().tolist(), key=lambda v: (str(type(v)), v))
        index = {v: i for i, v in enumerate(classes)}
        y = labels_raw.map(index).to_numpy(dtype=np.int64)
    else:
        classes = []
        y = frame[spec.label].to_numpy(dtype=np.float32)[:, None]
    parts = split_rows(y if classification else None, len(frame), spec)
    train = frame.iloc[parts["train"]]
    blocks: dict[str, list[np.ndarray]] = {p: [] for p in parts}
    names: list[str] = []
    norm: dict[str, dict[str, float]] = {}
    for c in numeric:
        values = train[c].to_numpy(dtype=np.float64)
        if spec.normalize == "standard":
            shift, scale = float(values.mean()), float(values.std()) or 1.0
        elif spec.normalize == "minmax":
            shift, scale = float(values.min()), float(values.max() - values.min()) or 1.0
        else:
            shift, scale = 0.0, 1.0
        norm[c] = {"shift": shift, "scale": scale}
        for p, rows in parts.items():
            blocks[p].append(((frame[c].to_numpy(dtype=np.float64)[rows] - shift) / scale)[:, None])
        names.append(c)
    categories: dict[str, list[str]] = {}
    for c in categorical:
        seen = sorted(str(v) for v in train[c].unique())  # fitted on train: an unseen category is all zeros
        categories[c] = seen
        column = frame[c].astype(str).to_numpy()
        for p, rows in parts.items():
            blocks[p].append((column[rows][:, None] == np.asarray(seen)[None, :]).astype(np.float64))
        names += [f"{c}={v}" for v in seen]
    arrays: dict[str, np.ndarray] = {}
    for p, rows in parts.items():
        arrays[f"x_{p}"] = np.concatenate(blocks[p], axis=1).astype(np.float32)
        arrays[f"y_{p}"] = y[rows]
    schema: dict[str, Any] = {
        "features": {"shape": [len(names)], "dtype": "float32", "columns": names},
        "columns": {"numeric": numeric, "categorical": categorical, "label": spec.label},
        "task": spec.task,
    }
    if classification:
        schema["label"] = {"dtype": "int64", "classes": list(range(len(classes))), "names": [str(c) for c in classes]}
        balance = {p: {str(k): int((y[rows] == k).sum()) for k in range(len(classes))} for p, rows in parts.items()}
    else:
        schema["label"] = {"dtype": "float32", "shape": [1]}
        balance = {}
    stats = {
        "columns": column_stats(frame, numeric, categorical)
        | (
            {spec.label: column_stats(frame, [spec.label], [])[spec.label]}
            if not classification
            else {spec.label: {"kind": "label", "classes": [str(c) for c in classes]}}
        ),
        "normalization": {"method": spec.normalize, "columns": norm},
        "categories": categories,
    }
    return PreparedTable(arrays, schema, stats, balance, dropped, rows_in)
