"""Text for the language model: the Python standard library's sources as a corpus that ships on every machine, a
byte-level BPE tokenizer trained on it (the `tokenizers` library), a train/validation split by file, and packing
of the token stream into fixed-length sequences."""

from __future__ import annotations

import hashlib
import io
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

END_OF_TEXT = "<|endoftext|>"


@dataclass(frozen=True)
class CorpusFile:
    name: str  # path relative to the corpus root: what the split and the lineage record
    text: str


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_corpus(max_files: int | None = None, max_bytes: int | None = None) -> list[CorpusFile]:
    """The standard library's .py files (not site-packages), in a fixed order, up to a file or byte budget.

    The order is by a hash of the path so that a small budget still draws from the whole library."""
    root = stdlib_root()
    paths = [p for p in root.rglob("*.py") if "site-packages" not in p.parts and "dist-packages" not in p.parts]
    paths.sort(key=lambda p: hashlib.sha256(p.relative_to(root).as_posix().encode()).hexdigest())
    files: list[CorpusFile] = []
    total = 0
    for p in paths:
        if max_files is not None and len(files) >= max_files:
            break
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if not text.strip():
            continue
        if max_bytes is not None and total + len(text) > max_bytes and files:
            break
        files.append(CorpusFile(p.relative_to(root).as_posix(), text))
        total += len(text)
    return files


def split_by_file(
    files: list[CorpusFile], val_fraction: float, seed: int = 0
) -> tuple[list[CorpusFile], list[CorpusFile]]:
    """Whole files go to training or validation (by a seeded hash of the name: stable as the corpus grows)."""
    val: list[CorpusFile] = []
    train: list[CorpusFile] = []
    for f in files:
        h = int(hashlib.sha256(f"{seed}:{f.name}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (val if h < val_fraction else train).append(f)
    if not val and len(train) > 1:
        val.append(train.pop())
    return train, val


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer (GPT-2 style: any text round-trips exactly) with one special token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def load_tokenizer(blob: bytes | str) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_str(blob.decode() if isinstance(blob, bytes) else blob)


def encode_files(tok: Any, files: list[CorpusFile]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch([f.text for f in files], add_special_tokens=False)]


def pack(docs: list[list[int]], seq_len: int, eot: int) -> np.ndarray:
    """The documents joined by the end-of-text token and cut into rows of seq_len + 1 tokens (inputs and the
    targets shifted by one); consecutive rows share one token so that every token is a target once."""
    stream: list[int] = []
    for d in docs:
        stream.extend(d)
        stream.append(eot)
    rows = (len(stream) - 1) // seq_len
    if rows < 1:
        raise ValueError(f"{len(stream)} tokens cannot fill one sequence of {seq_len + 1}")
    arr = np.asarray(stream[: rows * seq_len + 1], dtype=np.int32)
    idx = np.arange(seq_len + 1)[None, :] + seq_len * np.arange(rows)[:, None]
    packed: np.ndarray = arr[idx]
    return packed


def save_tokens(train: np.ndarray, val: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, train=train, val=val)
    return buf.getvalue()


def load_tokens(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob)) as z:
        return {k: z[k] for k in z.files}
