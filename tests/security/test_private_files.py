"""What a run leaves on disk is the owner's alone: AIDC_HOME 0700, aidc.db 0600, and no unencrypted copy of a
checkpoint outside the artifact store — what training reports to its driver is a pointer, held in memory, and
nothing is left under the old Ray Train folder (issue 13, item 5)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings

pytestmark = pytest.mark.slow

PIPELINE = """pipeline: digits-private
stages:
  - name: data
    uses: data
    with: {source: "sklearn:digits"}
  - name: train
    uses: train
    inputs: {data: data.splits}
    with: {model: mlp, epochs: 2, workers: 2, early_stopping: null}
"""


def test_a_training_run_leaves_no_plaintext_checkpoint_and_private_state(tmp_path: Path) -> None:
    home = tmp_path / "home"
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PIPELINE)
    platform = Platform(Settings(home=home, ray_num_cpus=2))
    try:
        run = platform.runs.run_pipeline(local_access(), spec)
        assert run.status == "succeeded"
        assert [a.name for a in platform.metadata.artifacts(run_id=run.run_id, kind="checkpoint")] == [
            "epoch-001.pt",
            "epoch-002.pt",
        ]
    finally:
        platform.close()
    ray_train = home / "ray-train"
    left = sorted(str(p.relative_to(home)) for p in ray_train.rglob("*")) if ray_train.exists() else []
    assert left == [], f"Ray Train's copies were left behind: {left[:5]}"
    artifacts = home / "artifacts"
    strays = [p for p in home.rglob("*.pt") if artifacts not in p.parents]
    assert strays == []
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "aidc.db").stat().st_mode) == 0o600
