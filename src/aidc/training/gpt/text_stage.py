"""The text stage: a corpus → a trained byte-level BPE tokenizer and packed train/validation token sequences,
each an artifact of the run, with the list of files in each split (the data's lineage)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aidc.pipeline.stage import Stage, StageContext


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Literal["stdlib"] = Field(
        "stdlib", description="stdlib: the Python standard library's .py sources (ships on every machine)"
    )
    max_bytes: int = Field(2_000_000, ge=10_000, description="characters of text to read, at most")
    max_files: int | None = Field(None, ge=2, description="files to read, at most")
    val_fraction: float = Field(0.1, gt=0, lt=0.5, description="share of files held out for validation")
    vocab_size: int = Field(2048, ge=260, le=262_144, description="BPE vocabulary (256 bytes + merges + 1 special)")
    seq_len: int = Field(128, ge=8, le=131_072, description="tokens per packed training sequence")
    seed: int = 0


class TextStage(Stage):
    kind = "text"
    workload = "preprocessing"
    Config = TextConfig
    outputs = {
        "tokenizer": "the BPE tokenizer (tokenizers JSON)",
        "tokens": "packed train/val sequences (.npz, rows of seq_len + 1 token ids)",
        "manifest": "the files in each split, with their SHA-256",
        "summary": "sizes of the corpus and the splits",
    }

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        from aidc.training.gpt import text

        cfg: TextConfig = config
        files = text.stdlib_corpus(cfg.max_files, cfg.max_bytes)
        train, val = text.split_by_file(files, cfg.val_fraction, cfg.seed)
        ctx.log(f"{len(files)} files from {text.stdlib_root()}: {len(train)} for training, {len(val)} held out")
        tok = text.train_tokenizer((f.text for f in train), cfg.vocab_size)
        eot = tok.token_to_id(text.END_OF_TEXT)
        ctx.progress("text", 1, 3, force=True)
        train_docs, val_docs = text.encode_files(tok, train), text.encode_files(tok, val)
        ctx.progress("text", 2, 3, force=True)
        train_rows, val_rows = text.pack(train_docs, cfg.seq_len, eot), text.pack(val_docs, cfg.seq_len, eot)
        manifest = {
            split: [{"file": f.name, "sha256": hashlib.sha256(f.text.encode()).hexdigest()} for f in part]
            for split, part in (("train", train), ("val", val))
        }
        train_tokens, val_tokens = sum(map(len, train_docs)), sum(map(len, val_docs))
        chars = sum(len(f.text) for f in train)
        summary = {
            "source": cfg.source,
            "files": {"train": len(train), "val": len(val)},
            "tokens": {"train": train_tokens, "val": val_tokens},
            "sequences": {"train": int(train_rows.shape[0]), "val": int(val_rows.shape[0])},
            "seq_len": cfg.seq_len,
            "vocab_size": tok.get_vocab_size(),
            "chars_per_token": round(chars / max(1, train_tokens), 3),
        }
        ctx.log(
            f"tokenizer of {summary['vocab_size']} tokens ({summary['chars_per_token']} characters a token); "
            f"{train_tokens} training and {val_tokens} validation tokens in sequences of {cfg.seq_len}"
        )
        ctx.progress("text", 3, 3, force=True)
        return {
            "tokenizer": ctx.put_artifact(tok.to_str().encode(), kind="tokenizer", name="tokenizer.json"),
            "tokens": ctx.put_artifact(text.save_tokens(train_rows, val_rows), kind="dataset", name="tokens.npz"),
            "manifest": ctx.put_artifact(json.dumps(manifest).encode(), kind="manifest", name="files.json"),
            "summary": summary,
        }
