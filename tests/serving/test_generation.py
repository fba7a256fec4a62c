"""Text generation through the data plane, on a real uvicorn server: the OIP v2 infer endpoint with BYTES
tensors, the server-sent-events stream (tokens arrive while the generation still runs) and continuous batching
(requests that run together, joining and leaving the batch at different steps, each get the text they get alone)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
import uvicorn
from tests.pace import HANG_S, wait_until

from aidc.serving.generation import GenerationEngine, TextGenerator
from aidc.serving.generation_app import create_generation_app
from aidc.serving.router import RouterClient, start_router
from aidc.training.gpt.generate import Sampling
from aidc.training.gpt.model import GPT, GPTConfig
from aidc.training.gpt.text import END_OF_TEXT, pack, train_tokenizer
from aidc.training.gpt.train import LMTraining, Schedule

PROMPTS = ["def main(", "import os", "class A:", "x = 1", "for i in", "return", "while True", "print("]


TEXT = "\n".join(f"def f{i}(x):\n    return x * {i} + {i % 7}  # café\n" for i in range(300))


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return train_tokenizer([TEXT], 320)


@pytest.fixture(scope="module")
def weights(tokenizer: Any) -> dict[str, torch.Tensor]:
    """A tiny model trained for a few steps on code-like text: it continues prompts in ways that depend on them
    (untrained tied weights mostly repeat the last token, which would not tell batched decoding apart)."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tokenizer.get_vocab_size(), dim=64, layers=2, heads=4, kv_heads=2, context=128))
    rows = pack([tokenizer.encode(TEXT).ids], 32, tokenizer.token_to_id(END_OF_TEXT))
    run = LMTraining(model, rows, schedule=Schedule(3e-3, 3e-4, 3, 30), batch_size=8, precision="fp32")
    for _ in range(30):
        run.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


def make_generator(tokenizer: Any, weights: dict[str, torch.Tensor], max_batch: int) -> TextGenerator:
    model = GPT(GPTConfig(vocab_size=tokenizer.get_vocab_size(), dim=64, layers=2, heads=4, kv_heads=2, context=128))
    model.load_state_dict(weights)
    engine = GenerationEngine(model, max_batch=max_batch, stop_token=None)
    return TextGenerator(engine, tokenizer, "coder")


@pytest.fixture()
def server(tokenizer: Any, weights: dict[str, torch.Tensor]) -> Iterator[tuple[str, TextGenerator]]:
    generator = make_generator(tokenizer, weights, max_batch=8)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    uv = uvicorn.Server(uvicorn.Config(create_generation_app(generator), lifespan="off", log_level="critical"))
    thread = threading.Thread(target=lambda: asyncio.run(uv.serve(sockets=[sock])), daemon=True)
    thread.start()
    wait_until(lambda: uv.started, "the server to start")
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", generator
    uv.should_exit = True
    thread.join(10)
    generator.engine.close()


def alone(generator: TextGenerator, prompt: str, max_tokens: int) -> str:
    """The text a prompt gets from an engine with the same model that serves one request at a time."""
    g = TextGenerator(GenerationEngine(generator.engine.model, max_batch=1), generator.tokenizer, "alone")
    try:
        return asyncio.run(g.generate_text(prompt, Sampling(max_tokens)))
    finally:
        g.engine.close()


def test_infer_takes_bytes_prompts_and_parameters_and_answers_text(server: tuple[str, TextGenerator]) -> None:
    url, generator = server
    body = {
        "id": "r1",
        "inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [2], "data": PROMPTS[:2]}],
        "parameters": {"max_tokens": 12, "temperature": 0},
    }
    answer = httpx.post(f"{url}/v2/models/coder/infer", json=body, timeout=HANG_S).json()
    assert answer["id"] == "r1" and answer["model_name"] == "coder"
    out = answer["outputs"][0]
    assert (out["name"], out["datatype"], out["shape"]) == ("text_output", "BYTES", [2])
    assert all(isinstance(t, str) and t for t in out["data"])
    meta = httpx.get(f"{url}/v2/models/coder", timeout=HANG_S).json()
    assert meta["inputs"] == [{"name": "text_input", "datatype": "BYTES", "shape": [-1]}]
    pinned = httpx.post(f"{url}/v2/models/coder/versions/1/infer", json=body, timeout=HANG_S).json()
    assert pinned["outputs"] == answer["outputs"]  # greedy: the same texts, asked of version 1 by name
    r = httpx.post(f"{url}/v2/models/coder/versions/2/generate", json={"text_input": "x"}, timeout=HANG_S)
    assert r.status_code == 404 and "no version '2'" in r.json()["error"]


def test_bad_requests_say_what_is_wrong(server: tuple[str, TextGenerator]) -> None:
    url, _ = server
    wrong_type = {"inputs": [{"name": "text_input", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
    r = httpx.post(f"{url}/v2/models/coder/infer", json=wrong_type, timeout=HANG_S)
    assert r.status_code == 400 and "BYTES" in r.json()["error"]
    bad_param = {"text_input": "x", "parameters": {"max_tokens": "many"}}
    r = httpx.post(f"{url}/v2/models/coder/generate", json=bad_param, timeout=HANG_S)
    assert r.status_code == 400 and "max_tokens" in r.json()["error"]
    r = httpx.post(f"{url}/v2/models/other/generate", json={"text_input": "x"}, timeout=HANG_S)
    assert r.status_code == 404


def test_streaming_yields_tokens_before_the_generation_ends(server: tuple[str, TextGenerator]) -> None:
    url, generator = server
    engine = generator.engine
    release = threading.Event()
    decode = engine._decode

    def held_decode(*args: Any) -> Any:  # the first token comes from the prefill; every later one waits for us
        release.wait(HANG_S)
        return decode(*args)

    engine._decode = held_decode  # type: ignore[method-assign]
    body = {"text_input": PROMPTS[0], "parameters": {"max_tokens": 20}}
    pieces = []
    with httpx.stream("POST", f"{url}/v2/models/coder/generate_stream", json=body, timeout=HANG_S) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        for line in lines:
            if line.startswith("data: "):
                pieces.append(json.loads(line[6:])["text_output"])
                break
        assert pieces and engine.steps == 0  # a token is here, and not one decode step has run yet
        release.set()
        pieces += [json.loads(line[6:])["text_output"] for line in lines if line.startswith("data: ")]
    engine._decode = decode  # type: ignore[method-assign]
    assert engine.steps >= 1 and len(pieces) > 1
    assert "".join(pieces) == alone(generator, PROMPTS[0], 20)


def test_the_deployment_router_passes_the_stream_on_as_it_comes(
    server: tuple[str, TextGenerator], tmp_path: Path
) -> None:
    """Through a real router process (what `aidc deploy` puts in front of replicas): the first piece reaches the
    client while the replica's engine has not run one decode step, so the router does not buffer the stream."""
    url, generator = server
    engine = generator.engine
    router = start_router("coder", "t", log_path=tmp_path / "router.log")
    admin = RouterClient(router.url, "t")
    release = threading.Event()
    decode = engine._decode

    def held_decode(*args: Any) -> Any:
        release.wait(HANG_S)
        return decode(*args)

    engine._decode = held_decode  # type: ignore[method-assign]
    try:
        admin.set_routes([{"version": "1", "weight": 100, "replicas": [url]}])
        body = {"text_input": PROMPTS[1], "parameters": {"max_tokens": 20}}
        pieces = []
        with httpx.stream("POST", f"{router.url}/v2/models/coder/generate_stream", json=body, timeout=HANG_S) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            for line in lines:
                if line.startswith("data: "):
                    pieces.append(json.loads(line[6:])["text_output"])
                    break
            assert pieces and engine.steps == 0  # through the router, before one decode step has run
            release.set()
            pieces += [json.loads(line[6:])["text_output"] for line in lines if line.startswith("data: ")]
        assert len(pieces) > 1 and "".join(pieces) == alone(generator, PROMPTS[1], 20)
        # and the connection is still good for a plain request after the stream
        answer = httpx.post(f"{router.url}/v2/models/coder/generate", json=body, timeout=HANG_S)
        assert answer.json()["text_output"] == "".join(pieces)

        # a client that leaves mid-stream: the router lets the replica go too, which cancels the generation
        release.clear()
        submitted = []
        submit = engine.submit

        def remembered(*args: Any) -> Any:
            submitted.append(submit(*args))
            return submitted[-1]

        engine.submit = remembered  # type: ignore[method-assign]
        with httpx.stream("POST", f"{router.url}/v2/models/coder/generate_stream", json=body, timeout=HANG_S) as r:
            next(line for line in r.iter_lines() if line.startswith("data: "))
        engine.submit = submit  # type: ignore[method-assign]
        # bounded below the router's own 60-s read limit, which would also end it: it must be the client leaving
        wait_until(lambda: submitted[0].cancelled, "the replica's generation to be cancelled", timeout=45)
        assert len(submitted[0].tokens) < 20
    finally:
        release.set()
        engine._decode = decode  # type: ignore[method-assign]
        admin.close()
        router.stop()


def test_concurrent_greedy_requests_each_get_the_text_they_get_alone(
    server: tuple[str, TextGenerator],
) -> None:
    url, generator = server
    lengths = [4, 24, 9, 16, 2, 30, 12, 20]  # rows leave the batch at different steps

    async def all_at_once() -> list[str]:
        async with httpx.AsyncClient(timeout=HANG_S) as client:

            async def one(prompt: str, n: int) -> str:
                body = {"text_input": prompt, "parameters": {"max_tokens": n}}
                r = await client.post(f"{url}/v2/models/coder/generate", json=body)
                return str(r.json()["text_output"])

            return await asyncio.gather(*(one(p, n) for p, n in zip(PROMPTS, lengths, strict=True)))

    together = asyncio.run(all_at_once())
    assert generator.engine.rows > generator.engine.steps  # some decode steps ran several requests at once
    assert together == [alone(generator, p, n) for p, n in zip(PROMPTS, lengths, strict=True)]


def test_sampled_requests_with_a_seed_repeat_and_differ_from_greedy(server: tuple[str, TextGenerator]) -> None:
    url, _ = server
    sampled = {"text_input": PROMPTS[1], "parameters": {"max_tokens": 16, "temperature": 1.0, "seed": 7}}
    first = httpx.post(f"{url}/v2/models/coder/generate", json=sampled, timeout=HANG_S).json()["text_output"]
    again = httpx.post(f"{url}/v2/models/coder/generate", json=sampled, timeout=HANG_S).json()["text_output"]
    greedy = {"text_input": PROMPTS[1], "parameters": {"max_tokens": 16}}
    plain = httpx.post(f"{url}/v2/models/coder/generate", json=greedy, timeout=HANG_S).json()["text_output"]
    assert first == again != plain
