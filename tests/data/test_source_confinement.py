"""A job's file sources are confined to its project's data folders: another project's files (or the host's) cannot be
read, and the refusal says nothing about them — not whether they exist, not what they hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aidc.data.sources import load_source
from aidc.errors import InvalidInput


@pytest.fixture
def areas(tmp_path: Path) -> tuple[Path, Path]:
    """Project alpha's data area, and beta's, which holds a file alpha must not read."""
    alpha, beta = tmp_path / "projects" / "alpha" / "data", tmp_path / "projects" / "beta" / "data"
    for area in (alpha, beta):
        area.mkdir(parents=True)
    np.savez(alpha / "mine.npz", images=np.zeros((4, 8, 8)), labels=np.arange(4))
    np.savez(beta / "secret.npz", patient_ids=np.arange(3), diagnosis=np.arange(3))
    return alpha, beta


def refusal(source: str, roots: tuple[str, ...]) -> str:
    with pytest.raises(InvalidInput) as caught:
        load_source(source, roots)
    return str(caught.value)


def test_a_file_in_the_projects_area_is_read_by_a_relative_name(areas: tuple[Path, Path]) -> None:
    alpha, _ = areas
    images, labels, _ = load_source("file:mine.npz", (str(alpha),))
    assert images.shape == (4, 8, 8) and list(labels) == [0, 1, 2, 3]


def test_another_projects_file_is_refused_exactly_like_a_missing_one(areas: tuple[Path, Path]) -> None:
    alpha, beta = areas
    roots = (str(alpha),)
    there = refusal(f"file:{beta / 'secret.npz'}", roots)
    absent = refusal(f"file:{beta / 'absent.npz'}", roots)
    assert "outside this project's data folders" in there
    assert there.replace("secret", "X") == absent.replace("absent", "X")  # nothing tells the two apart
    assert "patient_ids" not in there and "diagnosis" not in there


def test_climbing_out_with_dots_or_a_link_is_refused(areas: tuple[Path, Path]) -> None:
    alpha, beta = areas
    roots = (str(alpha),)
    assert "outside" in refusal("file:../../beta/data/secret.npz", roots)
    (alpha / "shortcut.npz").symlink_to(beta / "secret.npz")  # a link inside the area pointing out of it
    assert "outside" in refusal("file:shortcut.npz", roots)
    assert "outside" in refusal("file:/etc/passwd", roots)


def test_a_folder_an_admin_allowed_is_readable(areas: tuple[Path, Path], tmp_path: Path) -> None:
    alpha, _ = areas
    shared = tmp_path / "shared-datasets"
    shared.mkdir()
    np.savez(shared / "public.npz", images=np.ones((2, 8, 8)), labels=np.arange(2))
    images, _, _ = load_source(f"file:{shared / 'public.npz'}", (str(alpha), str(shared)))
    assert images.shape == (2, 8, 8)


def test_the_cli_on_ones_own_store_is_not_confined(areas: tuple[Path, Path]) -> None:
    _, beta = areas
    with pytest.raises(InvalidInput, match="lacks arrays"):  # read (it is the OS user's own file), then judged
        load_source(f"file:{beta / 'secret.npz'}", None)


def test_a_jobs_runner_is_confined_to_its_projects_folders(tmp_path: Path) -> None:
    from aidc.platform import Platform
    from aidc.security.roles import local_access
    from aidc.settings import Settings

    settings = Settings(home=tmp_path / "home", project_data_roots={"alpha": ["/data/alpha"]})
    platform = Platform(settings)
    try:
        job = platform.runs.runner(local_access(), project="alpha")
        assert job.data_roots == (str(settings.home / "projects" / "alpha" / "data"), "/data/alpha")
        assert platform.runs.runner(local_access()).data_roots is None  # `aidc run` on one's own machine
    finally:
        platform.close()


JOB_SPEC = """pipeline: confined
stages:
  - name: data
    uses: data
    with: {source: "%s", columns: {text: note, label: topic}, text: {tokenize: words, length: 8}}
"""


def test_a_jobs_run_reads_its_own_area_and_is_refused_another_projects_file(tmp_path: Path) -> None:
    """Through the runner a job uses (runs.runner(project=...), as cli/job_process builds it), the data stage itself
    refuses the other project's file, saying nothing of it, and reads a relative name in its own area."""
    from aidc.errors import UserCodeError
    from aidc.platform import Platform
    from aidc.security.roles import local_access
    from aidc.settings import Settings

    settings = Settings(home=tmp_path / "home", ray_num_cpus=2)
    rows = "note,topic\n" + "".join(f"note number {i} about {t},{t}\n" for i in range(30) for t in ("rain", "sun"))
    for project in ("alpha", "beta"):
        area = settings.home / "projects" / project / "data"
        area.mkdir(parents=True)
        (area / "notes.csv").write_text(rows)
    spec = tmp_path / "pipeline.yaml"
    platform = Platform(settings)
    try:
        spec.write_text(JOB_SPEC % (settings.home / "projects" / "beta" / "data" / "notes.csv"))
        with pytest.raises(UserCodeError) as caught:
            platform.runs.runner(local_access(), project="alpha").run(spec)
        assert "refused its input: dataset source" in caught.value.message
        assert "outside this project's data folders" in caught.value.message
        assert "note number" not in str(caught.value.to_dict())  # nothing of the file's content
        spec.write_text(JOB_SPEC % "notes.csv")  # a relative name: in alpha's own area
        result = platform.runs.runner(local_access(), project="alpha").run(spec)
        assert result.status == "succeeded"
        lineage = result.outputs["data"]["dataset"]
        version = platform.metadata.get_dataset_version(lineage["dataset_version_id"])
        assert version.stats["lineage"]["uri"] == str(settings.home / "projects" / "alpha" / "data" / "notes.csv")
    finally:
        platform.close()
