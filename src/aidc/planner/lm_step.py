"""The planner's forecast of one language-model training step — time and memory per worker — for the model, batch
and host a run actually used, so that a run report can put the measurement beside it.

The same parts as ``aidc plan``: the transformer's shape as planner.architecture sees it, its training FLOPs per
token, and planner.memory's model state and stored activations (Korthikanti et al. 2022). The GEMMs run at the
device's peak — the probed matmul peak of a CPU, a GPU's datasheet peak — derated for thin GEMMs as planner.host
derates the zoo networks' (HostModel's gemm_e and gemm_knee); nothing else is priced (norms, softmax, the optimizer
and the framework's calls are left out), so the time is a lower bound and the measured ÷ forecast ratio says how
far the step is from GEMM-bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from aidc.planner.architecture import Architecture
from aidc.planner.host import HostModel
from aidc.planner.memory import Layout, activation_bytes_per_layer


@dataclass(frozen=True)
class StepForecast:
    seconds: float  # one optimizer step (all its micro-batches), per worker
    memory_bytes: float  # model state + activations + logits of one worker
    memory_parts: dict[str, float]
    basis: str  # what priced it, in words

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "memory_bytes": self.memory_bytes,
            "memory_parts": self.memory_parts,
            "basis": self.basis,
        }


def lm_architecture(arch: dict[str, Any], seq_len: int | None = None) -> Architecture:
    """The zoo's gpt (a training.gpt architecture dict) in the planner's terms: RMSNorm, rotary positions, a SwiGLU
    MLP of ``hidden``, grouped-query heads, tied embeddings, fused (SDPA) attention, no dropout."""
    return Architecture(
        layers=int(arch["layers"]),
        hidden=int(arch["dim"]),
        heads=int(arch["heads"]),
        kv_heads=int(arch.get("kv_heads") or arch["heads"]),
        ffn_hidden=int(arch["hidden"]),
        vocab=int(arch["vocab_size"]),
        seq_len=int(seq_len or arch["context"]),
        glu=True,
        tied_embeddings=True,
        flash_attention=True,
    )


def forecast_lm_step(
    arch: dict[str, Any],
    *,
    micro_batch: int,
    accumulation: int,
    seq_len: int | None = None,
    precision: str,
    peak_flops: float,
    activation_checkpointing: bool = False,
    host: HostModel | None = None,
) -> StepForecast:
    """One worker's step on a device of ``peak_flops`` (the probed CPU matmul peak, or a GPU's datasheet peak for
    ``precision``): ``micro_batch`` sequences of ``seq_len`` tokens (default: the context), ``accumulation`` times."""
    shape = lm_architecture(arch, seq_len)
    fp32 = precision == "fp32"
    layout = Layout(micro_batch=micro_batch, recompute="full" if activation_checkpointing else "none", zero=0)
    # planner.memory counts 2-byte activations (bf16); fp32 keeps every one at twice that
    scale = 2.0 if fp32 else 1.0
    params = shape.params
    state = {"weights": 4.0 * params, "gradients": 4.0 * params, "optimizer": 8.0 * params}
    if not fp32:  # mixed precision: bf16 weights and gradients beside the fp32 master copy and moments
        state = {"weights": 2.0 * params, "gradients": 2.0 * params, "optimizer": 12.0 * params}
    activations = scale * shape.layers * activation_bytes_per_layer(shape, layout)
    logits = (8.0 if fp32 else 6.0) * micro_batch * shape.seq_len * shape.vocab  # the logits and their softmax
    parts = {**state, "activations": activations, "logits": logits}
    tokens = micro_batch * shape.seq_len * accumulation
    flops = tokens * shape.model_flops_per_token() * (4 / 3 if activation_checkpointing else 1.0)
    model = host or HostModel()
    thinnest = min(shape.hidden, micro_batch * shape.seq_len)
    rate = peak_flops * min(1.0, model.gemm_e * thinnest / (thinnest + model.gemm_knee))
    basis = (
        f"{tokens:,} tokens × {shape.model_flops_per_token() / 1e6:.2f} MFLOP at {rate / 1e9:.1f} GFLOP/s "
        f"({peak_flops / 1e9:.1f} peak × thin-GEMM derating at width {thinnest}); memory: {'fp32' if fp32 else 'bf16'}"
        f" Adam state + activations ({'recomputed' if activation_checkpointing else 'all stored'})"
    )
    return StepForecast(
        seconds=flops / rate if rate > 0 else math.inf,
        memory_bytes=sum(parts.values()),
        memory_parts=parts,
        basis=basis,
    )
