"""The host model turns probed rates into a training-step prediction (numbers, not speed, are checked).

Probes are replaced by fixed rates so that nothing here depends on how busy the machine is.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest

from aidc.planner.host import (HostProbe, call_seconds, conv2d, linear, matmul_flops, pass_seconds, predict_step,
                               zoo_network)


@dataclass
class FixedProbe(HostProbe):
    """A host with an 80 GFLOP/s GEMM peak, 0.15 ns per element-pass and 1.1 µs per numpy call."""

    def peak(self) -> float:
        return 80e9

    def pass_time(self, elements: int) -> float:
        return 0.15e-9

    def call_time(self) -> float:
        return 1.1e-6


HOST = FixedProbe()


def digits(model: str, **extra: object) -> dict[str, object]:
    return {"model": model, "input_shape": [1, 8, 8], "classes": 10, **extra}


def test_gemms_per_layer_first_layer_has_no_input_gradient() -> None:
    layers = [conv2d("c1", 64, 1, 16, 3, 8, 8, input_grad=False), linear("fc", 64, 1024, 10)]
    pred = predict_step(layers, HOST)
    # forward + weight gradient for the first layer; forward + input gradient + weight gradient after it
    assert pred["flops"] == 2 * (2 * 64 * 64 * 9 * 16) + 3 * (2 * 64 * 1024 * 10)
    assert pred["step_s"] > pred["overhead_s"] > 0
    assert pred["data_s"] == 0  # a bare list of layers has no data loader


@pytest.mark.parametrize("model", ["cnn", "mlp"])
def test_bigger_batch_predicts_a_longer_step(model: str) -> None:
    steps = [predict_step(zoo_network(digits(model), b), HOST) for b in (8, 32, 128, 512)]
    for small, big in zip(steps, steps[1:]):
        assert big["step_s"] > small["step_s"]
        assert big["loop_s"] > small["loop_s"]  # more samples to fetch as well
        assert big["gemm_s"] > small["gemm_s"]


@pytest.mark.parametrize("model", ["cnn", "mlp"])
def test_fixed_per_step_cost_keeps_tiny_steps_from_scaling_to_zero(model: str) -> None:
    one, two, many = (predict_step(zoo_network(digits(model), b), HOST) for b in (1, 2, 256))
    assert one["fixed_s"] == two["fixed_s"] == many["fixed_s"] > 0  # dispatch and Adam's loop: not per sample
    assert one["step_s"] > 0.5 * two["step_s"]  # halving a tiny batch saves far less than half the step
    # at batch 1 the framework is a large share of the step; at 256 the arithmetic has taken over
    assert one["fixed_s"] / one["step_s"] > 0.4 > many["fixed_s"] / many["step_s"]
    assert many["step_s"] / one["step_s"] < 256  # nowhere near proportional to the batch


def test_wider_model_costs_more_optimizer_time_at_the_same_batch() -> None:
    narrow, wide = (predict_step(zoo_network(digits("mlp", width=w), 32), HOST) for w in (256, 1024))
    assert wide["optimizer_s"] > 5 * narrow["optimizer_s"]  # ~12× the parameters
    assert wide["step_s"] > narrow["step_s"]


@pytest.mark.parametrize("arch", [digits("cnn"), digits("cnn", width=16), digits("cnn", width=64),
                                  digits("mlp"), digits("mlp", width=1024), {**digits("cnn"), "classes": 3}])
def test_zoo_network_is_the_model_the_train_stage_builds(arch: dict[str, object]) -> None:
    """The planner's copy of aidc.training.zoo (it must not import torch) has the same parameters."""
    from aidc.training.zoo import build_model

    model = build_model(arch)
    net = zoo_network(arch, 32)
    assert net.params == sum(p.numel() for p in model.parameters())
    assert net.param_tensors == len(list(model.parameters()))


def test_unknown_zoo_model_is_refused() -> None:
    with pytest.raises(ValueError, match="resnet"):
        zoo_network(digits("resnet"), 32)


def test_probes_return_rates_and_the_planner_stays_torch_free() -> None:
    assert matmul_flops(64, 64, 64, 0.01, threads=1) > 0
    assert pass_seconds(1 << 16, 0.005) > 0
    assert call_seconds(0.005) > 0
    code = ("import sys, aidc.planner.host as h, aidc.planner.plan; "
            "h.predict_step(h.zoo_network({'model': 'cnn', 'input_shape': [1, 8, 8], 'classes': 10}, 4), "
            "h.HostProbe(seconds=0.001)); assert 'torch' not in sys.modules, 'planner imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
