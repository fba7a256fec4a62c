"""The serving bundle register_lm stores: a train_lm checkpoint's weights (not its optimizer state), the architecture
and the tokenizer, read back exactly; anything else is refused with the file named."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import torch

from aidc.errors import InvalidInput
from aidc.training.gpt.bundle import MANIFEST, pack, unpack
from aidc.training.gpt.model import gpt
from aidc.training.gpt.text import train_tokenizer

ARCH = {"model": "gpt", "vocab_size": 300, "context": 32, "dim": 32, "layers": 1, "heads": 2, "kv_heads": 1}


def test_a_bundle_holds_the_weights_architecture_and_tokenizer_and_drops_optimizer_state(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = gpt(ARCH)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.zeros(1, 4, dtype=torch.long)).sum().backward()
    optimizer.step()
    checkpoint = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 1}, checkpoint)
    tokenizer = train_tokenizer(["def f(x):\n    return x\n" * 50], 300).to_str().encode()

    path = tmp_path / "bundle.zip"
    path.write_bytes(pack(checkpoint.getvalue(), ARCH, tokenizer))
    bundle = unpack(path)
    assert bundle.arch == ARCH and bundle.tokenizer_json == tokenizer
    weights = torch.load(io.BytesIO(bundle.weights), weights_only=True)
    assert set(weights) == set(model.state_dict())  # the model's tensors only: no optimizer, no step
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert path.stat().st_size < len(checkpoint.getvalue())


def test_what_is_not_a_bundle_is_refused_naming_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"not a zip")
    with pytest.raises(InvalidInput, match="model.onnx is not a language-model bundle") as caught:
        unpack(junk)
    assert "register_lm" in (caught.value.hint or "")
    other = tmp_path / "future.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr(MANIFEST, '{"format": "aidc-gpt/9", "arch": {}}')
    with pytest.raises(InvalidInput, match="'aidc-gpt/9' bundle"):
        unpack(other)
