"""Text for classification (or regression): the texts and labels a source holds, cleaned, split (stratified), and
turned into fixed-length id sequences by a tokenizer fitted on the training split only — a byte-level BPE (the
`tokenizers` library), a word vocabulary, or the user's own ``module:function``."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from aidc.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

PAD, UNK = 0, 1  # ids every built-in tokenizer reserves: padding (the zoo's text model ignores it) and unknown
WORD = re.compile(r"\w+|[^\w\s]")


@dataclass
class TextSpec:
    """How a data stage turns texts into ids."""

    origin: str
    tokenize: str = "bpe"  # "bpe", "words", or the user's MODULE:FUNCTION
    length: int = 64
    vocab_size: int = 2000
    lowercase: bool = False
    folder: str | None = None  # where the user's tokenizer module is looked for (the pipeline's folder)


@dataclass
class Tokenizer:
    """A fitted tokenizer: ``encode(text) → ids``, its vocabulary's size, and what a client needs to do the same
    (``saved``: the tokenizer as JSON, stored next to the dataset)."""

    kind: str
    vocab_size: int
    encode_one: Callable[[str], Sequence[int]]
    encode_many: Callable[[list[str]], list[Sequence[int]]] | None
    saved: dict[str, Any]


def fit(texts: list[str], spec: TextSpec) -> Tokenizer:
    """The tokenizer ``spec`` names, fitted on ``texts`` (the training split) where it learns a vocabulary."""
    if spec.tokenize == "bpe":
        return _bpe(texts, spec)
    if spec.tokenize == "words":
        return _words(texts, spec)
    return _users(spec)


def _bpe(texts: list[str], spec: TextSpec) -> Tokenizer:
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

    tok = HFTokenizer(models.BPE())
    if spec.lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=["<pad>", "<unk>"],  # ids 0 and 1, as the word vocabulary has them
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)

    def many(batch: list[str]) -> list[Sequence[int]]:
        return [e.ids for e in tok.encode_batch(batch, add_special_tokens=False)]

    return Tokenizer(
        "bpe",
        tok.get_vocab_size(),
        lambda text: tok.encode(text, add_special_tokens=False).ids,
        many,
        {"kind": "bpe", "tokenizers": json.loads(tok.to_str())},
    )


def words_of(text: str, lowercase: bool) -> list[str]:
    return WORD.findall(text.lower() if lowercase else text)


def _words(texts: list[str], spec: TextSpec) -> Tokenizer:
    counts = Counter(w for t in texts for w in words_of(t, spec.lowercase))
    # the most frequent words, ties by the word itself: the same texts always give the same vocabulary
    kept = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max(0, spec.vocab_size - 2)]
    vocab = {w: i for i, (w, _) in enumerate(kept, 2)}

    def one(text: str) -> list[int]:
        return [vocab.get(w, UNK) for w in words_of(text, spec.lowercase)]

    return Tokenizer(
        "words",
        len(vocab) + 2,
        one,
        None,
        {"kind": "words", "pattern": WORD.pattern, "lowercase": spec.lowercase, "pad": PAD, "unk": UNK, "vocab": vocab},
    )


def _users(spec: TextSpec) -> Tokenizer:
    from aidc.pipeline.usercode import load_callable

    encode = load_callable(spec.tokenize, spec.folder, what="data.text.tokenize")
    return Tokenizer("python", 0, encode, None, {"kind": "python", "function": spec.tokenize})


def encode(tok: Tokenizer, texts: list[str], spec: TextSpec, *, rows: np.ndarray | None = None) -> np.ndarray:
    """N×``length`` int64 ids: each text's ids cut to ``length`` or padded with 0. ``rows``: the texts' row numbers
    in the source, for an error about one of them (the user's function returned something that is not ids)."""
    out = np.zeros((len(texts), spec.length), dtype=np.int64)
    encoded = tok.encode_many(texts) if tok.encode_many is not None else None
    for i, text in enumerate(texts):
        ids = encoded[i] if encoded is not None else tok.encode_one(text)
        ids = ids[: spec.length]
        try:
            array = np.asarray(ids, dtype=np.int64)
            ok = array.ndim == 1 and (array.size == 0 or int(array.min()) >= 0)
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            at = f"row {int(rows[i]) + 1}" if rows is not None else f"text {i + 1}"
            raise InvalidInput(
                f"{spec.origin}, {at}: {spec.tokenize} returned {_short(ids)}, not a list of non-negative ids",
                hint="return a list of ints ≥ 0 for one text (0 is padding; the platform cuts and pads to "
                "data.text.length)",
            )
        out[i, : len(array)] = array
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def texts_and_labels(frame: pd.DataFrame, text_column: str, label: str, origin: str) -> pd.DataFrame:
    """The text and label columns of a table, or an error naming the file and its columns."""
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    for name, setting in ((text_column, "data.columns.text"), (label, "data.columns.label")):
        if name not in columns:
            raise InvalidInput(
                f"{origin} has no {'text' if name == text_column else 'label'} column {name!r} "
                f"(its columns: {', '.join(columns)})",
                hint=f"set {setting} to the column that holds it",
            )
    return frame[[text_column, label]]


def check_texts(frame: pd.DataFrame, text_column: str, origin: str, *, csv_lines: bool) -> pd.Series:
    """The text column as strings (missing values kept as such). A CSV has no types, so its values are taken as
    written; elsewhere (JSON Lines, Parquet, the user's function) a number or a list where text belongs is refused
    at its row."""
    values = frame[text_column]
    if csv_lines:
        return values.map(lambda v: v if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    bad = values.notna() & ~values.map(lambda v: isinstance(v, str))
    if bad.any():
        at = int(np.flatnonzero(bad.to_numpy())[0])
        row = f"row {at + 1} (line {at + 2})" if csv_lines else f"row {at + 1}"
        raise InvalidInput(
            f"{origin}, {row}, column {text_column!r}: {values.iloc[at]!r} is not text",
            hint="the text column holds strings; quote the value, or name another column in data.columns.text",
        )
    return values


@dataclass
class PreparedText:
    arrays: dict[str, np.ndarray]
    schema: dict[str, Any]
    stats: dict[str, Any]
    balance: dict[str, Any]
    dropped: dict[str, int]
    rows_in: int
    tokenizer: bytes  # the fitted tokenizer as JSON (see Tokenizer.saved)


def prepare_text(
    texts: pd.Series,
    labels: pd.Series,
    spec: TextSpec,
    *,
    task: str = "classification",
    drop_nulls: bool = True,
    drop_duplicates: bool = True,
    val: float = 0.15,
    test: float = 0.2,
    seed: int = 0,
    csv_lines: bool = False,
) -> PreparedText:
    """Texts and labels → train/val/test arrays (``x_*`` N×length int64 ids; ``y_*`` class indices int64, or N×1
    float32 for a regression), ``vocab_size`` (one number: the embedding a model needs), ``tokenizer`` (its JSON as
    bytes), and what the dataset version records. Rows with a missing or blank text or a missing label are dropped (or refused, with
    ``drop_nulls: false``), then duplicate (text, label) rows; the tokenizer learns from the training split only."""
    import pandas as pd

    from aidc.data.tabular import TableSpec, split_rows

    rows_in = len(texts)
    if rows_in == 0:
        raise InvalidInput(f"{spec.origin} has no texts", hint="a text dataset needs texts and their labels")
    frame = pd.DataFrame({"text": texts.to_numpy(), "label": labels.to_numpy()})
    table = TableSpec(
        origin=spec.origin, features=None, label="label", val=val, test=test, seed=seed, csv_lines=csv_lines
    )
    missing = frame["text"].isna() | frame["label"].isna()
    blank = ~missing & (frame["text"].astype(str).str.strip() == "")
    dropped = {"dropped_null": int(missing.sum()), "dropped_blank": int(blank.sum()), "dropped_duplicate": 0}
    if missing.any() and not drop_nulls:
        at = int(np.flatnonzero(missing.to_numpy())[0])
        what = "text" if pd.isna(frame["text"].iloc[at]) else "label"
        row = f"row {at + 1} (line {at + 2})" if csv_lines else f"row {at + 1}"
        raise InvalidInput(
            f"{spec.origin}, {row}: the {what} is missing",
            hint="set data.clean.drop_nulls: true, or fill it in",
        )
    frame["row"] = np.arange(rows_in)
    frame = frame[~missing & ~blank]
    if drop_duplicates:
        before = len(frame)
        frame = frame.drop_duplicates(subset=["text", "label"])
        dropped["dropped_duplicate"] = before - len(frame)
    if len(frame) < 5:
        raise InvalidInput(
            f"{spec.origin}: {len(frame)} texts left after cleaning ({rows_in} in)",
            hint="check data.clean: it dropped " + ", ".join(f"{n} {k[8:]}" for k, n in dropped.items()),
        )
    classification = task == "classification"
    if classification:
        classes = sorted(frame["label"].unique().tolist(), key=lambda v: (str(type(v)), v))
        index = {v: i for i, v in enumerate(classes)}
        y = frame["label"].map(index).to_numpy(dtype=np.int64)
    else:
        classes = []
        try:
            y = frame["label"].astype("float64").to_numpy(dtype=np.float32)[:, None]
        except (TypeError, ValueError):
            values = pd.to_numeric(frame["label"], errors="coerce")
            at = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise InvalidInput(
                f"{spec.origin}, row {int(frame['row'].iloc[at]) + 1}: label {frame['label'].iloc[at]!r} is not a "
                "number (the task is a regression)",
                hint="fix the value, or set data.task: classification",
            ) from None
    parts = split_rows(y if classification else None, len(frame), table)
    all_texts = frame["text"].astype(str).tolist()
    tok = fit([all_texts[i] for i in parts["train"]], spec)
    ids = encode(tok, all_texts, spec, rows=frame["row"].to_numpy())
    vocab_size = tok.vocab_size or spec.vocab_size
    too_big = ids >= vocab_size
    if too_big.any():
        at = int(np.flatnonzero(too_big.any(axis=1))[0])
        raise InvalidInput(
            f"{spec.origin}, row {int(frame['row'].iloc[at]) + 1}: {spec.tokenize} gave id {int(ids[at].max())}, "
            f"not below data.text.vocab_size ({vocab_size})",
            hint="raise data.text.vocab_size to more than your tokenizer's largest id",
        )
    saved = json.dumps(tok.saved, sort_keys=True).encode()
    arrays: dict[str, np.ndarray] = {
        "vocab_size": np.asarray([vocab_size], dtype=np.int64),
        "tokenizer": np.frombuffer(saved, dtype=np.uint8),  # travels with the splits: export puts it in the model
    }
    for p, rows in parts.items():
        arrays[f"x_{p}"] = ids[rows]
        arrays[f"y_{p}"] = y[rows]
    tokens = np.count_nonzero(ids, axis=1)
    full = np.asarray([len(t) for t in all_texts])  # (characters; tokens past the cut are not counted twice)
    truncated = int((ids[:, -1] != PAD).sum())
    schema: dict[str, Any] = {
        "features": {"shape": [spec.length], "dtype": "int64", "kind": "token ids"},
        "text": {"tokenize": spec.tokenize, "length": spec.length, "vocab_size": int(vocab_size), "pad": PAD},
        "task": task,
    }
    if classification:
        schema["label"] = {"dtype": "int64", "classes": list(range(len(classes))), "names": [str(c) for c in classes]}
        balance = {p: {str(k): int((y[rows] == k).sum()) for k in range(len(classes))} for p, rows in parts.items()}
    else:
        schema["label"] = {"dtype": "float32", "shape": [1]}
        balance = {}
    stats = {
        "text": {
            "tokens_mean": float(tokens.mean()),
            "tokens_max": int(tokens.max()),
            "filled_to_length": truncated,  # texts that reach data.text.length (cut there, or exactly as long)
            "characters_mean": float(full.mean()),
            "vocab_size": int(vocab_size),
        },
    }
    return PreparedText(arrays, schema, stats, balance, dropped, rows_in, saved)
