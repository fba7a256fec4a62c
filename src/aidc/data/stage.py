"""The data stage: source → clean → split → (augment) → normalize/encode → a registered dataset version."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aidc.data import preprocess
from aidc.data.readers import FORMATS, Loaded
from aidc.data.sources import DIGITS
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


class Columns(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: list[str] | None = Field(None, description="feature columns (default: every column but the label)")
    label: str = Field("label", description="the column holding the label (class or regression target)")
    categorical: list[str] = Field(default_factory=list, description="feature columns one-hot encoded")
    text: str | None = Field(None, description="the column holding a text: the dataset is its token ids")
    image: str | None = Field(
        None, description="the column naming each row's image file (relative to the table, or absolute)"
    )


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokenize: str = Field(
        "bpe",
        description="bpe (a byte-level BPE learnt from the training split), words (a word vocabulary from it), or "
        "MODULE:FUNCTION: encode(text) -> list of ids >= 0 (0 pads)",
    )
    length: int = Field(64, ge=1, le=65_536, description="ids per text: longer texts are cut, shorter padded with 0")
    vocab_size: int = Field(
        2000, ge=8, le=1_000_000, description="bpe/words: the most ids learnt; your function: every id is below it"
    )
    lowercase: bool = Field(False, description="bpe/words: fold case first")

    @field_validator("tokenize")
    @classmethod
    def _built_in_or_users(cls, value: str) -> str:
        from aidc.pipeline.usercode import is_ref

        if value not in ("bpe", "words") and not is_ref(value):
            raise ValueError(f"{value!r} is neither bpe, words nor MODULE:FUNCTION")
        return value


class Cleaning(BaseModel):
    model_config = ConfigDict(extra="forbid")
    drop_nulls: bool = Field(True, description="drop rows with a missing value")
    drop_duplicates: bool = Field(True, description="drop exact duplicate rows")
    ranges: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict, description="column → [min, max]: rows outside are dropped (null: no bound)"
    )


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = Field("digits", description="name the dataset versions are registered under")
    source: str = Field(
        DIGITS,
        description="'sklearn:digits'; a CSV, Parquet, JSON Lines or .npz file, or an image folder, local or "
        "s3://; or MODULE:FUNCTION, the user's function returning the data",
    )
    format: Literal["auto", "csv", "parquet", "jsonl", "images", "text", "npz", "python"] = Field(
        "auto", description=f"one of {', '.join(FORMATS)}; auto: from the name"
    )
    task: Literal["classification", "regression"] = Field("classification", description="what the label is")
    columns: Columns = Field(default_factory=Columns)
    clean: Cleaning = Field(default_factory=Cleaning)
    resize: tuple[int, int] | None = Field(None, description="images: [HEIGHT, WIDTH] every image is resized to")
    channels: Literal[1, 3] = Field(1, description="images: 1 (greyscale) or 3 (RGB)")
    prepare: str | None = Field(
        None,
        description="MODULE:FUNCTION run before the source is read (to fetch, unpack or write it); it should do "
        "nothing when the source is already there",
    )
    engine: Literal["pandas", "ray"] = Field(
        "pandas",
        description="read (tables, images) and decode, resize and augment (images) in this process (pandas), or "
        "in Ray Data tasks across the cluster (ray): the same dataset either way",
    )
    text: TextConfig = Field(
        default_factory=TextConfig, description="texts (columns.text, or a text folder): how they become ids"
    )
    normalize: Literal["standard", "minmax", "none"] = "standard"
    augment: Augment = Field(default_factory=Augment)
    split: Split = Field(default_factory=Split)
    seed: int = 0

    @classmethod
    def is_python(cls, source: str, fmt: str) -> bool:
        from aidc.pipeline.usercode import is_ref

        return fmt == "python" or (fmt == "auto" and source != DIGITS and is_ref(source))

    @model_validator(mode="after")
    def _leaves_training_data(self) -> DataConfig:
        if self.split.val + self.split.test >= 0.8:
            raise ValueError("split.val + split.test must leave at least 20% for training")
        if self.columns.text is not None and self.columns.image is not None:
            raise ValueError("columns.text and columns.image name two kinds of input: a dataset is texts or images")
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
    workload = "preprocessing"
    Config = DataConfig
    outputs = {"dataset": "the registered dataset version", "splits": "train/val/test arrays (.npz)"}

    @classmethod
    def user_code(cls, config: Any) -> list[str]:
        cfg: DataConfig = config
        refs = [cfg.source] if DataConfig.is_python(cfg.source, cfg.format) else []
        if cfg.text.tokenize not in ("bpe", "words"):
            refs.append(cfg.text.tokenize)
        return refs + ([cfg.prepare] if cfg.prepare else [])

    @classmethod
    def source_stamp(cls, config: Any, spec_dir: str | None) -> str | None:
        """A local file's (or folder's files') size and change time: editing the data re-runs the stage. (S3 objects
        and the user's functions are told by their ETag and source digest once read: see the dataset's lineage.)"""
        cfg: DataConfig = config
        if cfg.source == DIGITS or DataConfig.is_python(cfg.source, cfg.format) or "://" in cfg.source:
            return None
        raw = Path(cfg.source.removeprefix("file:")).expanduser()
        path = raw if raw.is_absolute() or not spec_dir or not (Path(spec_dir) / raw).exists() else Path(spec_dir) / raw
        try:
            files = sorted(path.rglob("*")) if path.is_dir() else [path]
            return ";".join(f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files if f.is_file())
        except OSError:
            return None

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        from aidc.data.sources import load_source

        cfg: DataConfig = config
        if cfg.prepare:
            from aidc.pipeline.usercode import load_callable

            ctx.log(f"preparing the source with {cfg.prepare}")
            load_callable(cfg.prepare, ctx.spec_dir, what="data.prepare")()
        if cfg.source == DIGITS:
            images, labels, max_value = load_source(cfg.source, ctx.data_roots)
            return self._images(ctx, cfg, images, labels, max_value, {"uri": DIGITS}, [])
        loaded = _read(ctx, cfg)
        if loaded.texts or (loaded.frame is not None and cfg.columns.text is not None):
            return self._text(ctx, cfg, loaded)
        if loaded.frame is not None:
            return self._table(ctx, cfg, loaded)
        assert loaded.images is not None and loaded.labels is not None
        return self._images(
            ctx, cfg, loaded.images, loaded.labels, loaded.max_value, loaded.lineage, loaded.class_names
        )

    def _table(self, ctx: StageContext, cfg: DataConfig, loaded: Loaded) -> dict[str, Any]:
        from aidc.data.tabular import TableSpec, prepare_table

        assert loaded.frame is not None
        spec = TableSpec(
            origin=loaded.origin,
            features=cfg.columns.features,
            label=cfg.columns.label,
            categorical=cfg.columns.categorical,
            task=cfg.task,
            drop_nulls=cfg.clean.drop_nulls,
            drop_duplicates=cfg.clean.drop_duplicates,
            ranges=dict(cfg.clean.ranges),
            normalize=cfg.normalize,
            val=cfg.split.val,
            test=cfg.split.test,
            seed=cfg.seed,
            csv_lines=loaded.origin.lower().endswith(".csv"),
        )
        ctx.progress("prepare", 1, 3, force=True, step="clean, split, encode")
        table = prepare_table(loaded.frame, spec)
        blob = preprocess.save_arrays(table.arrays)
        splits = ctx.put_artifact(blob, kind="dataset", name="splits.npz")
        ctx.progress("prepare", 3, 3, force=True, step="registered")
        rows = {p: int(len(table.arrays[f"y_{p}"])) for p in ("train", "val", "test")}
        stats = {
            "rows_in": table.rows_in,
            **table.dropped,
            "splits": rows,
            **table.stats,
            "normalize": cfg.normalize,
            "source": cfg.source,
            "lineage": loaded.lineage,
        }
        dropped = {
            "dropped_invalid": table.dropped["dropped_null"] + table.dropped["dropped_out_of_range"],
            "dropped_duplicate": table.dropped["dropped_duplicate"],
        }
        ctx.log(preparation_summary(table.rows_in, dropped, rows, augmented=0))
        return {
            "dataset": DatasetRegistration(
                cfg.dataset, splits, table.schema, stats, table.balance, hashlib.sha256(blob).hexdigest()
            ),
            "splits": splits,
        }

    def _text(self, ctx: StageContext, cfg: DataConfig, loaded: Loaded) -> dict[str, Any]:
        from aidc.data import text

        assert loaded.frame is not None
        column = "text" if loaded.texts else cfg.columns.text
        label = "label" if loaded.texts else cfg.columns.label
        assert column is not None
        csv_lines = loaded.origin.lower().endswith(".csv")
        frame = text.texts_and_labels(loaded.frame, column, label, loaded.origin)
        spec = text.TextSpec(
            origin=loaded.origin,
            tokenize=cfg.text.tokenize,
            length=cfg.text.length,
            vocab_size=cfg.text.vocab_size,
            lowercase=cfg.text.lowercase,
            folder=ctx.spec_dir,
        )
        ctx.progress("prepare", 1, 3, force=True, step="clean, split, tokenize")
        prepared = text.prepare_text(
            text.check_texts(frame, column, loaded.origin, csv_lines=csv_lines),
            frame[label],
            spec,
            task=cfg.task,
            drop_nulls=cfg.clean.drop_nulls,
            drop_duplicates=cfg.clean.drop_duplicates,
            val=cfg.split.val,
            test=cfg.split.test,
            seed=cfg.seed,
            csv_lines=csv_lines,
        )
        blob = preprocess.save_arrays(prepared.arrays)
        splits = ctx.put_artifact(blob, kind="dataset", name="splits.npz")
        # what a client needs to turn its texts into the ids the served model takes
        tokenizer = ctx.put_artifact(prepared.tokenizer, kind="tokenizer", name="tokenizer.json")
        ctx.progress("prepare", 3, 3, force=True, step="registered")
        rows = {p: int(len(prepared.arrays[f"y_{p}"])) for p in ("train", "val", "test")}
        schema = prepared.schema
        schema["text"]["tokenizer"] = tokenizer
        stats = {
            "rows_in": prepared.rows_in,
            **prepared.dropped,
            "splits": rows,
            **prepared.stats,
            "source": cfg.source,
            "lineage": loaded.lineage,
        }
        dropped = {
            "dropped_invalid": prepared.dropped["dropped_null"] + prepared.dropped["dropped_blank"],
            "dropped_duplicate": prepared.dropped["dropped_duplicate"],
        }
        ctx.log(preparation_summary(prepared.rows_in, dropped, rows, augmented=0))
        ctx.log(
            f"tokenized with {cfg.text.tokenize}: {prepared.stats['text']['vocab_size']} ids, "
            f"{prepared.stats['text']['tokens_mean']:.1f} tokens a text on average, "
            f"{prepared.stats['text']['filled_to_length']} texts reach the length {cfg.text.length}"
        )
        return {
            "dataset": DatasetRegistration(
                cfg.dataset, splits, schema, stats, prepared.balance, hashlib.sha256(blob).hexdigest()
            ),
            "splits": splits,
        }

    def _images(
        self,
        ctx: StageContext,
        cfg: DataConfig,
        images: np.ndarray,
        labels: np.ndarray,
        max_value: float,
        lineage: dict[str, Any],
        class_names: list[str],
    ) -> dict[str, Any]:
        rows_in = len(images)
        ctx.progress("prepare", 1, 5, force=True, step="clean")
        images, labels, dropped = preprocess.clean(images, labels, max_value)
        ctx.progress("prepare", 2, 5, force=True, step="split")
        parts = preprocess.split(images, labels, val=cfg.split.val, test=cfg.split.test, seed=cfg.seed)
        ctx.progress("prepare", 3, 5, force=True, step="augment")
        x_train, y_train = parts["train"]
        n_original = len(x_train)
        jitter: Callable[..., tuple[np.ndarray, np.ndarray]]
        if cfg.engine == "ray":
            from aidc.data import images_on_ray

            jitter = functools.partial(images_on_ray.augment, log=ctx.log)
        else:
            jitter = preprocess.augment
        x_train, y_train = jitter(
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
            x = xs[part]
            # N×C×H×W, what a conv net takes (greyscale: C = 1; RGB arrives channel-last)
            arrays[f"x_{part}"] = (x.transpose(0, 3, 1, 2) if x.ndim == 4 else x[:, None, :, :]).astype(np.float32)
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
            "lineage": lineage,
        }
        balance = {part: {str(c): int((y == c).sum()) for c in classes} for part, (_, y) in parts.items()}
        schema: dict[str, Any] = {
            "features": {"shape": list(arrays["x_train"].shape[1:]), "dtype": "float32"},
            "label": {"dtype": "int64", "classes": classes},
            "task": "classification",
        }
        if class_names:
            schema["label"]["names"] = class_names
        splits_rows = {part: len(y) for part, (_, y) in parts.items()}
        ctx.log(preparation_summary(rows_in, dropped, splits_rows, augmented=len(x_train) - n_original))
        return {
            "dataset": DatasetRegistration(
                cfg.dataset, splits, schema, stats, balance, hashlib.sha256(blob).hexdigest()
            ),
            "splits": splits,
        }


def _read(ctx: StageContext, cfg: DataConfig) -> Loaded:
    """The stage's source, read (tables and image folders through fsspec; the user's function from their folder)."""
    from aidc.data import readers

    if DataConfig.is_python(cfg.source, cfg.format):
        from aidc.pipeline.usercode import load_callable, source_digest

        function = load_callable(cfg.source, ctx.spec_dir, what="data source")
        frame, arrays = readers.from_callable(cfg.source, function(), cfg.columns.label)
        lineage = {"uri": f"python:{cfg.source}", "sha256": source_digest(cfg.source, ctx.spec_dir)}
        if frame is not None:
            return Loaded(cfg.source, lineage, frame=frame)
        images, labels = arrays
        finite = images[np.isfinite(images)]
        return Loaded(
            cfg.source, lineage, images=images, labels=labels, max_value=float(finite.max()) if finite.size else 1.0
        )
    place = readers.locate(cfg.source, ctx.data_roots, ctx.spec_dir, ctx.storage_options)
    fmt = readers.detect_format(place, cfg.format)
    if fmt == "images":
        resize = tuple(cfg.resize) if cfg.resize else None
        read_folder: Callable[..., tuple[np.ndarray, np.ndarray, list[str], list[str]]]
        if cfg.engine == "ray":
            from aidc.data import images_on_ray

            read_folder = functools.partial(images_on_ray.read_image_folder, log=ctx.log)
        else:
            read_folder = readers.read_image_folder
        images, labels, names, files = read_folder(place, resize=resize, channels=cfg.channels)  # type: ignore[arg-type]
        lineage = readers.lineage_of(place, files)
        return Loaded(place.uri, lineage, images=images, labels=labels, max_value=255.0, class_names=names)
    if fmt == "text":
        frame, names, files = readers.read_text_folder(place)
        return Loaded(place.uri, readers.lineage_of(place, files), frame=frame, class_names=names, texts=True)
    if fmt == "npz":
        images, labels, max_value = readers.read_npz(place)
        return Loaded(place.uri, readers.lineage_of(place), images=images, labels=labels, max_value=max_value)
    frame = readers.read_table_ray(place, fmt) if cfg.engine == "ray" else readers.read_table(place, fmt)
    if cfg.columns.image is not None:  # a table of image files and their labels
        from aidc.data.image_column import read_image_column

        images, labels, names, lineage = read_image_column(
            place,
            frame,
            column=cfg.columns.image,
            label=cfg.columns.label,
            resize=tuple(cfg.resize) if cfg.resize else None,  # type: ignore[arg-type]
            channels=cfg.channels,
            roots=ctx.data_roots,
        )
        return Loaded(place.uri, lineage, images=images, labels=labels, max_value=255.0, class_names=names)
    return Loaded(place.uri, readers.lineage_of(place), frame=frame)
