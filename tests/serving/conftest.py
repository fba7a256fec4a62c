"""Fixtures for the serving tests: a tiny ONNX classifier built in code, and ONNX Runtime as the oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FEATURES, CLASSES = 4, 3


def build_classifier(path: Path) -> Path:
    """Linear(4→3) + softmax with a dynamic batch axis; outputs 'logits' and 'probs'."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = rng.normal(size=(FEATURES, CLASSES)).astype(np.float32)
    bias = rng.normal(size=(CLASSES,)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "weight"], ["mm"]),
         helper.make_node("Add", ["mm", "bias"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probs"], axis=-1)],
        "classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", FEATURES])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES]),
         helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", CLASSES])],
        initializer=[numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9  # readable by every ONNX Runtime we support
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture(scope="session")
def onnx_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_classifier(tmp_path_factory.mktemp("models") / "classifier.onnx")


@pytest.fixture(scope="session")
def reference(onnx_path: Path):
    """ONNX Runtime called directly: what every served answer must equal."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        logits, probs = session.run(["logits", "probs"], {"input": x})
        return {"logits": logits, "probs": probs}

    return run


@pytest.fixture
def batch() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(5, FEATURES)).astype(np.float32)
