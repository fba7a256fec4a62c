"""Post-training INT8 quantisation with ONNX Runtime's tools: dynamic (weights only ahead of time) and static
(activations calibrated on batches of the training split)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from aidc.compression.measure import INPUT_NAME


class _Batches:
    """ONNX Runtime's CalibrationDataReader over a few batches of training images."""

    def __init__(self, x: np.ndarray, batch_size: int, batches: int) -> None:
        self._it: Iterator[dict[str, np.ndarray]] = (
            {INPUT_NAME: np.ascontiguousarray(x[i : i + batch_size])}
            for i in range(0, min(len(x), batch_size * batches), batch_size)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # (ORT calls it between calibration passes in some methods; one pass is ours)
        pass


def calibration_rows(x_train: np.ndarray, batch_size: int, batches: int, seed: int) -> np.ndarray:
    """A random draw of the training split, ``batches`` × ``batch_size`` rows (never test or validation data)."""
    rows = min(len(x_train), batch_size * batches)
    return x_train[np.random.default_rng(seed).permutation(len(x_train))[:rows]]


def quantize_int8(
    blob: bytes,
    mode: Literal["dynamic", "static"],
    *,
    calibration: np.ndarray | None = None,
    batch_size: int = 32,
    per_channel: bool = True,
) -> bytes:
    """The FP32 ONNX model ``blob`` with INT8 weights (and, static, INT8 activations). ``calibration``: the rows the
    static mode measures activation ranges on."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_dynamic,
        quantize_static,
    )

    with tempfile.TemporaryDirectory(prefix="aidc-quant-") as tmp:
        fp32, prepared, out = Path(tmp) / "fp32.onnx", Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        fp32.write_bytes(blob)
        # shape inference and graph clean-up first, as ORT's docs advise: more of the graph gets quantised
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        extra: dict[str, Any] = {}
        if mode == "dynamic":
            quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QInt8, per_channel=per_channel)
        else:
            if calibration is None or not len(calibration):
                raise ValueError("static quantisation needs calibration rows")
            reader = _Batches(calibration, batch_size, -(-len(calibration) // batch_size))
            quantize_static(
                str(prepared),
                str(out),
                reader,
                quant_format=QuantFormat.QOperator,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options=extra,
            )
        return out.read_bytes()
