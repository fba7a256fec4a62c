"""INT8 ÷ FP32 under ONNX Runtime: the digits CNN and its INT8 versions (static and dynamic), latency at batch 1 and
32 on one intra-op thread, size on disk, test accuracy; printed side by side as ratios (goal: ≤ 0.6 at batch 32).

    PYTHONPATH=src .venv/bin/python benchmarks/compression.py [--epochs 8] [--repeats 300] [--width 32]
"""

from __future__ import annotations

import argparse
import platform
import statistics

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=8, help="training epochs of the FP32 model")
    ap.add_argument("--repeats", type=int, default=300, help="timed calls per batch size and model")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (median of the rounds' medians)")
    ap.add_argument("--width", type=int, default=32, help="the CNN's channels")
    args = ap.parse_args()

    import torch

    from aidc.compression.finetune import fit
    from aidc.compression.measure import latency_ms, ort_logits
    from aidc.compression.quantize import calibration_rows, quantize_int8
    from aidc.data.preprocess import normalize, split
    from aidc.serving.export import to_onnx
    from aidc.training.zoo import build_model

    torch.manual_seed(0)
    torch.set_num_threads(1)
    from sklearn.datasets import load_digits

    digits = load_digits()
    parts = split(digits.images.astype(np.float64), digits.target.astype(np.int64), val=0.15, test=0.2, seed=0)
    xs, _ = normalize({k: x for k, (x, _) in parts.items()}, method="standard", max_value=16.0)
    x_train, y_train = xs["train"][:, None].astype(np.float32), parts["train"][1]
    x_test, y_test = xs["test"][:, None].astype(np.float32), parts["test"][1]
    arch = {"model": "cnn", "input_shape": [1, 8, 8], "classes": 10, "width": args.width, "dropout": 0.1}
    model = fit(build_model(arch), x_train, y_train, epochs=args.epochs, lr=2e-3, batch_size=64, seed=0)
    fp32 = to_onnx(model, x_test[:2])
    models = {
        "fp32": fp32,
        "int8 static": quantize_int8(fp32, "static", calibration=calibration_rows(x_train, 32, 8, 0)),
        "int8 dynamic": quantize_int8(fp32, "dynamic"),
    }
    rows: dict[str, dict[str, float]] = {}
    for name, blob in models.items():
        rows[name] = {"size": len(blob), "accuracy": float((ort_logits(blob, x_test).argmax(1) == y_test).mean())}
    for batch in (1, 32):
        runs: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(args.rounds):  # interleaved, so a busy moment on a shared host hits every model alike
            for name, blob in models.items():
                runs[name].append(latency_ms(blob, x_test[:32], batch, repeats=args.repeats))
        for name in models:
            rows[name][f"b{batch}"] = statistics.median(runs[name])
    print(f"host: {platform.processor() or platform.machine()}, onnxruntime CPU provider, 1 intra-op thread")
    base = rows["fp32"]
    print(f"{'model':<14}{'size B':>10}{'÷fp32':>7}{'acc':>8}{'b1 ms':>9}{'÷fp32':>7}{'b32 ms':>9}{'÷fp32':>7}")
    for name, r in rows.items():
        print(
            f"{name:<14}{r['size']:>10,}{r['size'] / base['size']:>7.2f}{r['accuracy']:>8.4f}"
            f"{r['b1']:>9.4f}{r['b1'] / base['b1']:>7.2f}{r['b32']:>9.4f}{r['b32'] / base['b32']:>7.2f}"
        )


if __name__ == "__main__":
    main()
