"""The zoo's text classifier and the user's text model over token ids: built with the dataset's vocabulary, exported to
ONNX with an int64 ``tokens`` input, and ONNX Runtime's answers equal PyTorch's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aidc.errors import InvalidInput
from aidc.serving.export import onnx_logits, tensor_names, to_onnx
from aidc.training.loop import evaluate_arrays
from aidc.training.stage import try_users_code
from aidc.training.zoo import build_model


def test_textcnn_exports_with_int64_tokens_and_onnx_runtime_agrees() -> None:
    model = build_model({"model": "textcnn", "input_shape": [12], "classes": 4, "width": 16, "vocab_size": 50}).eval()
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 50, size=(7, 12)).astype(np.int64)
    ids[0, 5:] = 0  # a short text, padded
    names = tensor_names(ids)
    assert names == ("tokens", "logits")
    blob = to_onnx(model, ids[:2], names=names)
    import onnxruntime as ort

    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "tokens" and session.get_inputs()[0].type == "tensor(int64)"
    assert np.abs(onnx_logits(blob, ids) - evaluate_arrays(model, ids)).max() < 1e-5
    # padding is left out of the mean: more padding after the same words gives the same answer
    longer = build_model({"model": "textcnn", "input_shape": [20], "classes": 4, "width": 16, "vocab_size": 50})
    longer.load_state_dict(model.state_dict())
    padded = np.zeros((1, 20), dtype=np.int64)
    padded[0, :5] = ids[0, :5]
    assert np.allclose(evaluate_arrays(longer, padded), evaluate_arrays(model, ids[:1]), atol=1e-5)


def test_textcnn_on_data_without_token_ids_says_what_it_needs() -> None:
    with pytest.raises(InvalidInput, match="model 'textcnn' takes token ids, and this dataset has none"):
        build_model({"model": "textcnn", "input_shape": [12], "classes": 4})


MODELS = """\
from torch import nn


class Bag(nn.Module):
    def __init__(self, vocab_size, outputs):
        super().__init__()
        self.embed = nn.EmbeddingBag(vocab_size, 8, padding_idx=0)
        self.head = nn.Linear(8, outputs)

    def forward(self, ids):
        return self.head(self.embed(ids))


def build(input_shape, outputs, vocab_size):
    return Bag(vocab_size, outputs)
"""


def test_the_users_text_model_is_given_the_vocabulary_size(tmp_path: Path) -> None:
    (tmp_path / "textmodels.py").write_text(MODELS)
    arch = {
        "model": "textmodels:build",
        "input_shape": [10],
        "classes": 3,
        "vocab_size": 40,
        "task": "classification",
        "folder": str(tmp_path),
        "params": {},
    }
    ids = np.arange(20, dtype=np.int64).reshape(2, 10) + 19  # the largest id, 38, is inside the vocabulary
    try_users_code(arch, ids, np.array([0, 2]))
    assert build_model(arch).embed.num_embeddings == 40
