"""The generation data plane over HTTP: OIP v2 infer with BYTES tensors (prompts in, texts out, generation
settings as request parameters), Triton's generate extension (``/generate``) and its server-sent-events stream
(``/generate_stream``), plus health and model metadata."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from aidc.errors import AidcError, InvalidInput, NotFound
from aidc.serving.generation import TextGenerator
from aidc.training.gpt.generate import Sampling

PLATFORM = "pytorch_gpt"
INPUT, OUTPUT = "text_input", "text_output"
PARAMETERS = {"max_tokens": int, "temperature": float, "top_k": int, "seed": int}


def sampling_from(parameters: Any, where: str = "parameters") -> Sampling:
    """Generation settings from request parameters: max_tokens, temperature (0 = greedy), top_k, seed."""
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise InvalidInput(f"{where} must be an object", hint='for example {"max_tokens": 32}')
    values: dict[str, Any] = {}
    for key, kind in PARAMETERS.items():
        if key not in parameters or parameters[key] is None:
            continue
        value = parameters[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
            raise InvalidInput(f"{where}.{key} must be {'an integer' if kind is int else 'a number'}, not {value!r}")
        values[key] = kind(value)
    if values.get("max_tokens", 1) < 1 or values.get("temperature", 0.0) < 0 or values.get("top_k", 1) < 1:
        raise InvalidInput(
            f"{where}: max_tokens and top_k must be ≥ 1 and temperature ≥ 0", hint="temperature 0 is greedy"
        )
    return Sampling(
        max_new_tokens=values.get("max_tokens", 32),
        temperature=values.get("temperature", 0.0),
        top_k=values.get("top_k"),
        seed=values.get("seed"),
    )


def _prompts(body: dict[str, Any]) -> tuple[list[str], str]:
    """The BYTES input's strings, and the output's name (OIP: a named input with shape and data)."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise InvalidInput(f"inputs must hold one tensor, {INPUT!r} (BYTES)", hint="see docs/gpt.md for an example")
    tensor = inputs[0]
    if tensor.get("name") != INPUT or tensor.get("datatype") != "BYTES":
        raise InvalidInput(
            f"inputs[0] is {tensor.get('name')!r} ({tensor.get('datatype')}); this model takes {INPUT!r} as BYTES"
        )
    data = tensor.get("data")
    if not isinstance(data, list) or not data or not all(isinstance(x, str) for x in data):
        raise InvalidInput("inputs[0].data must be a non-empty list of strings (the prompts)")
    if tensor.get("shape") not in ([len(data)], [len(data), 1]):
        raise InvalidInput(f"inputs[0].shape {tensor.get('shape')} does not match its {len(data)} strings")
    outputs = body.get("outputs") or [{"name": OUTPUT}]
    if not isinstance(outputs, list) or [o.get("name") for o in outputs if isinstance(o, dict)] != [OUTPUT]:
        raise InvalidInput(f"the only output is {OUTPUT!r}")
    return data, OUTPUT


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


def create_generation_app(generator: TextGenerator) -> FastAPI:
    """The app serving one text generator; closing the app's lifespan stops its engine."""
    app = FastAPI(title="aidc generation", docs_url=None, redoc_url=None)
    app.state.generator = generator

    @app.exception_handler(AidcError)
    async def aidc_error(_: Request, exc: AidcError) -> JSONResponse:
        return JSONResponse({"error": str(exc), "hint": exc.hint}, status_code=exc.http_status)

    def model(name: str, version: str | None = None) -> TextGenerator:
        if name != generator.name:
            raise NotFound(f"model {name!r} is not served here; models: {generator.name}")
        if version is not None and version != generator.version:
            raise NotFound(f"model {name!r} has no version {version!r} here; it serves {generator.version}")
        return generator

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    async def metadata(name: str, version: str | None = None) -> dict[str, Any]:
        g = model(name, version)
        config = g.engine.model.config
        return {
            "name": g.name,
            "versions": [g.version],
            "platform": PLATFORM,
            "inputs": [{"name": INPUT, "datatype": "BYTES", "shape": [-1]}],
            "outputs": [{"name": OUTPUT, "datatype": "BYTES", "shape": [-1]}],
            "parameters": {
                "context": config.context,
                "vocab_size": config.vocab_size,
                "max_batch": g.engine.max_batch,
                "execution_providers": [f"torch-{g.engine.device.type}"],  # what `aidc deployments show` lists
            },
        }

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> dict[str, Any]:
        model(name)
        return {"name": name, "ready": True}

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer(name: str, request: Request, version: str | None = None) -> dict[str, Any]:
        g = model(name, version)
        body = await _json(request)
        prompts, output = _prompts(body)
        sampling = sampling_from(body.get("parameters"))
        texts = await asyncio.gather(*(g.generate_text(p, sampling) for p in prompts))
        answer: dict[str, Any] = {
            "model_name": g.name,
            "model_version": g.version,
            "outputs": [{"name": output, "datatype": "BYTES", "shape": [len(texts)], "data": list(texts)}],
        }
        if "id" in body:
            answer["id"] = body["id"]
        return answer

    def _generate_request(body: dict[str, Any]) -> tuple[str, Sampling]:
        prompt = body.get(INPUT)
        if not isinstance(prompt, str):
            raise InvalidInput(f"{INPUT!r} must be a string (the prompt)", hint='{"text_input": "def main("}')
        return prompt, sampling_from(body.get("parameters"))

    @app.post("/v2/models/{name}/generate")
    @app.post("/v2/models/{name}/versions/{version}/generate")
    async def generate(name: str, request: Request, version: str | None = None) -> dict[str, Any]:
        g = model(name, version)
        prompt, sampling = _generate_request(await _json(request))
        return {"model_name": g.name, "model_version": g.version, OUTPUT: await g.generate_text(prompt, sampling)}

    @app.post("/v2/models/{name}/generate_stream")
    @app.post("/v2/models/{name}/versions/{version}/generate_stream")
    async def generate_stream(name: str, request: Request, version: str | None = None) -> StreamingResponse:
        g = model(name, version)
        prompt, sampling = _generate_request(await _json(request))
        pieces = g.stream_text(prompt, sampling)
        first = await anext(pieces, None)  # a bad request fails here, before the 200 goes out

        async def events() -> AsyncIterator[bytes]:
            try:
                if first is not None:
                    yield _event(g, first)
                    async for piece in pieces:
                        yield _event(g, piece)
            except AidcError as exc:
                yield f"event: error\ndata: {json.dumps({'error': str(exc)})}\n\n".encode()
            finally:
                await pieces.aclose()

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


def _event(g: TextGenerator, piece: str) -> bytes:
    data = {"model_name": g.name, "model_version": g.version, OUTPUT: piece}
    return f"data: {json.dumps(data)}\n\n".encode()
