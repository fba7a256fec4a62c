"""A model the ONNX exporter cannot take (data-dependent control flow): the export stage says why instead of failing
the run, the checkpoint is still registered as a model version, and the deploy stage skips it and says so."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from aidc.data.preprocess import save_arrays
from aidc.pipeline.runner import PipelineRunner
from aidc.pipeline.stage import ModelRegistration, StageContext
from aidc.serving.deploy import DeployConfig, DeployStage
from aidc.serving.export import ExportConfig, ExportStage
from aidc.settings import Settings
from aidc.store.artifacts import open_artifact_store
from aidc.store.metadata import open_metadata_store

MODEL = """\
from torch import nn


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        if x.sum() > 0:  # which way depends on the data: torch.export cannot trace it
            return self.linear(x)
        return -self.linear(x)


def build(input_shape, outputs):
    return Branchy()
"""


def test_an_unexportable_model_is_registered_by_its_checkpoint_and_not_served(tmp_path: Path) -> None:
    (tmp_path / "branchy.py").write_text(MODEL)
    store = open_artifact_store((tmp_path / "artifacts").as_uri())

    def put(data: bytes, kind: str) -> dict[str, object]:
        ref = store.put_bytes(data)
        return {"artifact": ref.digest, "size": ref.size, "uri": ref.uri, "kind": kind, "name": kind}

    arch = {
        "model": "branchy:build",
        "folder": str(tmp_path),
        "input_shape": [4],
        "classes": 3,
        "task": "classification",
    }
    from aidc.training.zoo import build_model

    blob = io.BytesIO()
    torch.save({"model": build_model(arch).state_dict()}, blob)
    x = np.ones((6, 4), dtype=np.float32)
    data = put(save_arrays({"x_test": x, "y_test": np.zeros(6, dtype=np.int64)}), "dataset")
    checkpoint = put(blob.getvalue(), "checkpoint")
    log = tmp_path / "export.log"
    ctx = StageContext("r1", "export", store, None, str(log), str(tmp_path))
    out = ExportStage().run(ctx, ExportConfig(), {"checkpoint": checkpoint, "model": arch, "data": data})
    assert out["onnx"] is None and out["parity"]["reason"].startswith("TorchExportError")
    assert "cannot export this model to ONNX (TorchExportError" in log.read_text()

    metadata = open_metadata_store(f"sqlite:///{tmp_path / 'aidc.db'}")
    metadata.create_run("r1", "p", {"pipeline": "p", "stages": []}, None)
    runner = PipelineRunner(metadata, store, Settings(home=tmp_path), deployments=lambda *a: None)  # type: ignore[arg-type,return-value]
    registered = runner._commit("r1", ModelRegistration("branchy", "staging", None, checkpoint, None, {}))
    version = metadata.get_model_version("branchy", 1)
    assert registered["ref"] == "branchy:1" and version.onnx_digest is None
    assert version.checkpoint_digest == checkpoint["artifact"]

    deploy_log = tmp_path / "deploy.log"
    ctx = StageContext("r1", "deploy", store, None, str(deploy_log), str(tmp_path))
    ctx.deployments = object()
    inputs = {"model": registered, "onnx": None, "data": data, "predictions": {"split": "test", "predicted": []}}
    done = DeployStage().run(ctx, DeployConfig(), inputs)
    assert done["deployment"] is None
    assert "not deploying branchy:1: it has no ONNX model" in deploy_log.read_text()
