"""The serving SLO rules read a real deployment router (the router process, `GET /-/stats`): requests its only
replica refuses are errors, and the error-rate rule holds at once (pending its `for: 5m`), over the requests since the previous round."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aidc.monitoring.alerts.engine import Evaluator
from aidc.monitoring.alerts.rules import shipped_rules
from aidc.monitoring.alerts.signals import serving_signals
from aidc.serving.endpoint import EndpointProcess
from aidc.serving.router import RouterClient, start_router
from aidc.store.metadata.records import Sample

TOKEN = "signals-token"


@pytest.fixture()
def router(tmp_path: Path) -> Iterator[EndpointProcess]:
    ep = start_router("digits", TOKEN, log_path=tmp_path / "router.log")
    try:
        yield ep
    finally:
        ep.stop()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_deployment_whose_replica_refuses_everything_breaks_its_error_slo(router: EndpointProcess) -> None:
    admin = RouterClient(router.url, TOKEN)
    admin.set_routes([{"version": "1", "weight": 100, "replicas": [_closed_port_url()]}])
    admin.close()
    with httpx.Client(base_url=router.url) as http:
        for _ in range(20):
            assert http.post("/v2/models/digits/infer", content=b"{}").status_code == 503
    kept: list[Sample] = []
    read = serving_signals(lambda: [("digits", "vision", router.url)], keep=kept.extend)
    samples = {s.metric: s for s in read(1_800_000_000.0)}
    errors = samples["aidc_deployment_error_ratio"]
    assert errors.value == 1.0 and "deployment=digits" in errors.labels and "project=vision" in errors.labels
    assert "aidc_deployment_latency_p99_seconds" not in samples  # the router times the requests it answered only
    # no request since the last round: no ratio to judge, and a rate of none a second
    assert [(s.metric, s.value) for s in read(1_800_000_010.0)] == [("aidc_deployment_requests_per_second", 0.0)]
    with httpx.Client(base_url=router.url) as http:
        for _ in range(5):
            http.post("/v2/models/digits/infer", content=b"{}")
    rate = {s.metric: s.value for s in read(1_800_000_020.0)}["aidc_deployment_requests_per_second"]
    assert rate == 0.5  # 5 requests over the 10 s since the last round
    assert [s.metric for s in kept].count("aidc_deployment_requests_per_second") == 2  # the history the console draws
    evaluator = Evaluator(shipped_rules())
    evaluator.observe(samples.values())
    changes = {c["rule"]: c for c in evaluator.evaluate(1_800_000_000.0)}
    assert changes["ServingErrorRateAboveSlo"]["event"] == "pending"  # its `for: 5m` starts now
    assert changes["ServingErrorRateAboveSlo"]["labels"]["deployment"] == "digits"
    assert "ServingLatencyAboveSlo" not in changes  # refused at once: fast, just wrong
