"""Dynamic batching: concurrent requests are merged and still get their own answers; full queues answer 503."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tests.pace import HANG_S

from aidc.serving.app import create_app
from aidc.serving.batching import PROBE_EVERY, BatcherStats, BatchingConfig, DynamicBatcher
from aidc.serving.model import OnnxModel
from aidc.serving.protocol import decode_infer_response, encode_infer_request


def _post(client: httpx.AsyncClient, x: np.ndarray, binary: bool = False):
    body, headers = encode_infer_request({"input": x}, binary=binary, binary_output=binary)
    return client.post("/v2/models/digits/infer", content=body, headers=headers)


async def _close(app) -> None:
    for served in app.state.models.all():
        await served.batcher.close()


def _metric(app, name: str) -> dict[str, float]:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    text = generate_latest(app.state.registry).decode()
    return {
        s.labels.get("le", ""): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name
    }


def test_concurrent_requests_are_merged_and_answered_separately(onnx_path: Path, reference) -> None:
    # adaptive=False makes every batch wait for company, so merging does not depend on scheduling luck; the
    # delay is long enough for all 24 requests to arrive on a busy machine (the batches fill well before it)
    app = create_app(
        [OnnxModel(onnx_path, "digits")],
        batching=BatchingConfig(max_batch_size=16, max_queue_delay_ms=1000, adaptive=False),
    )
    rng = np.random.default_rng(3)
    inputs = [rng.normal(size=(1 + i % 3, 4)).astype(np.float32) for i in range(24)]

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
            try:
                return await asyncio.gather(*(_post(client, x, binary=i % 2 == 1) for i, x in enumerate(inputs)))
            finally:
                await _close(app)

    responses = asyncio.run(main())
    for x, response in zip(inputs, responses, strict=False):
        assert response.status_code == 200, response.text
        outputs = decode_infer_response(response.content, response.headers.get("Inference-Header-Content-Length"))
        np.testing.assert_allclose(outputs["probs"], reference(x)["probs"], rtol=1e-6)
        assert outputs["probs"].shape == (x.shape[0], 3)
    merged = _metric(app, "aidc_serving_batch_requests_bucket")
    assert merged["1.0"] < merged["+Inf"], "no batch merged more than one request"
    rows = _metric(app, "aidc_serving_batch_size_bucket")
    assert rows["+Inf"] < len(inputs)  # fewer model executions than requests


def test_a_lone_client_is_not_kept_waiting(onnx_path: Path, batch: np.ndarray) -> None:
    app = create_app(
        [OnnxModel(onnx_path, "digits")],
        batching=BatchingConfig(max_batch_size=32, max_queue_delay_ms=20, adaptive=True),
    )
    requests = 8 * PROBE_EVERY

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as client:
            for _ in range(requests):
                assert (await _post(client, batch)).status_code == 200
            await _close(app)

    asyncio.run(main())
    stats = app.state.models.get("digits").batcher.stats
    assert stats.requests == requests
    # Only the periodic probes wait (to notice rising load), and each fruitless one makes the next come later:
    # at batches 0, 32 and 64 of 128, not every 16th.
    assert stats.requests == requests and stats.waits <= 3


class FastModel(OnnxModel):
    """The classifier, judged to take what it says it takes (see ``declared_cost``)."""

    cost_s = 0.0001


class SlowModel(FastModel):
    cost_s = 0.002


@pytest.fixture()
def declared_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """The batcher judges a model by how long its inferences take. On a busy machine a fast model is now and then
    slow (the process preempted mid-call), and these tests are about the judgement, not the machine: the time an
    inference is taken to have cost is the model's ``cost_s``."""
    from aidc.serving import batching

    def timed(infer: Any, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        return infer(inputs), float(infer.__self__.cost_s)

    monkeypatch.setattr(batching, "_timed", timed)


@pytest.mark.usefixtures("declared_cost")
@pytest.mark.parametrize(("model_type", "inline"), [(FastModel, True), (SlowModel, False)], ids=["fast", "slow"])
def test_only_models_faster_than_a_thread_hop_run_on_the_event_loop(
    onnx_path: Path, batch: np.ndarray, model_type: type, inline: bool
) -> None:
    app = create_app([model_type(onnx_path, "digits")])

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as client:
            for _ in range(10):
                assert (await _post(client, batch)).status_code == 200
            await _close(app)

    asyncio.run(main())
    stats = app.state.models.get("digits").batcher.stats
    # the first batch always goes to the thread: nothing is known about the model yet
    assert (stats.inline == 9) if inline else (stats.inline == 0)


@pytest.mark.usefixtures("declared_cost")
def test_an_idle_batcher_answers_a_lone_request_before_submit_returns(
    onnx_path: Path, batch: np.ndarray, reference
) -> None:
    batcher = DynamicBatcher(FastModel(onnx_path, "digits"))

    async def main() -> None:
        for _ in range(3):  # the first goes to the thread and teaches the batcher the model is fast
            await batcher.infer({"input": batch})
        future = batcher.submit({"input": batch})
        assert future.done()  # no dispatcher wake-up, no loop turn: a concurrency-1 client's saving
        np.testing.assert_allclose(future.result()["probs"], reference(batch)["probs"], rtol=1e-6)
        await batcher.close()

    asyncio.run(main())


def test_batching_that_does_not_pay_is_recognised() -> None:
    stats = BatcherStats(row_cost_single=1e-3, row_cost_batched=1e-3)
    assert not stats.batching_pays
    assert BatcherStats(row_cost_single=1e-3, row_cost_batched=1e-4).batching_pays


class GatedModel(OnnxModel):
    """The classifier, but each inference waits until the test opens the gate."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "digits")
        self.entered, self.gate = threading.Event(), threading.Event()
        self.fail = False

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.entered.set()
        assert self.gate.wait(HANG_S)
        if self.fail:
            raise RuntimeError("kernel exploded")
        return super().infer(inputs)


def test_full_queue_answers_503_with_retry_after(onnx_path: Path, batch: np.ndarray) -> None:
    model = GatedModel(onnx_path)
    app = create_app([model], batching=BatchingConfig(max_batch_size=1, max_queue_size=1))
    batcher = app.state.models.get("digits").batcher

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as client:
            running = asyncio.create_task(_post(client, batch))
            assert await asyncio.to_thread(model.entered.wait, HANG_S)
            queued = asyncio.create_task(_post(client, batch))
            deadline = time.monotonic() + HANG_S  # (only a hang reaches it)
            while batcher.queue_depth < 1:
                assert time.monotonic() < deadline, "the second request was never queued"
                await asyncio.sleep(0.005)
            rejected = await _post(client, batch)
            assert rejected.status_code == 503
            assert int(rejected.headers["Retry-After"]) >= 1
            assert "requests queued (limit 1)" in rejected.json()["error"]
            model.gate.set()
            assert (await running).status_code == 200 and (await queued).status_code == 200
            await _close(app)

    asyncio.run(main())
    errors = {k: v for k, v in _metric(app, "aidc_serving_errors_total").items()}
    assert sum(errors.values()) == 1


def test_a_failing_model_fails_its_request_not_the_server(onnx_path: Path, batch: np.ndarray) -> None:
    model = GatedModel(onnx_path)
    model.gate.set()
    app = create_app([model])

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as client:
            model.fail = True
            response = await _post(client, batch)
            assert response.status_code == 500 and "kernel exploded" in response.json()["error"]
            model.fail = False
            assert (await _post(client, batch)).status_code == 200
            await _close(app)

    asyncio.run(main())


@pytest.mark.parametrize("bad", [{"max_batch_size": 0}, {"max_queue_size": 0}, {"max_queue_delay_ms": -1}])
def test_batching_limits_are_checked(bad: dict) -> None:
    with pytest.raises(ValueError):
        BatchingConfig(**bad)
