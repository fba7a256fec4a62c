"""Text generation for a `gpt` model with continuous batching: a decode loop on its own thread keeps one batch of
running requests and their key/value cache; between two decode steps, finished requests leave the batch and
waiting ones join it (prefilled alone, then concatenated into the batch's cache). Tokens reach each request's
asyncio consumer as they are made."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import torch

from aidc.errors import InvalidInput
from aidc.training.gpt.generate import Sampling, pick
from aidc.training.gpt.model import GPT, KVCache

_DONE = object()


@dataclass
class Generation:
    """One request: its prompt, how to sample, and where its tokens go (an asyncio queue on the caller's loop)."""

    prompt: list[int]
    sampling: Sampling
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Any]
    stop: int | None = None
    tokens: list[int] = field(default_factory=list)
    generator: torch.Generator | None = None
    submitted: float = field(default_factory=time.perf_counter)
    first_token_s: float | None = None
    finished_s: float | None = None
    cancelled: bool = False
    limit: int = 0  # new tokens allowed (max_new_tokens, bounded by the context)

    def emit(self, token: int, *, deliver: bool = True) -> None:
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self.submitted
        self.tokens.append(token)
        if deliver:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, token)

    def finish(self, error: BaseException | None = None) -> None:
        self.finished_s = time.perf_counter() - self.submitted
        self.loop.call_soon_threadsafe(self.queue.put_nowait, error or _DONE)

    @property
    def done(self) -> bool:
        last = self.tokens[-1] if self.tokens else None
        return self.cancelled or len(self.tokens) >= self.limit or (self.stop is not None and last == self.stop)


def _deliver(tokens: list[tuple[asyncio.Queue[Any], int]]) -> None:
    for queue, token in tokens:
        queue.put_nowait(token)


class GenerationEngine:
    """Runs a `gpt` model for many concurrent generations; ``max_batch`` 1 serves one request at a time."""

    def __init__(self, model: GPT, *, max_batch: int = 16, stop_token: int | None = None) -> None:
        self.model = model.eval()
        self.max_batch = max_batch
        self.stop_token = stop_token
        self.context = model.config.context
        self.device = model.embed.weight.device
        self.dtype = model.embed.weight.dtype
        self._waiting: deque[Generation] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self.steps = 0  # decode steps run (a batch of rows each)
        self.rows = 0  # rows decoded over all steps: rows / steps is the mean batch
        self._thread = threading.Thread(target=self._run, name="aidc-generation", daemon=True)
        self._thread.start()

    # -- the caller's side (any asyncio loop)

    def submit(self, prompt: list[int], sampling: Sampling) -> Generation:
        if not prompt:
            raise InvalidInput("the prompt is empty", hint="send at least one character of text")
        if len(prompt) >= self.context:
            raise InvalidInput(
                f"the prompt is {len(prompt)} tokens; the model's context is {self.context}",
                hint="send a shorter prompt",
            )
        if sampling.max_new_tokens < 1:
            raise InvalidInput("max_tokens must be at least 1")
        loop = asyncio.get_running_loop()
        g = Generation(prompt, sampling, loop, asyncio.Queue(), stop=self.stop_token)
        g.limit = min(sampling.max_new_tokens, self.context - len(prompt))
        if sampling.temperature > 0:
            g.generator = torch.Generator(device=self.device)
            g.generator.manual_seed(sampling.seed if sampling.seed is not None else int(torch.seed()) % 2**63)
        with self._wake:
            if self._closed:
                raise InvalidInput("the generation engine is shut down")
            self._waiting.append(g)
            self._wake.notify()
        return g

    async def stream(self, g: Generation) -> AsyncIterator[int]:
        """The request's tokens as they are made; leaving early cancels the rest of its generation."""
        try:
            while True:
                item = await g.queue.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            g.cancelled = True

    async def complete(self, prompt: list[int], sampling: Sampling) -> list[int]:
        return [t async for t in self.stream(self.submit(prompt, sampling))]

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=10)

    # -- the decode thread

    def _run(self) -> None:
        torch.set_grad_enabled(False)
        active: list[Generation] = []
        cache: KVCache | None = None
        while True:
            with self._wake:
                while not active and not self._waiting and not self._closed:
                    self._wake.wait()
                if self._closed:
                    break
                joining = [
                    self._waiting.popleft() for _ in range(min(len(self._waiting), self.max_batch - len(active)))
                ]
            try:
                active, cache = self._join(active, cache, joining)
                if active:
                    active, cache = self._decode(active, cache)
            except Exception as exc:  # a fault ends the requests running, not the engine
                for g in active + joining:
                    if g.finished_s is None:
                        g.finish(exc)
                active, cache = [], None
        for g in active + list(self._waiting):
            g.finish(InvalidInput("the generation engine shut down"))

    def _join(
        self, active: list[Generation], cache: KVCache | None, joining: list[Generation]
    ) -> tuple[list[Generation], KVCache | None]:
        """Prefill each newcomer alone (its first token comes out of it) and add it to the running batch."""
        caches = [cache] if cache is not None else []
        for g in joining:
            own = KVCache.empty(self.model.config, 1, self.device, self.dtype)
            logits = self.model(torch.tensor([g.prompt], device=self.device), own)[:, -1]
            g.emit(int(pick(logits, g.sampling, g.generator)[0]))
            if g.done:
                g.finish()
                continue
            active.append(g)
            caches.append(own)
        if len(caches) > 1:
            cache = KVCache.concat(caches)
        elif caches:
            cache = caches[0]
        return active, cache

    def _decode(self, active: list[Generation], cache: KVCache | None) -> tuple[list[Generation], KVCache | None]:
        """One decode step for the whole batch; finished requests leave it."""
        assert cache is not None
        last = torch.tensor([[g.tokens[-1]] for g in active], device=self.device)
        logits = self.model(last, cache)[:, -1]
        self.steps += 1
        self.rows += len(active)
        greedy = logits.argmax(-1).tolist()
        made: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Queue[Any], int]]] = {}
        for i, g in enumerate(active):
            if g.cancelled:
                continue
            token = (
                greedy[i] if g.sampling.temperature <= 0 else int(pick(logits[i : i + 1], g.sampling, g.generator)[0])
            )
            g.emit(token, deliver=False)
            made.setdefault(g.loop, []).append((g.queue, token))
        for loop, tokens in made.items():  # one wake-up of each caller's loop per step, not one per request
            loop.call_soon_threadsafe(_deliver, tokens)
        staying = [i for i, g in enumerate(active) if not g.done]
        for g in active:
            if g.done:
                g.finish()
        if len(staying) == len(active):
            return active, cache
        if not staying:
            return [], None
        return [active[i] for i in staying], cache.select(torch.tensor(staying, device=self.device))


class TextGenerator:
    """A tokenizer around the engine: text in, text out, streamed as text deltas that are whole characters."""

    def __init__(self, engine: GenerationEngine, tokenizer: Any, name: str, version: str = "1") -> None:
        self.engine, self.tokenizer, self.name, self.version = engine, tokenizer, name, version

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    async def stream_text(self, prompt: str, sampling: Sampling) -> AsyncGenerator[str]:
        ids: list[int] = []
        sent = ""
        async for token in self.engine.stream(self.engine.submit(self.encode(prompt), sampling)):
            ids.append(token)
            text = self.decode(ids)
            if text.endswith("\ufffd"):  # part of a multi-byte character: wait for the rest of it
                continue
            if len(text) > len(sent):
                yield text[len(sent) :]
                sent = text
        text = self.decode(ids)
        if len(text) > len(sent):
            yield text[len(sent) :]

    async def generate_text(self, prompt: str, sampling: Sampling) -> str:
        return self.decode(await self.engine.complete(self.encode(prompt), sampling))


def load_generator(
    checkpoint: bytes, arch: dict[str, Any], tokenizer_json: bytes, *, name: str, max_batch: int = 16
) -> TextGenerator:
    """A served generator from a train_lm checkpoint, its architecture and the text stage's tokenizer."""
    from aidc.training.gpt.evaluate_stage import load_gpt
    from aidc.training.gpt.text import END_OF_TEXT, load_tokenizer

    tok = load_tokenizer(tokenizer_json)
    engine = GenerationEngine(load_gpt(checkpoint, arch), max_batch=max_batch, stop_token=tok.token_to_id(END_OF_TEXT))
    return TextGenerator(engine, tok, name)
