"""The stage cache as the pipeline runner uses it: one project's finished stages are never another project's cache.

The store's own contract (``find_cached_stage(..., project_of=...)``) is held in tests/contract; this holds the
runner to asking it with the run: the same pipeline run in project beta after project alpha executes its stages
again, while alpha's rerun reuses alpha's. Real engines: the data stage on the run's own local Ray, SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings
from aidc.store.metadata.records import StageRun

PIPELINE = """\
pipeline: digits-data
stages:
  - name: data
    uses: data
    with:
      source: sklearn:digits
      split: {val: 0.15, test: 0.2}
"""


@pytest.fixture()
def platform(aidc_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    monkeypatch.setenv("AIDC_RAY_NUM_CPUS", "1")
    platform = Platform(Settings(home=aidc_home))
    yield platform
    platform.close()


def test_the_same_pipeline_in_another_project_executes_again_and_is_cached_only_in_its_own(
    platform: Platform, tmp_path: Path
) -> None:
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PIPELINE)

    def run(project: str) -> StageRun:
        result = platform.runs.runner(local_access(), project=project).run(spec)
        assert result.status == "succeeded"
        (stage,) = result.stages
        return stage

    alpha = run("alpha")
    assert alpha.status == "succeeded"
    beta = run("beta")
    assert (beta.status, beta.cached_from) == ("succeeded", None)  # beta's own run of the stage, not alpha's outputs
    again = run("alpha")
    assert (again.status, again.cached_from) == ("cached", alpha.id)  # the cache works, within alpha


def test_a_stage_executed_again_in_another_project_registers_that_projects_own_dataset_version(
    platform: Platform, tmp_path: Path
) -> None:
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PIPELINE)
    made = {
        project: platform.runs.runner(local_access(), project=project).run(spec).outputs["data"]["dataset"]
        for project in ("alpha", "beta")
    }
    assert made["alpha"]["dataset_version_id"] != made["beta"]["dataset_version_id"]
