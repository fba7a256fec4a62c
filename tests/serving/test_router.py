"""The deployment router as a real process in front of real servers: one URL, traffic split by version, failover."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from aidc.serving.endpoint import EndpointClient, EndpointProcess, start_endpoint
from aidc.serving.protocol import encode_infer_request
from aidc.serving.router import RouterClient, start_router

TOKEN = "test-token"


@pytest.fixture(scope="module")
def servers(onnx_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, EndpointProcess]]:
    logs = tmp_path_factory.mktemp("replicas")
    started = {
        key: start_endpoint(onnx_path, "digits", version, log_path=logs / f"{key}.log")
        for key, version in (("1a", "1"), ("1b", "1"), ("2", "2"))
    }
    yield started
    for ep in started.values():
        ep.stop()


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EndpointProcess]:
    ep = start_router("digits", TOKEN, log_path=tmp_path_factory.mktemp("router") / "router.log")
    yield ep
    ep.stop()


@pytest.fixture
def admin(router: EndpointProcess) -> Iterator[RouterClient]:
    client = RouterClient(router.url, TOKEN)
    yield client
    client.set_routes([])
    client.close()


def _infer(http: httpx.Client, batch: np.ndarray, path: str = "/v2/models/digits/infer") -> httpx.Response:
    body, headers = encode_infer_request({"input": batch})
    return http.post(path, content=body, headers=headers)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_without_routes_it_is_live_but_not_ready(router: EndpointProcess, batch: np.ndarray) -> None:
    with httpx.Client(base_url=router.url) as http:
        assert http.get("/v2/health/live").status_code == 200
        assert http.get("/v2/health/ready").status_code == 503
        response = _infer(http, batch)
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert "has no replicas yet" in response.json()["error"]


def test_only_the_controller_may_set_routes(router: EndpointProcess) -> None:
    response = httpx.put(f"{router.url}/-/routes", json={"versions": []})
    assert response.status_code == 401


def test_traffic_is_split_by_weight_and_spread_over_replicas(
    router: EndpointProcess, admin: RouterClient, servers: dict[str, EndpointProcess], batch: np.ndarray, reference
) -> None:
    admin.set_routes(
        [
            {"version": "1", "weight": 75, "replicas": [servers["1a"].url, servers["1b"].url]},
            {"version": "2", "weight": 25, "replicas": [servers["2"].url]},
        ]
    )
    with httpx.Client(base_url=router.url) as http:
        assert http.get("/v2/health/ready").status_code == 200
        versions = Counter()
        for _ in range(200):
            response = _infer(http, batch)
            assert response.status_code == 200, response.text
            versions[response.json()["model_version"]] += 1
            out = {o["name"]: o for o in response.json()["outputs"]}["probs"]
            np.testing.assert_allclose(np.reshape(out["data"], (5, 3)), reference(batch)["probs"], rtol=1e-6)
        assert 25 <= versions["2"] <= 75, versions  # 50 expected; bounds are ~4 standard deviations
        stats = admin.stats()
        assert stats["1"]["requests"] == versions["1"] and stats["2"]["requests"] == versions["2"]
        assert stats["1"]["errors"] == 0 and stats["1"]["p95_ms"] > 0
        metrics = http.get("/metrics").text
    assert 'aidc_deployment_requests_total{deployment="digits",version="2"}' in metrics
    assert 'aidc_deployment_traffic_percent{deployment="digits",version="1"} 75.0' in metrics
    for key in ("1a", "1b", "2"):  # the replicas' own series come through, one label per replica
        assert f'replica="{servers[key].url}"' in metrics
    assert "aidc_serving_batch_size_bucket" in metrics and "aidc_serving_queue_depth" in metrics


def test_a_version_can_be_asked_for_by_path(
    router: EndpointProcess, admin: RouterClient, servers: dict[str, EndpointProcess], batch: np.ndarray
) -> None:
    admin.set_routes(
        [
            {"version": "1", "weight": 90, "replicas": [servers["1a"].url]},
            {"version": "2", "weight": 10, "replicas": [servers["2"].url]},
        ]
    )
    with httpx.Client(base_url=router.url) as http:
        for _ in range(10):
            assert _infer(http, batch, "/v2/models/digits/versions/2/infer").json()["model_version"] == "2"
        missing = _infer(http, batch, "/v2/models/digits/versions/9/infer")
        assert missing.status_code == 404 and "serves: 1, 2" in missing.json()["error"]
        # metadata without a version comes from the stable (heaviest) version
        assert http.get("/v2/models/digits").json()["versions"] == ["1"]


def test_a_replica_that_refuses_connections_is_skipped(
    router: EndpointProcess, admin: RouterClient, servers: dict[str, EndpointProcess], batch: np.ndarray
) -> None:
    admin.set_routes([{"version": "1", "weight": 100, "replicas": [_closed_port_url(), servers["1a"].url]}])
    with httpx.Client(base_url=router.url) as http:
        statuses = Counter(_infer(http, batch).status_code for _ in range(30))
    assert statuses == {200: 30}  # the refused requests never reached a replica, so they were sent again
    admin.set_routes([{"version": "1", "weight": 100, "replicas": [_closed_port_url()]}])
    with httpx.Client(base_url=router.url) as http:
        response = _infer(http, batch)
    assert response.status_code == 503 and "accepted the request" in response.json()["error"]


def test_an_unchanged_oip_client_works_through_the_router(
    router: EndpointProcess, admin: RouterClient, servers: dict[str, EndpointProcess], batch: np.ndarray, reference
) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    admin.set_routes([{"version": "1", "weight": 100, "replicas": [servers["1a"].url, servers["1b"].url]}])
    client = httpclient.InferenceServerClient(url=router.url.removeprefix("http://"))
    try:
        assert client.is_server_ready() and client.is_model_ready("digits")
        tensor = httpclient.InferInput("input", list(batch.shape), "FP32")
        tensor.set_data_from_numpy(batch, binary_data=True)
        result = client.infer("digits", [tensor], outputs=[httpclient.InferRequestedOutput("probs", binary_data=True)])
        np.testing.assert_allclose(result.as_numpy("probs"), reference(batch)["probs"], rtol=1e-6)
    finally:
        client.close()
    with EndpointClient(router.url) as ours:
        np.testing.assert_allclose(ours.infer("digits", batch, binary=True), reference(batch)["logits"], rtol=1e-6)
