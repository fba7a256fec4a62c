"""The host model turns probed rates into a training-step prediction (numbers, not speed, are checked).

Probes are replaced by fixed rates so that nothing here depends on how busy the machine is.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest

from aidc.planner.host import (
    HostProbe,
    call_seconds,
    conv2d,
    linear,
    matmul_flops,
    pass_seconds,
    predict_step,
    zoo_network,
)


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
    for small, big in zip(steps, steps[1:], strict=False):
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


@pytest.mark.parametrize(
    "arch",
    [
        digits("cnn"),
        digits("cnn", width=16),
        digits("cnn", width=64),
        digits("mlp"),
        digits("mlp", width=1024),
        {**digits("cnn"), "classes": 3},
    ],
)
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
    code = (
        "import sys, aidc.planner.host as h, aidc.planner.plan; "
        "h.predict_step(h.zoo_network({'model': 'cnn', 'input_shape': [1, 8, 8], 'classes': 10}, 4), "
        "h.HostProbe(seconds=0.001)); h.loopback_seconds(1 << 12, 0.01); "
        "assert 'torch' not in sys.modules, 'planner imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=600)


# --- DDP over gloo on one host (the train stage's 2-worker epoch) ---------------------------------------------


@dataclass
class FixedLoopback(FixedProbe):
    """FixedProbe plus a loopback of 10 µs one-way latency and 4 GB/s."""

    def loopback(self) -> tuple[float, float]:
        return 10e-6, 4e9


def test_ring_all_reduce_matches_the_formula_by_hand() -> None:
    from aidc.planner.iteration import ring_all_reduce

    # 2 workers, 605,224 B (the digits CNN's fp32 gradients) at 1 GB/s, α = 100 µs: S/B + 2α
    assert ring_all_reduce(605_224, 2, 1e9, 1e-4) == pytest.approx(605.224e-6 + 200e-6)
    # 4 workers: 2·3/4 · 8 MB / 2 GB/s + 6 · 50 µs = 6 ms + 0.3 ms
    assert ring_all_reduce(8e6, 4, 2e9, 50e-6) == pytest.approx(6.3e-3)
    assert ring_all_reduce(8e6, 1, 2e9, 50e-6) == 0.0


def test_ddp_buckets_are_one_mib_then_25_mib() -> None:
    from aidc.planner.host import ddp_buckets

    mib = 1 << 20
    assert ddp_buckets(605_224) == [605_224]
    assert ddp_buckets(30 * mib) == [mib, 25 * mib, 4 * mib]


def test_gloo_all_reduce_is_the_ring_at_gloos_share_of_the_loopback() -> None:
    from aidc.planner.host import HostModel, gloo_all_reduce_seconds

    model = HostModel(gloo_latency=10.0, gloo_bandwidth=0.25)
    # 2 workers: S/(0.25 · 4 GB/s) + 2 · 10 · 10 µs = 605.224 µs + 200 µs
    assert gloo_all_reduce_seconds(605_224, 2, 10e-6, 4e9, model) == pytest.approx(805.224e-6)
    # two buckets (1 MiB and 1 MiB): twice the latency terms
    assert gloo_all_reduce_seconds(2 << 20, 2, 10e-6, 4e9, model) == pytest.approx(2 * ((1 << 20) / 1e9 + 200e-6))


def test_core_share_when_workers_and_other_load_outnumber_the_cores() -> None:
    from aidc.planner.host import core_share

    assert core_share(2, 1, 2) == 1.0  # one thread per worker, one core each
    assert core_share(2, 2, 2) == 0.5  # two threads each on two cores
    assert core_share(2, 1, 2, background=2.0) == 0.5
    assert core_share(1, 1, 2, background=0.5) == 1.0


def test_ddp_epoch_adds_the_all_reduce_and_reducer_to_each_step() -> None:
    from aidc.planner.host import DEFAULT_HOST_MODEL as M
    from aidc.planner.host import gloo_all_reduce_seconds, predict_ddp_epoch

    probe = FixedLoopback()
    net = zoo_network(digits("cnn", width=32), 32)
    single = predict_step(net, probe)
    two = predict_ddp_epoch(net, 2, 2334, probe, cores=2)
    assert two["steps"] == 37  # ⌈⌈2334 / 2⌉ / 32⌉
    all_reduce = gloo_all_reduce_seconds(4 * net.params, 2, 10e-6, 4e9)
    reducer = (M.ddp_calls + M.ddp_tensor_calls * net.param_tensors) * M.framework_call * 1.1e-6
    assert two["all_reduce_s"] == pytest.approx(all_reduce)
    assert two["epoch_s"] == pytest.approx(37 * (single["loop_s"] + all_reduce + reducer))
    # a busy host (two other runnable threads on two cores) halves each worker's core: the epoch doubles
    busy = predict_ddp_epoch(net, 2, 2334, probe, cores=2, background=2.0)
    assert busy["epoch_s"] == pytest.approx(2 * two["epoch_s"])
    # one worker: no all-reduce, no reducer, twice the steps
    one = predict_ddp_epoch(net, 1, 2334, probe, cores=2)
    assert one["all_reduce_s"] == one["reducer_s"] == 0 and one["steps"] == 73


def test_loopback_probe_measures_latency_and_bandwidth() -> None:
    from aidc.planner.host import loopback_seconds

    latency, bandwidth = loopback_seconds(1 << 16, seconds=0.02)
    assert 0 < latency < 0.1 and bandwidth > 1e6
