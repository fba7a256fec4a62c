"""Metrics by task: a classifier's accuracy, macro precision/recall/F1, per-class figures and confusion matrix; a
regression's MSE, RMSE, MAE and R²."""

from __future__ import annotations

from typing import Any

import numpy as np


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[int]) -> dict[str, Any]:
    """Everything a reviewer reads off a classifier, JSON-ready. Confusion rows are true labels, columns predicted."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "per_class": {
            str(c): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(labels, precision, recall, f1, support, strict=False)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "labels": labels,
        "n": int(len(y_true)),
    }


CLASSIFICATION_SCALARS = ("accuracy", "macro_precision", "macro_recall", "macro_f1")
REGRESSION_SCALARS = ("mse", "rmse", "mae", "r2")


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Mean squared and absolute error, its root, and R² (1 − SSE/SST: 1 is perfect, 0 no better than the mean)."""
    y_true, y_pred = y_true.reshape(len(y_true), -1), y_pred.reshape(len(y_pred), -1)
    err = y_pred - y_true
    mse = float((err**2).mean()) if err.size else 0.0
    total = float(((y_true - y_true.mean(axis=0)) ** 2).sum())
    return {
        "mse": mse,
        "rmse": mse**0.5,
        "mae": float(np.abs(err).mean()) if err.size else 0.0,
        "r2": 1.0 - float((err**2).sum()) / total if total > 0 else 0.0,
        "n": int(len(y_true)),
    }
