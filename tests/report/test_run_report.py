"""The run report as a reader gets it: one self-contained HTML file that shows what the run did, or why it stopped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aidc.errors import NotFound
from aidc.report.run_report import write_run_report
from aidc.report.sample_run import SPEC, confusion_matrix, record_failed_run, record_sample_runs, record_succeeded_run
from aidc.store.metadata import MetadataStore, open_metadata_store

STAGES = ("data", "train", "evaluate", "export", "register", "deploy")


@pytest.fixture()
def store(aidc_home: Path) -> Iterator[MetadataStore]:
    s = open_metadata_store(f"sqlite:///{aidc_home / 'aidc.db'}")
    yield s
    s.close()


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The reports of a succeeded and a failed run, rendered once for the tests that only read them."""
    home = tmp_path_factory.mktemp("aidc-home")
    store = open_metadata_store(f"sqlite:///{home / 'aidc.db'}")
    try:
        ok, failed = record_sample_runs(store)
        ok_path = write_run_report(store, ok, home / "nested" / "report.html")
        failed_path = write_run_report(store, failed, home / "failed.html")
    finally:
        store.close()
    return {
        "ok": ok,
        "ok_path": ok_path,
        "ok_html": ok_path.read_text(encoding="utf-8"),
        "failed_html": failed_path.read_text(encoding="utf-8"),
    }


def _external_refs(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html, flags=re.IGNORECASE)


def test_succeeded_run_is_one_self_contained_page_with_every_section(reports: dict[str, Any]) -> None:
    ok, path, html = reports["ok"], reports["ok_path"], reports["ok_html"]

    assert path.name == "report.html" and list(path.parent.iterdir()) == [path]
    assert not _external_refs(html) and "<script" not in html and "<link" not in html
    assert html.count("<svg") >= 4  # timeline, loss, accuracy, confusion matrix (+ class balance)
    assert ok in html and "succeeded" in html
    for name in STAGES:
        assert f"<b>{name}</b>" in html
    # every count of the confusion matrix is drawn as text in its heat map
    svg = html[html.index("Confusion matrix") :]
    svg = svg[: svg.index("</svg>")]
    cells = [int(t) for t in re.findall(r">\s*(\d+)\s*</text>", svg)]
    for count in {c for row in confusion_matrix() for c in row}:
        assert count in cells
    assert "0.9861" in html and "macro_f1" in html  # evaluation summary
    assert "1440" in html and "pixel_mean" in html  # dataset stats
    assert "min_accuracy: 0.9" in html  # the pipeline spec, as YAML
    assert "agreement with offline evaluation" in html and "http://127.0.0.1:8765" in html


def test_lineage_is_listed_from_model_version_back_to_dataset(reports: dict[str, Any]) -> None:
    html = reports["ok_html"]
    lineage = html[html.index('<ul class="lineage">') :]
    order = [
        lineage.index(f'<span class="kind">{kind}</span>')
        for kind in ("model_version", "onnx", "checkpoint", "run", "dataset_version")
    ]
    assert order == sorted(order)
    assert "digits-cnn:1" in lineage and "digits:1" in lineage


def test_failed_run_shows_its_error_and_renders_without_evaluation(reports: dict[str, Any]) -> None:
    html = reports["failed_html"]

    assert "failed" in html and "in stage train" in html
    assert "mat1 and mat2 shapes cannot be multiplied" in html and "train.log" in html
    assert "Confusion matrix" not in html and "no evaluation" in html
    assert "No model version was registered" in html and "not deployed" in html
    assert "cached" in html  # the reused data stage is marked in the stage table and timeline
    assert not _external_refs(html)


def test_cached_rerun_shows_the_curves_and_model_it_reused(store: MetadataStore, tmp_path: Path) -> None:
    ok = record_succeeded_run(store)
    first = {s.name: s for s in store.list_stages(ok)}
    store.create_run("rerun", "digits", SPEC, None)
    for name in ("train", "register"):
        st = store.start_stage("rerun", name, name, cache_key=first[name].cache_key, log_path=None)
        store.finish_stage(st.id, "cached", outputs=first[name].outputs, cached_from=first[name].id)
    store.finish_run("rerun", "succeeded")
    html = write_run_report(store, "rerun", tmp_path / "rerun.html").read_text(encoding="utf-8")
    assert f"curves are from run {ok}" in html and "No training metrics" not in html
    assert "digits-cnn:1" in html and "reused it from cache" in html


def test_run_with_nothing_recorded_still_renders(store: MetadataStore, tmp_path: Path) -> None:
    store.create_run("empty-run", "digits", {}, None)
    html = write_run_report(store, "empty-run", tmp_path / "e.html").read_text(encoding="utf-8")
    assert "empty-run" in html and "recorded no stages" in html and "No training metrics" in html


def test_failed_run_without_dataset_output_renders(store: MetadataStore, tmp_path: Path) -> None:
    run_id = record_failed_run(store, dataset_version_id=None)
    html = write_run_report(store, run_id, tmp_path / "f.html").read_text(encoding="utf-8")
    assert "No dataset version was registered" in html


def test_unknown_run_is_not_found(store: MetadataStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        write_run_report(store, "no-such-run", tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()
