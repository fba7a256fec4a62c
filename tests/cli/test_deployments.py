"""`aidc deploy`, `aidc deployments …` and `aidc predict` as a user runs them: a deployment outlives the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.pace import HANG_S
from typer.testing import CliRunner

from aidc.cli.app import app
from aidc.platform import Platform

runner = CliRunner()
AIDC = str(Path(sys.executable).parent / "aidc")


def aidc(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def _classifier(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "weight"], ["logits"])],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(weight, "weight")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, path)
    return path


@pytest.fixture()
def registered(aidc_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with model 'tiny' version 1 (ONNX in the artifact store) and 'bare' version 1 (no ONNX)."""
    monkeypatch.setenv("COLUMNS", "200")
    platform = Platform()
    ref = platform.artifacts.put_file(_classifier(tmp_path / "tiny.onnx"))
    for name, digest in (("tiny", ref.digest), ("bare", None)):
        platform.metadata.register_model_version(
            name, onnx_digest=digest, checkpoint_digest=None, run_id=None, dataset_version_id=None, metrics={}
        )
    platform.close()
    return aidc_home


def test_mistakes_are_one_line_with_an_exit_code(registered: Path, tmp_path: Path) -> None:
    code, out = aidc("deploy", "nope:1")
    assert code == 2 and "no model version 'nope:1'" in out
    code, out = aidc("deploy", "bare")
    assert code == 2 and "bare:1 has no ONNX file" in out
    code, out = aidc("deploy", "tiny", "--canary", "10")
    assert code == 2 and "no deployment 'tiny' for a canary" in out
    for command in (
        ["deployments", "show", "tiny"],
        ["deployments", "scale", "tiny", "2"],
        ["deployments", "rollback", "tiny"],
        ["deployments", "delete", "tiny"],
    ):
        code, out = aidc(*command)
        assert code == 2 and "no deployment 'tiny'" in out and "aidc deployments list" in out
    code, out = aidc("predict", "tiny", "--input", str(tmp_path / "x.npy"))
    assert code == 2 and "no deployment 'tiny'" in out
    code, out = aidc("predict", "tiny", "--text", "def ")
    assert code == 2 and "no deployment 'tiny'" in out
    for both_or_neither in (["--text", "def ", "--input", str(tmp_path / "x.npy")], []):
        code, out = aidc("predict", "tiny", *both_or_neither)
        assert code == 2 and "either as a file (--input FILE) or as a prompt (--text PROMPT)" in out
    code, out = aidc("deployments", "list", "--json")
    assert code == 0 and json.loads(out) == []
    platform = Platform()  # every attempted change is in the audit chain, failed ones too
    audited = [(e.action, e.target, e.result) for e in platform.security.audit_list(action="deployments.deploy")]
    platform.close()
    assert ("deployments.deploy", "nope:1", "failed") in audited and len(audited) == 3


def test_a_pipelines_single_endpoint_is_listed_and_deleted_but_not_scaled(registered: Path, tmp_path: Path) -> None:
    from aidc.serving.endpoint import EndpointClient, start_endpoint

    platform = Platform()  # what the pipeline's deploy stage records: one server process, no controller
    version = platform.metadata.get_model_version("tiny")
    endpoint = start_endpoint(_classifier(tmp_path / "tiny.onnx"), "tiny", "1", log_path=tmp_path / "server.log")
    platform.metadata.add_deployment("tiny", version.id, endpoint.url, endpoint.pid)
    platform.close()
    code, out = aidc("deployments", "list", "--json")
    [listed] = json.loads(out)
    assert (listed["url"], listed["live"], listed["managed"]) == (endpoint.url, True, False)
    code, out = aidc("deployments", "scale", "tiny", "2")
    assert code == 1 and "single endpoint a pipeline run started" in out
    code, out = aidc("deployments", "delete", "tiny")
    assert code == 0 and not endpoint.alive() and not EndpointClient(endpoint.url, timeout=1).ready()


@pytest.mark.slow
def test_a_deployment_outlives_the_command_that_made_it(registered: Path, tmp_path: Path) -> None:
    env = {**os.environ, "AIDC_HOME": str(registered)}
    made = subprocess.run([AIDC, "deploy", "tiny", "--json"], env=env, capture_output=True, text=True, timeout=HANG_S)
    assert made.returncode == 0, made.stderr
    deployed = json.loads(made.stdout)
    assert (deployed["stable"], deployed["ready"], deployed["status"]) == ("tiny:1", 1, "running")
    try:
        # The deploying process is gone; the deployment (and the Ray head it started) is not.
        state = json.loads((registered / "serving" / "ray.json").read_text())
        assert ":6379" not in state["address"]
        code, out = aidc("deployments", "list", "--json")
        [listed] = json.loads(out)
        assert code == 0 and listed["live"] and listed["url"] == deployed["url"]
        code, out = aidc("deployments", "list")
        assert code == 0 and "tiny:1" in out and "1/1" in out

        x = np.ones((2, 4), dtype=np.float32)
        np.save(tmp_path / "x.npy", x)
        code, out = aidc("predict", "tiny", "--input", str(tmp_path / "x.npy"), "--json")
        assert code == 0, out
        answer = json.loads(out)
        assert answer["model_version"] == "1" and answer["outputs"]["logits"]["shape"] == [2, 3]
        expected = x @ (np.arange(12, dtype=np.float32).reshape(4, 3) / 10)
        np.testing.assert_allclose(np.reshape(answer["outputs"]["logits"]["data"], (2, 3)), expected, rtol=1e-6)
        (tmp_path / "x.json").write_text(json.dumps({"input": x.tolist()}))
        code, out = aidc("predict", "tiny", "--input", str(tmp_path / "x.json"))
        assert code == 0 and "tiny version 1" in out and "logits FP32 [2, 3]" in out

        code, out = aidc("deployments", "show", "tiny")
        assert code == 0 and "stable tiny:1: 1/1 replicas ready" in out and "created" in out
        code, out = aidc("deployments", "rollback", "tiny")
        assert code == 1 and "no canary and no earlier version" in out
    finally:
        gone = subprocess.run(
            [AIDC, "deployments", "delete", "tiny"], env=env, capture_output=True, text=True, timeout=HANG_S
        )
    assert gone.returncode == 0, gone.stderr
    assert not (registered / "serving" / "ray.json").exists()  # the last deployment took the Ray head with it
    code, out = aidc("deployments", "list", "--all", "--json")
    assert [d["status"] for d in json.loads(out)] == ["stopped"]
    platform = Platform()
    audited = [(e.action, e.result) for e in reversed(platform.security.audit_list()) if e.action.startswith("deploy")]
    platform.close()
    assert audited == [("deployments.deploy", "ok"), ("deployments.rollback", "failed"), ("deployments.delete", "ok")]


@pytest.mark.slow
def test_deploy_with_auth_prints_a_client_token_once_and_the_url_answers_only_with_it(registered: Path) -> None:
    import httpx

    env = {**os.environ, "AIDC_HOME": str(registered)}
    made = subprocess.run(
        [AIDC, "deploy", "tiny", "--auth", "--json"], env=env, capture_output=True, text=True, timeout=HANG_S
    )
    assert made.returncode == 0, made.stderr
    deployed = json.loads(made.stdout)
    try:
        token, url = deployed["token"], f"{deployed['url']}/v2/models/tiny"
        assert deployed["auth"] == "bearer" and len(token) >= 40
        assert httpx.get(url, timeout=HANG_S).status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=HANG_S).status_code == 200
        code, out = aidc("deployments", "show", "tiny", "--json")
        assert code == 0 and token not in out and json.loads(out)["auth"] == "bearer"  # shown once, never again
    finally:
        subprocess.run([AIDC, "deployments", "delete", "tiny"], env=env, capture_output=True, timeout=HANG_S)
