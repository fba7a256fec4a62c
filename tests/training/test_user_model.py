"""The user's own model code (`train.model: module:function`): found next to the pipeline, checked on two rows before
any training worker starts, and a bug in it reported as theirs at their line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aidc.data.preprocess import save_arrays
from aidc.errors import InvalidInput, UserCodeError
from aidc.pipeline.runner import _execute_stage
from aidc.pipeline.stage import StageContext
from aidc.store.artifacts import open_artifact_store
from aidc.training.stage import TrainConfig, TrainStage

MODELS = """\
import torch
from torch import nn


class Buggy(nn.Module):
    def __init__(self, features, outputs):
        super().__init__()
        self.linear = nn.Linear(features, outputs)

    def forward(self, x):
        return self.linear(x.reshape(len(x), 3, -1))  # their bug: the wrong shape


def buggy(input_shape, outputs):
    return Buggy(input_shape[0], outputs)


def too_few(input_shape, outputs):
    return nn.Linear(input_shape[0], 1)


def not_a_module(input_shape, outputs):
    return "a string"


def step_gives_a_number(model, batch, loss_fn):
    return 1.0


def step_detaches(model, batch, loss_fn):
    x, y = batch
    return {"loss": loss_fn(model(x), y).detach()}


def step_bad_metric(model, batch, loss_fn):
    x, y = batch
    return {"loss": loss_fn(model(x), y), "per_row": x.sum(1)}
"""


def train(tmp_path: Path, **settings: object) -> None:
    (tmp_path / "mymodels.py").write_text(MODELS)
    store = open_artifact_store((tmp_path / "artifacts").as_uri())
    rng = np.random.default_rng(0)
    arrays = {f"x_{p}": rng.normal(size=(8, 4)).astype(np.float32) for p in ("train", "val", "test")}
    arrays |= {f"y_{p}": np.arange(8, dtype=np.int64) % 3 for p in ("train", "val", "test")}
    ref = store.put_bytes(save_arrays(arrays))
    data = {"artifact": ref.digest, "size": ref.size, "uri": ref.uri, "kind": "dataset", "name": "splits.npz"}
    log = tmp_path / "train.log"
    ctx = StageContext("r1", "train", store, None, str(log), str(tmp_path), spec_dir=str(tmp_path))
    _execute_stage(TrainStage, ctx, TrainConfig.model_validate(settings), {"data": data})


def test_a_bug_in_the_users_forward_points_at_their_line_before_training_starts(tmp_path: Path) -> None:
    with pytest.raises(UserCodeError) as caught:
        train(tmp_path, model="mymodels:buggy")
    assert caught.value.where == f"{tmp_path / 'mymodels.py'}:11"
    assert "failed in your code: RuntimeError" in caught.value.message


def test_a_model_that_does_not_fit_the_data_or_is_no_module_is_refused_plainly(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"returns \(2, 1\) for a batch of 2; the data needs \(2, 3\)"):
        train(tmp_path, model="mymodels:too_few")
    with pytest.raises(InvalidInput, match="returned str, not a torch.nn.Module"):
        train(tmp_path, model="mymodels:not_a_module")
    with pytest.raises(InvalidInput, match=f"no module 'theirmodels' in the pipeline's folder \\({tmp_path}\\)"):
        train(tmp_path, model="theirmodels:build")


def test_a_model_is_a_zoo_key_or_module_function() -> None:
    with pytest.raises(ValueError, match="neither a zoo model"):
        TrainConfig.model_validate({"model": "resnet"})
    assert TrainConfig.model_validate({"model": "pkg.models:build", "params": {"hidden": 8}}).params == {"hidden": 8}


def test_a_training_step_that_returns_no_usable_loss_is_refused_before_training(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"train.step 'mymodels:step_gives_a_number' returned float, not a loss"):
        train(tmp_path, model="mlp", step="mymodels:step_gives_a_number")
    with pytest.raises(InvalidInput, match="returned as its loss a tensor without a gradient"):
        train(tmp_path, model="mlp", step="mymodels:step_detaches")
    with pytest.raises(InvalidInput, match=r"metric 'per_row' is a tensor of shape \(2,\)"):
        train(tmp_path, model="mlp", step="mymodels:step_bad_metric")
