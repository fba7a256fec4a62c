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
        [
            helper.make_node("MatMul", ["input", "weight"], ["mm"]),
            helper.make_node("Add", ["mm", "bias"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
        ],
        "classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", FEATURES])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES]),
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", CLASSES]),
        ],
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


def build_incompatible(path: Path) -> Path:
    """A model whose input is [-1, 5]: every request the classifier accepts is a 400 here (a broken new version)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["logits"]), helper.make_node("Softmax", ["input"], ["probs"])],
        "incompatible",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", FEATURES + 1])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", FEATURES + 1]),
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", FEATURES + 1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, path)
    return path


# ------------------------------------------------------------------------- deployments on a real Ray cluster


@pytest.fixture(scope="session")
def serving_home(tmp_path_factory: pytest.TempPathFactory):
    """One AIDC_HOME, and one local Ray head (as `aidc deploy` starts one), for every deployment test module."""
    from aidc.serving.cluster import ServingCluster

    home = tmp_path_factory.mktemp("aidc-home")
    cluster = ServingCluster(home)
    cluster.address(keep=True)  # kept: deleting a module's last deployment must not stop it for the next
    yield home
    cluster.stop()


@pytest.fixture(scope="module")
def platform(serving_home: Path):
    """A platform on the shared home; deployments a module leaves behind are deleted after it."""
    from aidc.platform import Platform
    from aidc.security.roles import local_access
    from aidc.settings import Settings

    p = Platform(Settings(home=serving_home, ray_address=""))
    yield p
    for d in p.deployments.list(local_access()):
        p.deployments.change(local_access(), "delete", d["name"])
    p.close()


@pytest.fixture(scope="module")
def register(platform):
    """Register a model version by hand, as the pipeline's register stage would: its ONNX file into the artifact store."""

    def register(name: str, onnx_file: Path):
        ref = platform.artifacts.put_file(onnx_file)
        return platform.metadata.register_model_version(
            name, onnx_digest=ref.digest, checkpoint_digest=None, run_id=None, dataset_version_id=None, metrics={}
        )

    return register


@pytest.fixture(scope="session")
def incompatible_onnx_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_incompatible(tmp_path_factory.mktemp("models") / "incompatible.onnx")
