"""The host probe turns a measured matmul rate into a step-time prediction (numbers, not speed, are checked)."""

from __future__ import annotations

import sys

from aidc.planner.host import conv2d, linear, matmul_flops, predict_step


def test_prediction_counts_three_gemms_per_layer_and_stays_torch_free() -> None:
    layers = [conv2d("c1", 64, 1, 16, 3, 8, 8), linear("fc", 64, 1024, 10)]
    pred = predict_step(layers)
    assert pred["flops"] == 3 * (2 * 64 * 64 * 9 * 16 + 2 * 64 * 1024 * 10)
    assert pred["step_s"] > pred["overhead_s"] > 0
    assert matmul_flops(64, 64, 64, 0.01) > 0
    assert "torch" not in sys.modules or "aidc.planner.host" in sys.modules
