"""Training workers are pooled: the run's Ray starts them while the data stage runs, and a later training reuses
the same processes (torch already imported) instead of starting new ones: no worker is started for it.

Real engines: a local Ray of 2 CPUs, gloo, SQLite and the file artifact store; two train stages in one run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings

pytestmark = pytest.mark.slow

PIPELINE = """pipeline: digits-warm
stages:
  - name: data
    uses: data
    with: {source: "sklearn:digits"}
  - name: first
    uses: train
    inputs: {data: data.splits}
    with: {model: mlp, epochs: 1, workers: 2, batch_size: 128, early_stopping: null}
  - name: second
    uses: train
    inputs: {data: data.splits}
    with: {model: mlp, epochs: 1, workers: 2, batch_size: 128, early_stopping: null, seed: 1}
"""


def test_a_second_training_reuses_the_warm_workers_of_the_first(tmp_path: Path) -> None:
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PIPELINE)
    platform = Platform(Settings(home=tmp_path / "home", ray_num_cpus=2))
    try:
        result = platform.runs.run_pipeline(local_access(), spec)
        assert result.status == "succeeded"
        logs = {s: (tmp_path / "home" / "runs" / result.run_id / f"{s}.log").read_text() for s in ("first", "second")}
        # the second found every worker warm, and said how long its launch took, phase by phase
        assert re.search(r"launch [\d.]+ s to the first step \(0 of 2 worker\(s\) started", logs["second"]), logs
        launches = [m for m in platform.metadata.metrics(result.run_id) if m.name == "launch_seconds"]
        assert sorted(m.stage for m in launches) == ["first", "second"]
    finally:
        platform.close()
