"""Every read command prints the same thing on the store itself and through `aidc server` on that store.

The store holds the sample digits runs (one succeeded, one failed, a model, a dataset, a deployment); each
command runs twice in-process, once on the store (no AIDC_SERVER) and once through a live `aidc server`
subprocess as its admin, and the outputs are compared: `--json` equal, tables equal line for line. Errors
give the same message and exit code both ways.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.api.conftest import LiveServer, start_server, stop
from typer.testing import CliRunner

from aidc.cli.app import app
from aidc.errors import PermissionDenied
from aidc.platform import Platform
from aidc.report.sample_run import record_sample_runs
from aidc.settings import Settings

runner = CliRunner()
OK, FAILED = "20250101-120000-a1b2c3", "20250101-130000-d4e5f6"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The sample runs in a fresh SQLite store, and `aidc server` on that same store."""
    home = tmp_path_factory.mktemp("parity") / "home"
    platform = Platform(Settings(home=home))
    record_sample_runs(platform.metadata)
    platform.close()
    proc, server = start_server(home, secrets.token_urlsafe(32))
    yield server
    stop(proc)


def _invoke(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    with monkeypatch.context() as mp:
        for var in ("AIDC_SERVER", "AIDC_TOKEN", "AIDC_METADATA_URL", "AIDC_ARTIFACT_URL"):
            mp.delenv(var, raising=False)
        mp.setenv("COLUMNS", "200")  # wide enough that Rich folds nothing
        for key, value in env.items():
            mp.setenv(key, value)
        result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stdout, result.stderr


def _local(served: LiveServer, mp: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    return _invoke(mp, {"AIDC_HOME": str(served.home)}, *args)


def _remote(
    served: LiveServer, mp: pytest.MonkeyPatch, tmp_path: Path, *args: str, token: str | None = None
) -> tuple[int, str, str]:
    env = {
        "AIDC_HOME": str(tmp_path / "client-home"),
        "AIDC_SERVER": served.url,
        "AIDC_TOKEN": token or served.admin_token,
    }
    return _invoke(mp, env, *args)


READS = [
    ("runs", "list"),
    ("runs", "list", "--status", "failed"),
    ("runs", "list", "--pipeline", "digits", "--limit", "1"),
    ("runs", "show", OK),
    ("runs", "show", FAILED[:12]),  # a unique prefix
    ("models", "list"),
    ("models", "list", "digits-cnn"),
    ("models", "show", "digits-cnn"),
    ("models", "show", "digits-cnn:1"),
    ("datasets", "list"),
    ("datasets", "list", "digits"),
    ("deployments", "list"),
    ("deployments", "list", "--all"),
]


@pytest.mark.parametrize("command", READS, ids=[" ".join(c) for c in READS])
def test_a_read_command_prints_the_same_locally_and_through_the_server(
    served: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: tuple[str, ...]
) -> None:
    local_code, local_json, _ = _local(served, monkeypatch, *command, "--json")
    remote_code, remote_json, _ = _remote(served, monkeypatch, tmp_path, *command, "--json")
    assert local_code == remote_code == 0, (local_json, remote_json)
    assert json.loads(remote_json) == json.loads(local_json)
    assert json.loads(local_json), "the sample store should give every command something to show"

    local_table = _local(served, monkeypatch, *command)[1]
    remote_table = _remote(served, monkeypatch, tmp_path, *command)[1]
    assert remote_table.splitlines() == local_table.splitlines()


def test_projects_show_in_the_json_both_ways(
    served: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runs = json.loads(_remote(served, monkeypatch, tmp_path, "runs", "list", "--json")[1])
    assert {r["project"] for r in runs} == {"default"} and {r["id"] for r in runs} == {OK, FAILED}


MISTAKES = [
    ("runs", "show", "nope"),
    ("runs", "report", "nope"),
    ("models", "show", "nope"),
    ("models", "show", "digits-cnn:9"),
    ("models", "promote", "nope:1", "--stage", "staging"),
    ("datasets", "list", "nope"),  # not an error: an empty list, both ways
    ("deployments", "show", "nope"),
    ("deployments", "scale", "nope", "2"),
    ("deployments", "promote", "nope"),
    ("deployments", "rollback", "nope"),
    ("deployments", "delete", "nope"),
    ("deploy", "nope:1"),
    ("predict", "nope", "--input", "x.npy"),
]


@pytest.mark.parametrize("command", MISTAKES, ids=[" ".join(c) for c in MISTAKES])
def test_a_mistake_gives_the_same_message_and_exit_code_both_ways(
    served: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: tuple[str, ...]
) -> None:
    local = _local(served, monkeypatch, *command)
    remote = _remote(served, monkeypatch, tmp_path, *command)
    assert remote[0] == local[0]
    assert remote[1:] == local[1:]
    if command[:2] != ("datasets", "list"):
        assert local[0] != 0 and "error:" in local[2]


def test_the_run_report_is_rendered_by_the_server_and_saved_here(
    served: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, _ = _remote(served, monkeypatch, tmp_path, "runs", "report", OK[:12])
    saved = Path(out.strip())
    assert code == 0 and saved == (tmp_path / "client-home" / "runs" / OK / "report.html").resolve()
    html = saved.read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and OK in html
    code, out, _ = _remote(served, monkeypatch, tmp_path, "runs", "report", OK, "-o", str(tmp_path / "r.html"))
    assert code == 0 and OK in (tmp_path / "r.html").read_text()  # (the report names when it was rendered)
    code, out, _ = _local(served, monkeypatch, "runs", "report", OK, "-o", str(tmp_path / "l.html"))
    assert code == 0 and OK in (tmp_path / "l.html").read_text()


def test_permission_denied_through_the_server_is_an_error_line_and_its_exit_code(
    served: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # (On the store itself the CLI is its administrator: there is no local counterpart to compare with.)
    admin = {"Authorization": f"Bearer {served.admin_token}"}
    httpx.post(f"{served.url}/api/v1/principals", headers=admin, json={"name": "vera"}).raise_for_status()
    httpx.post(
        f"{served.url}/api/v1/principals/vera/roles", headers=admin, json={"role": "viewer", "project": "default"}
    ).raise_for_status()
    token = httpx.post(f"{served.url}/api/v1/principals/vera/tokens", headers=admin, json={"name": "t"}).json()["token"]
    code, out, err = _remote(
        served, monkeypatch, tmp_path, "models", "promote", "digits-cnn:1", "--stage", "production", token=token
    )
    assert code == PermissionDenied.exit_code and out == ""
    assert err.startswith("error: vera may not models:promote") and token not in err
    code, out, _ = _remote(served, monkeypatch, tmp_path, "runs", "list", "--json", token=token)
    assert code == 0 and len(json.loads(out)) == 2  # what a viewer may do works


def test_doctor_through_the_server_checks_the_server_and_who_you_are(
    served: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, _ = _remote(served, monkeypatch, tmp_path, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(out)}
    assert code == 0 and checks["server"]["status"] == "ok" and served.url in checks["server"]["detail"]
    assert checks["identity"]["status"] == "ok" and checks["identity"]["detail"].startswith("admin (admin@*)")
    code, out, err = _remote(served, monkeypatch, tmp_path, "doctor", token="aidc_00000000_" + "C" * 43)
    assert code == 1 and "invalid, expired or revoked API token" in out


def test_aidc_run_with_a_server_points_at_job_submission(
    served: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, err = _remote(served, monkeypatch, tmp_path, "run", "examples/digits/pipeline.yaml")
    assert code == 2 and out == "" and "aidc jobs submit" in err and served.url in err


def test_predict_through_the_server_calls_the_deployment_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A served model (a pipeline's single endpoint: no Ray needed): predict, scale refused, delete — both ways."""
    import numpy as np
    from tests.cli.test_deployments import _classifier

    from aidc.serving.endpoint import start_endpoint

    home = tmp_path / "home"
    platform = Platform(Settings(home=home))
    onnx = _classifier(tmp_path / "tiny.onnx")
    version = platform.metadata.register_model_version(
        "tiny",
        onnx_digest=platform.artifacts.put_file(onnx).digest,
        checkpoint_digest=None,
        run_id=None,
        dataset_version_id=None,
        metrics={},
    )
    endpoint = start_endpoint(onnx, "tiny", "1", log_path=tmp_path / "endpoint.log")
    platform.metadata.add_deployment("tiny", version.id, endpoint.url, endpoint.pid)
    platform.close()
    proc, server = start_server(home, secrets.token_urlsafe(32))
    try:
        np.save(tmp_path / "x.npy", np.ones((2, 4), dtype=np.float32))
        asked = ("predict", "tiny", "--input", str(tmp_path / "x.npy"), "--json")
        local, remote = _local(server, monkeypatch, *asked), _remote(server, monkeypatch, tmp_path, *asked)
        assert local[0] == remote[0] == 0 and json.loads(remote[1]) == json.loads(local[1])
        assert json.loads(remote[1])["outputs"]["logits"]["shape"] == [2, 3]
        for command in (("deployments", "show", "tiny", "--json"), ("deployments", "list", "--json")):
            shown = _remote(server, monkeypatch, tmp_path, *command)
            assert json.loads(shown[1]) == json.loads(_local(server, monkeypatch, *command)[1])
        refused = [
            f(server, monkeypatch, *args)
            for f, args in (
                (_local, ("deployments", "scale", "tiny", "2")),
                (lambda s, m, *a: _remote(s, m, tmp_path, *a), ("deployments", "scale", "tiny", "2")),
            )
        ]
        assert refused[0] == refused[1] and refused[0][0] == 1 and "single endpoint" in refused[0][2]
        code, out, _ = _remote(server, monkeypatch, tmp_path, "deployments", "delete", "tiny")
        assert code == 0 and "deleted deployment tiny" in out and not endpoint.alive()
        assert _local(server, monkeypatch, "deployments", "list", "--json")[1].strip() == "[]"
    finally:
        stop(proc)
        if endpoint.alive():
            from aidc.serving.endpoint import stop_endpoint

            stop_endpoint(endpoint.pid)
