"""`aidc runs|models|datasets` as a user runs them against a store holding one good and one failed digits run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aidc.cli.app import app
from aidc.platform import Platform
from aidc.report.sample_run import record_sample_runs

runner = CliRunner()
STAGES = ("data", "train", "evaluate", "export", "register", "deploy")


def _use_home(mp: pytest.MonkeyPatch, home: Path) -> None:
    """What the aidc_home fixture does, for a home shared by the read-only tests of this module."""
    mp.setenv("AIDC_HOME", str(home))
    for var in ("AIDC_METADATA_URL", "AIDC_ARTIFACT_URL", "AIDC_RAY_ADDRESS"):
        mp.delenv(var, raising=False)
    mp.setenv("COLUMNS", "200")  # wide enough that Rich does not fold ids and digests


def _record(home: Path, mp: pytest.MonkeyPatch) -> tuple[str, str]:
    _use_home(mp, home)
    platform = Platform()
    try:
        return record_sample_runs(platform.metadata)
    finally:
        platform.close()


@pytest.fixture(scope="module")
def recorded_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """One store (opening one costs its migrations) holding a succeeded and a failed run, shared by readers."""
    home = tmp_path_factory.mktemp("aidc-home")
    with pytest.MonkeyPatch.context() as mp:
        return (home, *_record(home, mp))


@pytest.fixture()
def runs(recorded_home: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """(succeeded run id, failed run id), in the store that Platform() opens under AIDC_HOME."""
    home, ok, failed = recorded_home
    _use_home(monkeypatch, home)
    return ok, failed


def aidc(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def test_runs_list_shows_both_runs_newest_first(runs: tuple[str, str]) -> None:
    ok, failed = runs
    code, out = aidc("runs", "list")
    assert code == 0, out
    assert ok in out and failed in out and "succeeded" in out and "failed" in out
    assert out.index(failed) < out.index(ok)


def test_runs_list_filters_and_json(runs: tuple[str, str]) -> None:
    ok, failed = runs
    code, out = aidc("runs", "list", "--status", "failed", "--json")
    assert code == 0
    data = json.loads(out)
    assert [r["id"] for r in data] == [failed]
    assert {"id", "pipeline", "status", "created_at", "finished_at", "report_path", "error", "seconds"} <= set(data[0])
    assert json.loads(aidc("runs", "list", "--pipeline", "other", "--json")[1]) == []
    assert len(json.loads(aidc("runs", "list", "--limit", "1", "--json")[1])) == 1
    code, out = aidc("runs", "list", "--status", "done")
    assert code == 2 and "unknown run status 'done'" in out and "succeeded" in out


def test_runs_show_stages_metrics_and_short_id(runs: tuple[str, str]) -> None:
    ok, _ = runs
    code, out = aidc("runs", "show", ok[:12])  # a unique prefix is enough
    assert code == 0, out
    assert ok in out
    positions = [out.index(f"│ {name} ") for name in STAGES]
    assert positions == sorted(positions)
    assert "val_accuracy" in out and "0.97" in out  # last epoch's value
    assert "test_accuracy" in out and "0.9861" in out


def test_runs_show_failed_run_says_stage_cause_and_log(runs: tuple[str, str]) -> None:
    _, failed = runs
    code, out = aidc("runs", "show", failed)
    assert code == 0, out
    assert "error in stage train" in out and "mat1 and mat2 shapes cannot be multiplied" in out
    assert f"/tmp/aidc/{failed}/train.log" in out and "aidc run --resume" in out
    assert "cached" in out  # the data stage was reused


def test_runs_show_json(runs: tuple[str, str]) -> None:
    ok, failed = runs
    data = json.loads(aidc("runs", "show", ok, "--json")[1])
    assert data["run"]["id"] == ok and [s["name"] for s in data["stages"]] == list(STAGES)
    assert data["key_metrics"]["val_accuracy"] == pytest.approx(0.97)
    assert data["key_metrics"]["test_accuracy"] == pytest.approx(0.9861, abs=1e-4)  # as the table shows it
    assert "test_macro_f1" in data["key_metrics"]
    evaluate = next(s for s in data["stages"] if s["kind"] == "evaluate")
    assert evaluate["outputs"]["metrics"]["confusion_matrix"][5][9] == 2
    failed_data = json.loads(aidc("runs", "show", failed, "--json")[1])
    assert failed_data["run"]["error"]["stage"] == "train"


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "show", "no-such-run"),
        ("runs", "report", "no-such-run"),
        ("models", "show", "no-such-model"),
        ("models", "show", "digits-cnn:9"),
    ],
)
def test_unknown_names_exit_2_with_one_line(runs: tuple[str, str], args: tuple[str, ...]) -> None:
    code, out = aidc(*args)
    assert code == 2
    assert out.strip().startswith("error:") and len(out.strip().splitlines()) == 1


def test_runs_report_writes_html_and_records_its_path(
    aidc_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ok, _ = _record(aidc_home, monkeypatch)
    code, out = aidc("runs", "report", ok[:12])
    assert code == 0, out
    default = aidc_home / "runs" / ok / "report.html"
    assert out.strip() == str(default) and default.read_text().startswith("<!doctype html>")
    assert str(default) in aidc("runs", "show", ok)[1]

    custom = tmp_path / "out" / "ok.html"
    assert aidc("runs", "report", ok, "--output", str(custom)) == (0, f"{custom}\n")
    assert "<svg" in custom.read_text()


def test_models_list_and_json(runs: tuple[str, str]) -> None:
    ok, _ = runs
    code, out = aidc("models", "list")
    assert code == 0
    assert "digits-cnn" in out and "staging" in out and "0.9861" in out and ok in out
    data = json.loads(aidc("models", "list", "digits-cnn", "--json")[1])
    assert [(m["name"], m["version"], m["stage"]) for m in data] == [("digits-cnn", 1, "staging")]
    assert json.loads(aidc("models", "list", "other", "--json")[1]) == []


def test_models_show_draws_the_lineage_chain_in_order(runs: tuple[str, str]) -> None:
    ok, _ = runs
    code, out = aidc("models", "show", "digits-cnn:1")
    assert code == 0, out
    drawn = out[out.index("model_version digits-cnn:1") :]  # (the energy part above names the run too)
    chain = [
        drawn.index(s)
        for s in (
            "model_version digits-cnn:1",
            "onnx sha256:eeeeeeeeeeee",
            "checkpoint sha256:cccccccccccc",
            f"run {ok}",
            "dataset_version digits:1",
        )
    ]
    assert chain == sorted(chain)
    assert "sha256:" + "e" * 64 in out  # the full ONNX digest
    assert "http://127.0.0.1:8765" in out  # its deployment


def test_models_show_json(runs: tuple[str, str]) -> None:
    data = json.loads(aidc("models", "show", "digits-cnn", "--json")[1])
    assert data["model"]["version"] == 1 and data["model"]["onnx_digest"] == "sha256:" + "e" * 64
    assert {(e["src_kind"], e["dst_kind"]) for e in data["lineage"]} == {
        ("onnx", "model_version"),
        ("checkpoint", "onnx"),
        ("run", "checkpoint"),
        ("dataset_version", "run"),
    }
    assert [d["url"] for d in data["deployments"]] == ["http://127.0.0.1:8765"]


def test_models_promote_to_production_archives_the_previous_one(
    aidc_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(aidc_home, monkeypatch)
    platform = Platform()
    platform.metadata.register_model_version(
        "digits-cnn", onnx_digest=None, checkpoint_digest=None, run_id=None, dataset_version_id=None, metrics={}
    )
    platform.close()
    assert aidc("models", "promote", "digits-cnn:1", "--stage", "production")[0] == 0
    code, out = aidc("models", "promote", "digits-cnn:2", "--stage", "production")
    assert code == 0, out
    assert "digits-cnn:2 → production" in out and "digits-cnn:1 → archived" in out
    stages = {m["version"]: m["stage"] for m in json.loads(aidc("models", "list", "--json")[1])}
    assert stages == {1: "archived", 2: "production"}


def test_models_promote_rejects_bad_input(runs: tuple[str, str]) -> None:
    assert aidc("models", "promote", "digits-cnn", "--stage", "production")[0] == 2  # no version
    assert aidc("models", "promote", "digits-cnn:1", "--stage", "nowhere")[0] == 2


def test_datasets_list_and_json(runs: tuple[str, str]) -> None:
    ok, _ = runs
    code, out = aidc("datasets", "list")
    assert code == 0
    assert "digits" in out and "1440" in out and "361" in out and "ffffffffffff" in out and ok in out
    data = json.loads(aidc("datasets", "list", "digits", "--json")[1])
    assert data[0]["stats"]["splits"] == {"train": 1440, "val": 356, "test": 361}
    assert data[0]["schema"]["label"]["classes"] == list(range(10))


def test_read_commands_on_an_empty_home(aidc_home: Path) -> None:
    for args in (("runs", "list"), ("models", "list"), ("datasets", "list")):
        code, out = aidc(*args, "--json")
        assert (code, json.loads(out)) == (0, [])
