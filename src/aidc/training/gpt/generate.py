"""Text generation from a `gpt` model: greedy or sampled next tokens, with a key/value cache or without one."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aidc.training.gpt.model import GPT, KVCache


@dataclass(frozen=True)
class Sampling:
    """How the next token is picked: temperature 0 is greedy; otherwise softmax(logits / T) over the top_k."""

    max_new_tokens: int = 32
    temperature: float = 0.0
    top_k: int | None = None
    seed: int | None = None


def pick(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None) -> torch.Tensor:
    """Next token per row from the last position's logits (B, vocab) → (B,)."""
    if sampling.temperature <= 0:
        return logits.argmax(-1)
    scaled = logits.float() / sampling.temperature
    if sampling.top_k:
        kth = torch.topk(scaled, min(sampling.top_k, scaled.shape[-1]), dim=-1).values[..., -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    return torch.multinomial(torch.softmax(scaled, -1), 1, generator=generator)[:, 0]


def generator_for(sampling: Sampling, device: torch.device) -> torch.Generator | None:
    if sampling.temperature <= 0:
        return None
    g = torch.Generator(device=device)
    g.manual_seed(sampling.seed if sampling.seed is not None else int(torch.seed()))
    return g


@torch.no_grad()
def generate(
    model: GPT, prompt: list[int], sampling: Sampling, *, use_cache: bool = True, stop: int | None = None
) -> list[int]:
    """The new tokens after ``prompt`` (never past the model's context; ``stop`` ends early when generated)."""
    model.eval()
    device = model.embed.weight.device
    room = model.config.context - len(prompt)
    steps = max(0, min(sampling.max_new_tokens, room))
    g = generator_for(sampling, device)
    tokens = torch.tensor([prompt], device=device)
    out: list[int] = []
    cache = KVCache.empty(model.config, 1, device, model.embed.weight.dtype) if use_cache else None
    step_in = tokens
    for _ in range(steps):
        logits = model(step_in if use_cache else tokens, cache)[:, -1]
        nxt = pick(logits, sampling, g)
        out.append(int(nxt[0]))
        if stop is not None and out[-1] == stop:
            break
        step_in = nxt[:, None]
        tokens = torch.cat([tokens, step_in], dim=1)
    return out
