"""A registered language model's serving bundle: the weights, the architecture and the tokenizer in one zip file.

A `gpt` needs three things to generate text — its weights (a train_lm checkpoint), its architecture (the train
stage's `model` output) and the text stage's tokenizer — and a model version records one artifact for its
weights. The register_lm stage stores the three together as that artifact, so a replica fetches one
content-addressed file and serves it; the train checkpoint and tokenizer it came from stay in the lineage.

Layout: ``aidc-gpt.json`` (format, architecture), ``tokenizer.json``, ``model.pt`` (the model's state dict only:
no optimizer state).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aidc.errors import InvalidInput

FORMAT = "aidc-gpt/1"
MANIFEST, TOKENIZER, WEIGHTS = "aidc-gpt.json", "tokenizer.json", "model.pt"
TASK = "text_generation"  # what a model version's metrics say it does (`task`), so deploy serves it as a generator


@dataclass(frozen=True)
class Bundle:
    weights: bytes  # torch.save of the model's state dict
    arch: dict[str, Any]
    tokenizer_json: bytes


def pack(checkpoint: bytes, arch: dict[str, Any], tokenizer_json: bytes) -> bytes:
    """The bundle of a train_lm checkpoint (its model state is kept, its optimizer state dropped)."""
    import torch

    state = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=False)
    weights = io.BytesIO()
    torch.save(state.get("model", state) if isinstance(state, dict) else state, weights)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(MANIFEST, json.dumps({"format": FORMAT, "arch": arch}, sort_keys=True))
        z.writestr(TOKENIZER, tokenizer_json)
        z.writestr(WEIGHTS, weights.getvalue())
    return out.getvalue()


def unpack(path: str | Path) -> Bundle:
    """Read a bundle; a file that is not one is an InvalidInput naming it."""
    try:
        with zipfile.ZipFile(path) as z:
            manifest = json.loads(z.read(MANIFEST))
            if manifest.get("format") != FORMAT:
                raise InvalidInput(f"{path}: a {manifest.get('format')!r} bundle; this aidc reads {FORMAT!r}")
            return Bundle(z.read(WEIGHTS), dict(manifest["arch"]), z.read(TOKENIZER))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(
            f"{path} is not a language-model bundle: {exc}",
            hint="register language models with a register_lm stage (docs/gpt.md)",
        ) from None
