"""Every read command's --json carries at least what its table shows: a program sees what a person sees.

For each command the test names, per table column, the JSON field it is read from. It fails when a table gains a
column this file does not know (so the JSON must be checked again), when the JSON lacks a field the table shows,
or when a value shown verbatim in the table is not the JSON's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aidc.cli.app import app
from aidc.platform import Platform
from aidc.report.sample_run import record_sample_runs

runner = CliRunner()
PIPELINE = Path(__file__).resolve().parents[2] / "examples" / "digits" / "pipeline.yaml"
JSON = Any


def aidc(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def tables(out: str) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Rich's tables in a command's output, each by the name of its first column: (header, body rows)."""
    found: dict[str, tuple[list[str], list[list[str]]]] = {}
    header: list[str] | None = None
    rows: list[list[str]] = []
    for line in out.splitlines():
        if line.startswith("┃") and header is None:
            header, rows = [c.strip() for c in line.strip("┃").split("┃")], []
        elif line.startswith("│") and header is not None:
            rows.append([c.strip() for c in line.strip("│").split("│")])
        elif line.startswith("└") and header is not None:
            found[header[0]] = (header, rows)
            header = None
    return found


def check(out: str, data: JSON, shown: dict[str, dict[str, str]], items: Callable[[str, JSON], list[JSON]]) -> None:
    """``shown``: each table (by its first column) → {column: the JSON field it shows}; ``items(first, data)``: the
    JSON objects its rows show."""
    found = tables(out)
    assert set(found) == set(shown), f"tables {sorted(found)}, known {sorted(shown)}:\n{out}"
    for first, (header, rows) in found.items():
        assert set(header) == set(shown[first]), f"{first!r} table: columns {header}, known {list(shown[first])}"
        objects = items(first, data)
        assert len(objects) >= 1, f"{first!r} table: the JSON has nothing to show"
        for obj in objects:
            missing = {column for column, field in shown[first].items() if field not in obj}
            assert not missing, f"{first!r} table: the JSON lacks what columns {missing} show: {sorted(obj)}"
        verbatim = {str(obj[shown[first][first]]) for obj in objects}
        in_table = {row[0] for row in rows if row[0]}
        assert in_table <= verbatim, f"{first!r} table: {in_table - verbatim} is not in the JSON"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store with what every read command lists: runs, a model, a dataset, a deployment record, a job, a quota,
    a token, a second principal, a project and the audit entries those changes left."""
    home = tmp_path_factory.mktemp("aidc-home")
    with pytest.MonkeyPatch.context() as mp:
        _use(mp, home)
        platform = Platform()
        try:
            record_sample_runs(platform.metadata)
        finally:
            platform.close()
        aidc("users", "create", "robin")
        aidc("projects", "create", "vision")
        aidc("tokens", "create", "laptop", "--user", "robin")
        aidc("jobs", "submit", str(PIPELINE), "--project", "vision")
        aidc("quotas", "set", "vision", "--max-gpus", "2", "--max-jobs", "1")
    return home


def _use(mp: pytest.MonkeyPatch, home: Path) -> None:
    mp.setenv("AIDC_HOME", str(home))
    for var in ("AIDC_METADATA_URL", "AIDC_ARTIFACT_URL", "AIDC_RAY_ADDRESS", "AIDC_SERVER"):
        mp.delenv(var, raising=False)
    mp.setenv("COLUMNS", "250")  # wide enough that Rich folds no cell


@pytest.fixture(autouse=True)
def _home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, home)


def both(*args: str) -> tuple[str, JSON]:
    return aidc(*args), json.loads(aidc(*args, "--json"))


def rows_of(title: str, data: JSON) -> list[JSON]:
    return data


def test_runs_list() -> None:
    out, data = both("runs", "list")
    shown = {
        "run": {
            "run": "id",
            "pipeline": "pipeline",
            "status": "status",
            "created": "created_at",
            "duration": "seconds",
            "report": "report_path",
        }
    }
    check(out, data, shown, rows_of)


def test_runs_show_carries_the_key_metrics_and_stages_its_tables_show() -> None:
    run_id = json.loads(aidc("runs", "list", "--status", "succeeded", "--json"))[0]["id"]
    out, data = both("runs", "show", run_id)
    shown = {
        "stage": {
            "stage": "name",
            "kind": "kind",
            "status": "status",
            "cached from": "cached_from",
            "seconds": "seconds",
            "error": "error",
        },
        "metric": {"metric": "name", "value": "value"},
    }
    key_metrics = [{"name": k, "value": v} for k, v in data["key_metrics"].items()]
    check(out, data, shown, lambda title, d: d["stages"] if title == "stage" else key_metrics)
    metric_rows = dict(tables(out)["metric"][1])
    assert "test_accuracy" in metric_rows and "test_macro_f1" in metric_rows
    for name, value in metric_rows.items():
        assert f"{data['key_metrics'][name]:.4g}" == value


def test_models_list() -> None:
    out, data = both("models", "list")
    shown = {
        "model": {
            "model": "name",
            "version": "version",
            "stage": "stage",
            "accuracy": "metrics",
            "macro F1": "metrics",
            "run": "run_id",
            "created": "created_at",
        }
    }
    check(out, data, shown, rows_of)
    assert {"accuracy", "macro_f1"} <= set(data[0]["metrics"])


def test_models_show() -> None:
    out, data = both("models", "show", "digits-cnn:1")
    model = data["model"]
    fields = {"run": "run_id", "onnx": "onnx_digest", "checkpoint": "checkpoint_digest"}
    shown = {
        "field": {"field": "field", "value": "value"},
        "id": {"id": "id", "name": "name", "url": "url", "status": "status", "created": "created_at"},
    }
    field_rows = [{"field": f, "value": model[k]} for f, k in fields.items()] + [
        {"field": k, "value": v} for k, v in model["metrics"].items() if isinstance(v, int | float)
    ]
    check(out, data, shown, lambda title, d: d["deployments"] if title == "id" else field_rows)
    for field, value in tables(out)["field"][1]:
        assert field in fields or field in model["metrics"]


def test_datasets_list() -> None:
    out, data = both("datasets", "list")
    shown = {
        "dataset": {
            "dataset": "dataset",
            "version": "version",
            "train": "stats",
            "val": "stats",
            "test": "stats",
            "classes": "schema",
            "fingerprint": "fingerprint",
            "run": "run_id",
            "created": "created_at",
        }
    }
    check(out, data, shown, rows_of)
    assert set(data[0]["stats"]["splits"]) == {"train", "val", "test"}


def test_deployments_list_and_show() -> None:
    out, data = both("deployments", "list", "--all")
    shown = {
        "name": {
            "name": "name",
            "status": "status",
            "stable": "stable",
            "canary": "canary",
            "ready": "ready",
            "url": "url",
        }
    }
    check(out, data, shown, rows_of)
    assert {"canary_percent", "replicas", "live"} <= set(data[0])

    out, shown_data = both("deployments", "show", data[0]["name"])
    assert shown_data["name"] == data[0]["name"] and shown_data["url"] in out
    events = tables(out)["when"]
    assert events[0] == ["when", "event", "what"]
    assert len(events[1]) <= len(shown_data["events"])
    assert all({"created_at", "kind", "message"} <= set(e) for e in shown_data["events"])


def test_jobs_list_and_show() -> None:
    out, data = both("jobs", "list")
    shown = {
        "job": {
            "job": "id",
            "project": "project",
            "pipeline": "pipeline",
            "state": "state",
            "prio": "priority",
            "resources": "cpus",
            "run": "run_id",
            "submitted": "created_at",
            "note": "reason",
        }
    }
    check(out, data, shown, rows_of)
    assert {"cpus", "gpus", "workers"} <= set(data[0])

    out, job = both("jobs", "show", data[0]["id"])
    fields = ["state", "project", "submitter", "pipeline", "path_name", "priority", "attempts", "run_id"]
    fields += ["created_at", "started_at", "finished_at", "reason", "last_error"]
    assert set(fields) <= set(job)
    assert f"job {job['id']}" in out


def test_quotas_show() -> None:
    out, data = both("quotas", "show")
    shown = {
        "project": {
            "project": "project",
            "GPUs": "max_gpus",
            "CPUs": "max_cpus",
            "jobs running": "max_jobs",
            "GPU-h used/month": "gpu_hours_per_month",
        }
    }
    check(out, data, shown, rows_of)
    for q in data:
        assert {"gpus_in_use", "cpus_in_use", "running_jobs", "gpu_hours_this_month"} <= set(q)
    vision = next(q for q in data if q["project"] == "vision")
    assert (vision["max_gpus"], vision["max_jobs"]) == (2, 1)


def test_tokens_list() -> None:
    out, data = both("tokens", "list")
    shown = {
        "id": {
            "id": "id",
            "owner": "principal",
            "name": "name",
            "scopes": "scopes",
            "state": "revoked_at",
            "expires": "expires_at",
            "last used": "last_used_at",
            "created": "created_at",
        }
    }
    check(out, data, shown, rows_of)
    assert "token" not in data[0]  # the secret is shown once, at creation, never listed


def test_users_list() -> None:
    out, data = both("users", "list")
    shown = {
        "name": {
            "name": "name",
            "kind": "kind",
            "roles": "roles",
            "state": "disabled",
            "created": "created_at",
        }
    }
    check(out, data, shown, rows_of)
    assert "robin" in {p["name"] for p in data}


def test_projects_list() -> None:
    out, data = both("projects", "list")
    shown = {"name": {"name": "name", "description": "description", "created": "created_at"}}
    check(out, data, shown, rows_of)
    assert "vision" in {p["name"] for p in data}


def test_audit_list() -> None:
    out, data = both("audit", "list")
    shown = {
        "seq": {
            "seq": "seq",
            "when": "at",
            "actor": "actor",
            "action": "action",
            "target": "target",
            "project": "project",
            "from": "source",
            "result": "result",
        }
    }
    check(out, data, shown, rows_of)


def test_keys_status() -> None:
    out, data = both("keys", "status")
    assert {"encryption", "artifact_store", "key_file", "encrypted", "plaintext"} <= set(data)
    assert f"{data['encrypted']} encrypted, {data['plaintext']} plaintext artifacts" in out
    (header, rows) = tables(out)["key id"]
    assert header == ["key id", "state", "from", "artifacts"]
    keys = {k["key_id"]: k for k in data["keys"] + data["unknown_keys"]}
    assert {row[0] for row in rows} <= set(keys)
    assert all({"key_id", "artifacts"} <= set(k) for k in keys.values())


def test_doctor() -> None:
    result = runner.invoke(app, ["doctor"])
    checks = json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)
    shown = {"check": {"check": "name", "status": "status", "detail": "detail"}}
    check(result.stdout, checks, shown, rows_of)
    assert all("hint" in c for c in checks)  # what the table prints under it for a check that is not ok
