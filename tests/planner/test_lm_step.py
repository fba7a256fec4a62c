"""The planner's forecast of a language-model training step (planner.lm_step): the parts a reader can check by hand."""

from __future__ import annotations

import pytest

from aidc.planner.lm_step import forecast_lm_step, lm_architecture

TINY = {"model": "gpt", "dim": 64, "layers": 2, "heads": 4, "kv_heads": 2, "hidden": 176, "vocab_size": 512}


def test_fp32_state_is_sixteen_bytes_a_parameter_and_activations_grow_with_the_batch() -> None:
    arch = {**TINY, "context": 64}
    params = lm_architecture(arch).params
    one = forecast_lm_step(arch, micro_batch=4, accumulation=1, precision="fp32", peak_flops=1e10)
    two = forecast_lm_step(arch, micro_batch=8, accumulation=1, precision="fp32", peak_flops=1e10)
    parts = one.memory_parts
    assert parts["weights"] + parts["gradients"] + parts["optimizer"] == 16 * params
    assert two.memory_parts["activations"] == pytest.approx(2 * parts["activations"])
    assert one.memory_bytes == pytest.approx(sum(parts.values()))


def test_the_step_time_is_the_steps_flops_at_the_derated_peak() -> None:
    arch = {**TINY, "context": 64}
    shape = lm_architecture(arch)
    f = forecast_lm_step(arch, micro_batch=4, accumulation=2, precision="fp32", peak_flops=1e10)
    flops = 4 * 64 * 2 * shape.model_flops_per_token()
    assert f.seconds == pytest.approx(flops / (1e10 * 1.08 * 64 / (64 + 36)))
    slower = forecast_lm_step(arch, micro_batch=4, accumulation=2, precision="fp32", peak_flops=5e9)
    assert slower.seconds == pytest.approx(2 * f.seconds)
    recomputed = forecast_lm_step(
        arch, micro_batch=4, accumulation=2, precision="fp32", peak_flops=1e10, activation_checkpointing=True
    )
    assert recomputed.seconds > f.seconds and recomputed.memory_parts["activations"] < f.memory_parts["activations"]
