"""The OIP v2 REST surface, in process: metadata, JSON and binary infer, and the errors users meet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aidc.serving.app import create_app
from aidc.serving.model import OnnxModel
from aidc.serving.protocol import HEADER_LENGTH, decode_infer_response, encode_infer_request


@pytest.fixture(scope="module")
def model(onnx_path: Path) -> OnnxModel:
    return OnnxModel(onnx_path, "digits", "2")


@pytest.fixture
def client(model: OnnxModel) -> Iterator[TestClient]:
    with TestClient(create_app([model], max_body_bytes=4096)) as c:
        yield c


def test_import_of_package_stays_light() -> None:
    import subprocess
    import sys

    code = "import sys, aidc.serving; print('onnxruntime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_health_and_server_metadata(client: TestClient) -> None:
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2").json()
    assert meta["name"] == "aidc" and "binary_tensor_data" in meta["extensions"]


def test_model_metadata_uses_oip_types_and_dynamic_axes(client: TestClient) -> None:
    meta = client.get("/v2/models/digits").json()
    assert meta == {
        "name": "digits",
        "versions": ["2"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "logits", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "probs", "datatype": "FP32", "shape": [-1, 3]},
        ],
        "parameters": {"execution_providers": ["CPUExecutionProvider"]},  # no GPU on the test hosts
    }
    assert client.get("/v2/models/digits/versions/2").json()["versions"] == ["2"]
    assert client.get("/v2/models/digits/ready").status_code == 200
    assert client.get("/v2/models/digits/versions/2/ready").status_code == 200


def test_json_infer_matches_onnxruntime(client: TestClient, batch: np.ndarray, reference) -> None:
    body = {
        "id": "req-7",
        "inputs": [
            {"name": "input", "datatype": "FP32", "shape": list(batch.shape), "data": batch.reshape(-1).tolist()}
        ],
    }
    response = client.post("/v2/models/digits/infer", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == "req-7" and answer["model_name"] == "digits" and answer["model_version"] == "2"
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["probs"]["shape"] == [5, 3] and outputs["probs"]["datatype"] == "FP32"
    expected = reference(batch)
    for name in ("logits", "probs"):
        got = np.asarray(outputs[name]["data"], dtype=np.float32).reshape(5, 3)
        np.testing.assert_allclose(got, expected[name], rtol=1e-6)


def test_nested_data_and_requested_outputs(client: TestClient, batch: np.ndarray, reference) -> None:
    body = {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [5, 4], "data": batch.tolist()}],
        "outputs": [{"name": "probs"}],
    }
    answer = client.post("/v2/models/digits/versions/2/infer", json=body).json()
    assert [o["name"] for o in answer["outputs"]] == ["probs"]
    np.testing.assert_allclose(
        np.asarray(answer["outputs"][0]["data"]).reshape(5, 3), reference(batch)["probs"], rtol=1e-6
    )


def test_binary_request_and_response(client: TestClient, batch: np.ndarray, reference) -> None:
    body, headers = encode_infer_request({"input": batch}, binary=True, outputs=["probs", "logits"], binary_output=True)
    response = client.post("/v2/models/digits/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert HEADER_LENGTH in response.headers
    outputs = decode_infer_response(response.content, response.headers[HEADER_LENGTH])
    assert list(outputs) == ["probs", "logits"]
    np.testing.assert_allclose(outputs["probs"], reference(batch)["probs"], rtol=1e-6)


def test_binary_output_can_be_asked_for_per_output(client: TestClient, batch: np.ndarray) -> None:
    body = {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [5, 4], "data": batch.tolist()}],
        "outputs": [{"name": "probs", "parameters": {"binary_data": True}}, {"name": "logits"}],
    }
    response = client.post("/v2/models/digits/infer", json=body)
    header = json.loads(response.content[: int(response.headers[HEADER_LENGTH])])
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 5 * 3 * 4}
    assert "data" in header["outputs"][1]


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (
            {"name": "pixels", "datatype": "FP32", "shape": [1, 4], "data": [0, 0, 0, 0]},
            "model 'digits' has no input named 'pixels'; its inputs are: input",
        ),
        (
            {"name": "input", "datatype": "FP32", "shape": [1, 5], "data": [0] * 5},
            "input 'input' has shape [1, 5] but model 'digits' expects [-1, 4]",
        ),
        (
            {"name": "input", "datatype": "FP64", "shape": [1, 4], "data": [0] * 4},
            "input 'input' is FP64 but model 'digits' expects FP32",
        ),
        (
            {"name": "input", "datatype": "FP32", "shape": [2, 4], "data": [0] * 6},
            "input 'input': data has 6 elements but shape [2, 4] needs 8",
        ),
        (
            {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": ["a", "b", "c", "d"]},
            "input 'input': data is not a rectangular list of FP32 values",
        ),
        (
            {"name": "input", "datatype": "FLOAT", "shape": [1, 4], "data": [0] * 4},
            "input 'input': datatype 'FLOAT' is not an OIP v2 datatype",
        ),
    ],
)
def test_bad_inputs_are_400_with_a_precise_message(client: TestClient, tensor: dict, message: str) -> None:
    response = client.post("/v2/models/digits/infer", json={"inputs": [tensor]})
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_bad_binary_framing_is_400(client: TestClient) -> None:
    head = json.dumps(
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": 12}}]}
    ).encode()
    response = client.post(
        "/v2/models/digits/infer", content=head + b"\0" * 12, headers={HEADER_LENGTH: str(len(head))}
    )
    assert response.status_code == 400
    assert "binary_data_size is 12 bytes but shape [1, 4] of FP32 needs 16" in response.json()["error"]
    assert client.post("/v2/models/digits/infer", content=b"not json").status_code == 400


def test_unknown_model_or_version_is_404(client: TestClient) -> None:
    for path in ("/v2/models/nope", "/v2/models/digits/versions/9", "/v2/models/nope/ready"):
        response = client.get(path)
        assert response.status_code == 404 and "error" in response.json()
    response = client.post("/v2/models/nope/infer", json={"inputs": []})
    assert response.status_code == 404 and "'nope' is not served here" in response.json()["error"]


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    rows = np.zeros((400, 4), dtype=np.float32)  # ≈ 6.4 kB of JSON
    body, headers = encode_infer_request({"input": rows})
    response = client.post("/v2/models/digits/infer", content=body, headers=headers)
    assert response.status_code == 413 and "at most 4096" in response.json()["error"]


def test_metrics_count_requests_errors_and_latency(client: TestClient, batch: np.ndarray) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    body, headers = encode_infer_request({"input": batch})
    for _ in range(3):
        client.post("/v2/models/digits/infer", content=body, headers=headers)
    client.post("/v2/models/digits/infer", json={"inputs": []})
    samples = {
        (s.name, s.labels.get("status")): s.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
        if s.labels.get("model") == "digits" and s.labels.get("version") == "2"
    }
    assert samples[("aidc_serving_requests_total", None)] == 4
    assert samples[("aidc_serving_errors_total", "400")] == 1
    assert samples[("aidc_serving_request_duration_seconds_count", None)] == 3
    assert samples[("aidc_serving_batch_size_sum", None)] == 15
    assert ("aidc_serving_queue_depth", None) in samples


def test_two_apps_in_one_process_keep_separate_metrics(model: OnnxModel) -> None:
    with TestClient(create_app([model])) as a, TestClient(create_app([model])) as b:
        a.post("/v2/models/digits/infer", json={"inputs": []})
        assert "aidc_serving_errors_total" in a.get("/metrics").text
        assert 'status="400"' not in b.get("/metrics").text


@pytest.mark.parametrize(
    ("available", "visible", "chosen"),
    [
        (["CPUExecutionProvider"], None, ["CPUExecutionProvider"]),
        (["CUDAExecutionProvider", "CPUExecutionProvider"], None, ["CUDAExecutionProvider", "CPUExecutionProvider"]),
        (
            ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
            "0",
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
        ),
        (["CUDAExecutionProvider", "CPUExecutionProvider"], "", ["CPUExecutionProvider"]),  # a replica with no GPU
        (["CUDAExecutionProvider", "CPUExecutionProvider"], "-1", ["CPUExecutionProvider"]),
    ],
)
def test_cuda_is_chosen_only_when_onnxruntime_has_it_and_a_gpu_is_visible(available, visible, chosen) -> None:
    # No GPU on the test hosts: the provider list ONNX Runtime would report is injected.
    from aidc.serving.model import choose_providers

    assert choose_providers(available, visible) == chosen


def test_a_session_that_cannot_start_cuda_serves_on_the_cpu(onnx_path: Path) -> None:
    # Asking for CUDA where this ONNX Runtime has none (or no driver) must not break loading: ONNX Runtime
    # drops the provider, and the model says where it really runs.
    model = OnnxModel(onnx_path, "digits", providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert model.providers == ["CPUExecutionProvider"]
    assert model.metadata()["parameters"] == {"execution_providers": ["CPUExecutionProvider"]}
    assert model.infer({"input": np.zeros((1, 4), np.float32)})["probs"].shape == (1, 3)
