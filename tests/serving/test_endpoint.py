"""A real server process started by start_endpoint, called by an unchanged standard OIP v2 client (tritonclient)."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aidc.errors import BackendUnavailable, InvalidInput
from aidc.serving.endpoint import EndpointClient, EndpointProcess, start_endpoint, stop_endpoint

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture(scope="module")
def endpoint(onnx_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EndpointProcess]:
    log = tmp_path_factory.mktemp("endpoint") / "server.log"
    ep = start_endpoint(onnx_path, "digits", "1", log_path=log)
    yield ep
    ep.stop()


@pytest.fixture
def triton(endpoint: EndpointProcess):
    client = httpclient.InferenceServerClient(url=endpoint.url.removeprefix("http://"))
    yield client
    client.close()


def test_tritonclient_sees_a_live_server_and_model(triton) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready("digits")
    assert triton.get_server_metadata()["name"] == "aidc"
    meta = triton.get_model_metadata("digits")
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_infer_matches_onnxruntime(triton, batch: np.ndarray, reference, binary: bool) -> None:
    tensor = httpclient.InferInput("input", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=binary)
    outputs = [
        httpclient.InferRequestedOutput("probs", binary_data=binary),
        httpclient.InferRequestedOutput("logits", binary_data=binary),
    ]
    result = triton.infer("digits", [tensor], outputs=outputs, request_id="abc")
    assert result.get_response()["id"] == "abc"
    expected = reference(batch)
    np.testing.assert_allclose(result.as_numpy("probs"), expected["probs"], rtol=1e-6)
    np.testing.assert_allclose(result.as_numpy("logits"), expected["logits"], rtol=1e-6)


def test_tritonclient_default_outputs_come_back_binary(triton, batch: np.ndarray, reference) -> None:
    tensor = httpclient.InferInput("input", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch)
    result = triton.infer("digits", [tensor], model_version="1")
    np.testing.assert_allclose(result.as_numpy("probs"), reference(batch)["probs"], rtol=1e-6)


def test_tritonclient_reports_our_validation_message(triton) -> None:
    tensor = httpclient.InferInput("input", [1, 5], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 5), np.float32))
    with pytest.raises(InferenceServerException, match=r"has shape \[1, 5\] but model 'digits' expects"):
        triton.infer("digits", [tensor])


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_endpoint_client(endpoint: EndpointProcess, batch: np.ndarray, reference, binary: bool) -> None:
    with EndpointClient(endpoint.url) as client:
        assert client.ready()
        assert client.metadata("digits")["platform"] == "onnxruntime_onnx"
        got = client.infer("digits", batch, binary=binary)
        np.testing.assert_allclose(got, reference(batch)["logits"], rtol=1e-6)
        with pytest.raises(InvalidInput, match="is FP64 but model 'digits' expects FP32"):
            client.infer("digits", batch.astype(np.float64))


def test_endpoint_process_is_plain_data(endpoint: EndpointProcess) -> None:
    assert pickle.loads(pickle.dumps(endpoint)) == endpoint
    assert EndpointProcess.from_dict(endpoint.to_dict()) == endpoint


def test_stop_terminates_the_server(onnx_path: Path, tmp_path: Path) -> None:
    ep = start_endpoint(onnx_path, "digits", log_path=tmp_path / "server.log")
    assert ep.alive()
    assert ep.stop(timeout=120)
    assert not ep.alive()
    assert not EndpointClient(ep.url, timeout=2).ready()
    log = (tmp_path / "server.log").read_text()
    assert "serving OIP v2" in log and log.rstrip().endswith("stopped")  # graceful, not killed
    assert not stop_endpoint(ep.pid)  # stopping twice is harmless


def test_stop_by_pid_from_a_record(onnx_path: Path, tmp_path: Path) -> None:
    record = start_endpoint(onnx_path, "digits", log_path=tmp_path / "server.log").to_dict()
    assert stop_endpoint(record["pid"])
    assert not EndpointProcess.from_dict(record).alive()


def test_a_server_that_cannot_start_names_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with pytest.raises(BackendUnavailable) as info:
        start_endpoint(tmp_path / "missing.onnx", "digits", log_path=log)
    assert str(log) in info.value.message and "does not exist" in info.value.message


def test_listening_socket_gets_tcp_nodelay_connections() -> None:
    # asyncio turns on TCP_NODELAY only for IPPROTO_TCP sockets; a proto-0 socket made every response
    # wait ~40 ms for a delayed ACK.
    import socket

    from aidc.serving.server import bind

    sock = bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
