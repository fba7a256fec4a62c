"""The compress stage on a digits CNN: each method's model is smaller in the way it claims (measured on the exported
ONNX), keeps the accuracy the issue asks for, and is registered only when the accuracy gate holds. (Distillation
trains on Ray workers: tests/compression/test_distill_workers.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.lifecycle import Digits, digits, run_stage

from aidc.compression.stage import CompressStage
from aidc.pipeline.stage import ModelRegistration


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Digits:
    """A trained digits CNN, exported once as the export stage hands it on (an export takes seconds)."""
    from aidc.serving.export import to_onnx
    from aidc.training.zoo import load_weights

    trained = digits(tmp_path_factory.mktemp("compress"))
    model = load_weights(trained.arch, trained.ctx.get_artifact(trained.checkpoint))
    blob = to_onnx(model, trained.arrays["x_test"][:2])
    trained.onnx = trained.ctx.put_artifact(blob, kind="onnx", name="model.onnx")
    return trained


def compress(teacher: Digits, **config: Any) -> dict[str, Any]:
    inputs = {"data": teacher.splits, "checkpoint": teacher.checkpoint, "model": teacher.arch}
    inputs["onnx"] = teacher.onnx
    inputs["parent"] = {"model_version_id": 7, "ref": "digits-cnn:1"}
    return run_stage(CompressStage, teacher.ctx, inputs, latency_repeats=5, **config)


def test_static_int8_is_within_one_point_and_at_least_three_times_smaller(teacher: Digits) -> None:
    out = compress(teacher, method="quantize", register_as={"name": "digits-int8"})
    c = out["comparison"]
    assert c["parent"]["accuracy"] > 0.95
    assert c["child"]["accuracy"] >= c["parent"]["accuracy"] - 0.01
    assert c["parent"]["size_bytes"] / c["child"]["size_bytes"] >= 3.0
    assert out["onnx"]["size"] == c["child"]["size_bytes"]  # the stored artifact is the model measured
    assert out["checkpoint"] is None  # an INT8 ONNX has no PyTorch checkpoint of its own
    reg = out["model_version"]
    assert isinstance(reg, ModelRegistration) and reg.name == "digits-int8" and reg.checkpoint is None
    assert ("model_version", "7", "quantized_to") in reg.derived_from  # lineage to the parent version


def test_dynamic_int8_is_also_smaller(teacher: Digits) -> None:
    c = compress(teacher, method="quantize", quantize={"mode": "dynamic"})["comparison"]
    assert c["parent"]["size_bytes"] / c["child"]["size_bytes"] >= 3.0
    assert c["child"]["accuracy"] >= c["parent"]["accuracy"] - 0.01


def test_half_the_weights_pruned_keeps_accuracy_within_one_point(teacher: Digits) -> None:
    out = compress(teacher, method="prune", prune={"amount": 0.5, "fine_tune_epochs": 2}, register_as={"name": "p"})
    c = out["comparison"]
    assert c["details"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert c["child"]["nonzero_parameters"] <= 0.55 * c["parent"]["nonzero_parameters"]
    assert c["child"]["accuracy"] >= c["parent"]["accuracy"] - 0.01
    # a dense file of zeros: no smaller on disk as such, smaller compressed — the comparison shows which
    assert c["child"]["size_gzip_bytes"] < 0.8 * c["parent"]["size_gzip_bytes"]
    assert isinstance(out["model_version"], ModelRegistration)


def test_channel_pruning_rebuilds_a_network_that_really_is_smaller(teacher: Digits) -> None:
    out = compress(teacher, method="prune", prune={"amount": 0.5, "structured": True, "fine_tune_epochs": 3})
    c = out["comparison"]
    assert c["details"]["widths"][:2] == [16, 32] and c["details"]["widths_before"][:2] == [32, 64]
    assert c["child"]["size_bytes"] < 0.6 * c["parent"]["size_bytes"]
    assert c["child"]["accuracy"] >= c["parent"]["accuracy"] - 0.02


def test_a_model_that_loses_too_much_is_not_registered(teacher: Digits) -> None:
    out = compress(
        teacher,
        method="prune",
        prune={"amount": 0.97, "fine_tune_epochs": 0},
        max_accuracy_drop=0.01,
        register_as={"name": "too-small"},
    )
    assert out["comparison"]["gate"]["passed"] is False
    assert out["model_version"] is None
    assert "not registered as too-small" in Path(teacher.ctx.log_path).read_text()


def test_the_gate_can_fail_the_run_instead(teacher: Digits) -> None:
    from aidc.errors import GateFailed

    with pytest.raises(GateFailed, match="max_accuracy_drop"):
        compress(teacher, method="prune", prune={"amount": 0.97, "fine_tune_epochs": 0}, on_gate_failure="fail")


def test_quantisation_aware_training_gives_an_int8_onnx_model_compared_with_post_training_static(
    teacher: Digits,
) -> None:
    import onnx

    out = compress(teacher, method="quantize", quantize={"mode": "qat", "epochs": 2}, register_as={"name": "qat"})
    c = out["comparison"]
    assert c["label"] == "int8 quantisation-aware"
    assert c["child"]["accuracy"] >= c["parent"]["accuracy"] - 0.01  # ONNX Runtime's answers, on the test split
    assert c["versus"]["size_ratio"] <= 1 / 3
    graph = onnx.load_from_string(teacher.ctx.get_artifact(out["onnx"])).graph
    constants = [*graph.initializer, *(a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute)]
    int8 = [t for t in constants if t.data_type == onnx.TensorProto.INT8 and len(t.dims) >= 2]
    assert len(int8) == 4  # both convolutions' and both linear layers' weights stored as INT8
    static = c["details"]["static_int8"]  # post-training static INT8 of the same parent, measured beside it
    assert static["accuracy"] >= c["parent"]["accuracy"] - 0.05 and static["size_bytes"] < c["parent"]["size_bytes"]
    assert out["model_version"] is not None and out["model"]["quantized"] == "int8-qat"


def test_quantisation_aware_training_refuses_a_network_it_cannot_fuse_with_a_hint() -> None:
    import numpy as np
    from torch import nn

    from aidc.compression.qat import quantization_aware
    from aidc.errors import InvalidInput

    class Own(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x: Any) -> Any:
            return self.fc(x)

    x, y = np.zeros((4, 4), dtype=np.float32), np.zeros(4, dtype=np.int64)
    with pytest.raises(InvalidInput, match="zoo's sequential networks") as refused:
        quantization_aware(Own(), x, y, epochs=1, lr=1e-3, batch_size=4, seed=0)
    assert "mode: static" in (refused.value.hint or "")
