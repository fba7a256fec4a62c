"""What a compressed model is worth, measured: size on disk, parameters, ONNX Runtime latency, accuracy and F1."""

from __future__ import annotations

import gzip
import statistics
import time
from typing import Any

import numpy as np

INPUT_NAME, OUTPUT_NAME = "images", "logits"  # as serving.export names them


def ort_session(blob: bytes, threads: int = 1) -> Any:
    """A CPU session with a fixed thread count, so two models are timed on the same footing."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])


def ort_logits(blob: bytes, x: np.ndarray, batch: int = 512) -> np.ndarray:
    session = ort_session(blob)
    out = [session.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def latency_ms(blob: bytes, sample: np.ndarray, batch: int, *, repeats: int = 30, warmup: int = 5) -> float:
    """Median wall time of one ONNX Runtime call on ``batch`` rows (rows of ``sample`` repeated as needed)."""
    session = ort_session(blob)
    reps = -(-batch // max(len(sample), 1))
    x = np.ascontiguousarray(np.concatenate([sample] * reps)[:batch])
    for _ in range(warmup):
        session.run([OUTPUT_NAME], {INPUT_NAME: x})
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        session.run([OUTPUT_NAME], {INPUT_NAME: x})
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000.0


def onnx_parameters(blob: bytes) -> dict[str, int]:
    """Weights stored in the ONNX graph: every element, and the nonzero ones (a sparse model has many zeros)."""
    import onnx
    from onnx import numpy_helper

    total = nonzero = 0
    for init in onnx.load_from_string(blob).graph.initializer:
        values = numpy_helper.to_array(init)
        if values.size <= 1:  # scales, zero points, shapes: bookkeeping, not weights
            continue
        total += int(values.size)
        nonzero += int(np.count_nonzero(values))
    return {"parameters": total, "nonzero_parameters": nonzero}


def profile(
    blob: bytes, x_test: np.ndarray, y_test: np.ndarray, labels: list[int], *, repeats: int = 30
) -> dict[str, Any]:
    """Everything the comparison table shows for one ONNX model, all measured here."""
    from aidc.evaluation.metrics import classification_metrics

    predicted = ort_logits(blob, x_test).argmax(axis=1)
    metrics = classification_metrics(y_test, predicted, labels)
    return {
        "size_bytes": len(blob),
        "size_gzip_bytes": len(gzip.compress(blob, compresslevel=9, mtime=0)),
        **onnx_parameters(blob),
        "latency_ms_b1": latency_ms(blob, x_test[:32], 1, repeats=repeats),
        "latency_ms_b32": latency_ms(blob, x_test[:32], 32, repeats=repeats),
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
    }


def comparison(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """The child against its parent: ratios for what should shrink, differences for what should hold."""

    def ratio(key: str) -> float | None:
        return child[key] / parent[key] if parent.get(key) else None

    return {
        "size_ratio": ratio("size_bytes"),
        "size_gzip_ratio": ratio("size_gzip_bytes"),
        "parameter_ratio": ratio("parameters"),
        "latency_ratio_b1": ratio("latency_ms_b1"),
        "latency_ratio_b32": ratio("latency_ms_b32"),
        "accuracy_delta": child["accuracy"] - parent["accuracy"],
        "macro_f1_delta": child["macro_f1"] - parent["macro_f1"],
    }
