"""The user's own training step (`train.step: MODULE:FUNCTION`), run by the platform's data-parallel workers: the
step computes the loss (and may give its outputs and metrics of its own); backward, the optimizer step, checkpoints,
metrics and stopping stay the platform's. A bug that only shows on the workers is the user's, at their line, and a
fixed module resumes.

Real engines: a local Ray of 2 CPUs, 2 pooled training workers (gloo), SQLite and the file artifact store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aidc.errors import UserCodeError
from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings

pytestmark = pytest.mark.slow

PIPELINE = """pipeline: digits-step
stages:
  - name: data
    uses: data
    with: {source: "sklearn:digits", augment: {copies: 0}}
  - name: train
    uses: train
    inputs: {data: data.splits}
    with: {model: mlp, epochs: 2, workers: 2, batch_size: 64, early_stopping: null, max_failures: 0, step: "%s"}
"""

STEPS = """\
from torch import nn


def smoothed(model, batch, loss_fn, epoch):
    x, y = batch
    outputs = model(x)
    loss = nn.functional.cross_entropy(outputs, y, label_smoothing=0.2)
    return {"loss": loss, "outputs": outputs, "epoch_seen": float(epoch), "plain": loss_fn(outputs, y).detach()}


def loss_only(model, batch, loss_fn):
    x, y = batch
    return loss_fn(model(x), y)


def buggy(model, batch, loss_fn, step):
    x, y = batch
    if step > 2:  # passes the stage's two-row check, fails on the training workers
        raise ValueError(f"a deliberate bug at step {step}")
    return loss_fn(model(x), y)
"""


def _metrics(platform: Platform, run_id: str) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for m in platform.metadata.metrics(run_id, stage="train"):
        out.setdefault(m.name, []).append((m.step, m.value))
    return {k: sorted(v) for k, v in out.items()}


def _platform(tmp_path: Path, step: str) -> tuple[Platform, Path]:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "steps.py").write_text(STEPS)
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PIPELINE % step)
    return Platform(Settings(home=tmp_path / "home", ray_num_cpus=2)), spec


def test_the_users_step_gives_the_loss_outputs_and_metrics_the_platform_records(tmp_path: Path) -> None:
    platform, spec = _platform(tmp_path, "steps:smoothed")
    try:
        result = platform.runs.run_pipeline(local_access(), spec)
        assert result.status == "succeeded"
        metrics = _metrics(platform, result.run_id)
        assert metrics["train_epoch_seen"] == [(1, 1.0), (2, 2.0)]  # their metric, averaged over the epoch
        assert [s for s, _ in metrics["train_accuracy"]] == [1, 2]  # from the outputs they gave back
        # label smoothing: the loss they returned (and the platform stepped on) is above the plain cross-entropy
        assert all(s > p for (_, s), (_, p) in zip(metrics["train_loss"], metrics["train_plain"], strict=True))
        assert result.outputs["train"]["summary"]["best_val_accuracy"] > 0.8  # the optimizer did step on it
    finally:
        platform.close()
    platform, spec = _platform(tmp_path / "plain", "steps:loss_only")
    try:
        result = platform.runs.run_pipeline(local_access(), spec)
        metrics = _metrics(platform, result.run_id)
        assert "train_accuracy" not in metrics and [s for s, _ in metrics["train_loss"]] == [1, 2]
    finally:
        platform.close()


def test_a_bug_in_the_users_step_on_the_workers_is_theirs_and_a_fixed_module_resumes(tmp_path: Path) -> None:
    platform, spec = _platform(tmp_path, "steps:buggy")
    try:
        with pytest.raises(UserCodeError) as caught:
            platform.runs.run_pipeline(local_access(), spec)
        line = next(i for i, text in enumerate(STEPS.splitlines(), 1) if "a deliberate bug" in text)
        assert caught.value.where == f"{tmp_path / 'steps.py'}:{line}"
        assert "a deliberate bug at step 3" in caught.value.message
        run_id = caught.value.run_id
        (tmp_path / "steps.py").write_text(STEPS.replace("if step > 2:", "if step < 0:"))
        resumed = platform.runs.run_pipeline(local_access(), None, resume=run_id)
        assert resumed.status == "succeeded"
    finally:
        platform.close()
