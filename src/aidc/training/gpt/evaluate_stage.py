"""The evaluate_lm stage: perplexity of the trained language model on the held-out files, and sample generations
from fixed prompts (greedy and sampled); a gate on perplexity if asked."""

from __future__ import annotations

import io
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from aidc.errors import GateFailed
from aidc.pipeline.stage import Stage, StageContext

PROMPTS = ["def ", "import ", "class ", '    """', "for i in range("]


class EvaluateLMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompts: list[str] = Field(default_factory=lambda: list(PROMPTS), min_length=1, description="fixed prompts")
    max_new_tokens: int = Field(48, ge=1, le=4096)
    temperature: float = Field(0.8, gt=0, le=5, description="for the sampled generation (the other is greedy)")
    top_k: int | None = Field(40, ge=1)
    seed: int = 0
    batch_size: int = Field(16, ge=1)
    max_perplexity: float | None = Field(None, gt=1, description="gate: the run fails above this perplexity")


def load_gpt(checkpoint: bytes, arch: dict[str, Any]) -> Any:
    """A `gpt` in eval mode with a checkpoint's weights (a train_lm checkpoint, or its model state alone)."""
    import torch

    from aidc.training.gpt.model import gpt

    state = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=False)
    model = gpt({**arch, "activation_checkpointing": False})
    model.load_state_dict(state.get("model", state))
    return model.eval()


class EvaluateLMStage(Stage):
    kind = "evaluate_lm"
    Config = EvaluateLMConfig
    inputs = {
        "tokens": "packed sequences from a text stage (its validation part is scored)",
        "tokenizer": "the text stage's tokenizer",
        "checkpoint": "a train_lm checkpoint",
        "model": "its architecture",
    }
    outputs = {"metrics": "held-out loss, perplexity, tokens scored", "samples": "generations from the prompts"}

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        import torch

        from aidc.training.gpt.generate import Sampling, generate
        from aidc.training.gpt.text import END_OF_TEXT, load_tokenizer, load_tokens
        from aidc.training.gpt.train import lm_loss

        cfg: EvaluateLMConfig = config
        tok = load_tokenizer(ctx.get_artifact(inputs["tokenizer"]))
        val = torch.from_numpy(load_tokens(ctx.get_artifact(inputs["tokens"]))["val"])
        model = load_gpt(ctx.get_artifact(inputs["checkpoint"]), inputs["model"])
        total, n = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(val), cfg.batch_size):
                rows = val[i : i + cfg.batch_size]
                total += float(lm_loss(model, rows)) * rows[:, 1:].numel()
                n += rows[:, 1:].numel()
                ctx.progress("held-out sequences", min(i + cfg.batch_size, len(val)), len(val))
        loss = total / max(1, n)
        metrics = {"val_loss": loss, "perplexity": math.exp(min(loss, 50.0)), "tokens": n}
        eot = tok.token_to_id(END_OF_TEXT)
        samples = []
        for prompt in cfg.prompts:
            ids = tok.encode(prompt, add_special_tokens=False).ids
            greedy = generate(model, ids, Sampling(cfg.max_new_tokens), stop=eot)
            sampled = generate(model, ids, Sampling(cfg.max_new_tokens, cfg.temperature, cfg.top_k, cfg.seed), stop=eot)
            samples.append(
                {
                    "prompt": prompt,
                    "greedy": tok.decode(greedy),
                    "sampled": tok.decode(sampled),
                    "max_new_tokens": cfg.max_new_tokens,
                }
            )
        ctx.log(f"held-out perplexity {metrics['perplexity']:.2f} over {n} tokens")
        ctx.log(f"greedy from {cfg.prompts[0]!r}: {cfg.prompts[0] + samples[0]['greedy']!r}")
        if cfg.max_perplexity is not None and metrics["perplexity"] > cfg.max_perplexity:
            raise GateFailed(
                f"held-out perplexity {metrics['perplexity']:.2f} is above the gate of {cfg.max_perplexity}",
                stage=ctx.stage,
                run_id=ctx.run_id,
                cause="perplexity above max_perplexity",
                hint="train longer or raise evaluate_lm.max_perplexity",
            )
        return {"metrics": metrics, "samples": samples}
