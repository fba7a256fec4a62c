"""A recorded digits run, written through the MetadataStore API with no training: previews and read-command tests.

It records exactly what the pipeline's stages record (see the data contract in docs/runs-and-models.md), so the
report and the read commands can be exercised in milliseconds.
"""

from __future__ import annotations

from typing import Any

from aidc.store.metadata.base import MetadataStore

CLASSES = list(range(10))
SPEC: dict[str, Any] = {
    "name": "digits",
    "stages": [
        {"name": "data", "uses": "data", "with": {"dataset": "digits", "augment": True}},
        {"name": "train", "uses": "train", "with": {"model": "cnn", "epochs": 3, "lr": 0.01}},
        {"name": "evaluate", "uses": "evaluate", "with": {"min_accuracy": 0.9}},
        {"name": "export", "uses": "export"},
        {"name": "register", "uses": "register", "with": {"name": "digits-cnn", "stage": "staging"}},
        {"name": "deploy", "uses": "deploy"},
    ],
}


def confusion_matrix() -> list[list[int]]:
    """36 right on the diagonal (37 for class 9), and three mistakes: 3→8, 5→9 (twice)."""
    m = [[36 if i == j else 0 for j in CLASSES] for i in CLASSES]
    m[3][3], m[3][8] = 35, 1
    m[5][5], m[5][9] = 34, 2
    m[9][9] = 37
    return m


def _digest(c: str) -> str:
    return "sha256:" + c * 64


def _artifact(store: MetadataStore, run_id: str, stage: str, kind: str, name: str, c: str) -> dict[str, Any]:
    digest = _digest(c)
    uri = f"file:///tmp/aidc/artifacts/sha256/{c * 2}/{c * 62}"
    store.add_artifact(digest, 4096, kind, name, uri, run_id=run_id, stage=stage)
    return {"artifact": digest, "size": 4096, "uri": uri, "kind": kind, "name": name}


def _stage(
    store: MetadataStore,
    run_id: str,
    name: str,
    status: str = "succeeded",
    *,
    outputs: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    st = store.start_stage(run_id, name, name, cache_key=f"{run_id}-{name}", log_path=f"/tmp/aidc/{run_id}/{name}.log")
    store.finish_stage(st.id, status, outputs=outputs, error=error)


def record_succeeded_run(store: MetadataStore, run_id: str = "20250101-120000-a1b2c3") -> str:
    """data → train (3 epochs) → evaluate → export → register (digits-cnn, staging) → deploy, all succeeded."""
    store.create_run(run_id, "digits", SPEC, "examples/digits/pipeline.yaml")
    splits = _artifact(store, run_id, "data", "dataset", "splits.npz", "a")
    train_counts = {str(c): 144 for c in CLASSES}
    dv = store.register_dataset_version(
        "digits",
        splits["artifact"],
        fingerprint="f" * 64,
        run_id=run_id,
        schema={"features": {"shape": [1, 8, 8], "dtype": "float32"}, "label": {"dtype": "int64", "classes": CLASSES}},
        stats={
            "rows_in": 1797,
            "dropped_invalid": 0,
            "dropped_duplicate": 1,
            "augmented": 1437,
            "splits": {"train": 1440, "val": 356, "test": 361},
            "pixel_mean": 4.88,
            "pixel_std": 6.02,
        },
        class_balance={
            "train": train_counts,
            "val": {str(c): 36 for c in CLASSES},
            "test": {str(c): 36 for c in CLASSES},
        },
    )
    _stage(store, run_id, "data", outputs={"dataset": {"dataset_version_id": dv.id, "ref": dv.ref}, "splits": splits})

    checkpoint = _artifact(store, run_id, "train", "checkpoint", "epoch-3.pt", "c")
    store.add_metrics(
        run_id,
        "train",
        [
            (name, epoch, value)
            for epoch, values in enumerate(
                [(1.21, 0.62, 0.55, 0.85, 2.1), (0.41, 0.88, 0.22, 0.94, 1.9), (0.19, 0.95, 0.12, 0.97, 1.8)], start=1
            )
            for name, value in zip(
                ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_seconds"), values, strict=True
            )
        ],
    )
    _stage(store, run_id, "train", outputs={"checkpoint": checkpoint})

    per_class = {str(c): {"precision": 0.97, "recall": 0.97, "f1": 0.97, "support": 36} for c in CLASSES}
    metrics = {
        "accuracy": 0.9861,
        "macro_precision": 0.9862,
        "macro_recall": 0.9861,
        "macro_f1": 0.9860,
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(),
        "labels": CLASSES,
        "n": 361,
    }
    _stage(store, run_id, "evaluate", outputs={"metrics": metrics})

    onnx = _artifact(store, run_id, "export", "onnx", "model.onnx", "e")
    _stage(
        store,
        run_id,
        "export",
        outputs={"onnx": onnx, "parity": {"max_abs_diff": 3.1e-6, "tolerance": 1e-4, "rows": 361}},
    )

    mv = store.register_model_version(
        "digits-cnn",
        onnx_digest=onnx["artifact"],
        checkpoint_digest=checkpoint["artifact"],
        run_id=run_id,
        dataset_version_id=dv.id,
        stage="staging",
        metrics={"accuracy": 0.9861, "macro_f1": 0.9860},
    )
    store.add_lineage(("dataset_version", str(dv.id)), ("run", run_id), "input_to")
    store.add_lineage(("run", run_id), ("checkpoint", checkpoint["artifact"]), "produced")
    store.add_lineage(("checkpoint", checkpoint["artifact"]), ("onnx", onnx["artifact"]), "exported_to")
    store.add_lineage(("onnx", onnx["artifact"]), ("model_version", str(mv.id)), "registered_as")
    _stage(store, run_id, "register", outputs={"model": {"model_version_id": mv.id, "ref": mv.ref, "stage": mv.stage}})

    dep = store.add_deployment("digits-cnn", mv.id, "http://127.0.0.1:8765", 4242)
    sample = [{"label": c, "predicted": c} for c in CLASSES[:5]]
    _stage(
        store,
        run_id,
        "deploy",
        outputs={
            "deployment": {"deployment_id": dep.id, "url": dep.url, "pid": dep.pid},
            "checks": {"agreement": 1.0, "requests": 361, "sample": sample},
        },
    )
    store.finish_run(run_id, "succeeded")
    return run_id


def record_failed_run(
    store: MetadataStore, run_id: str = "20250101-130000-d4e5f6", dataset_version_id: int | None = None
) -> str:
    """A rerun whose data stage was cached and whose train stage failed in the user's model code."""
    store.create_run(run_id, "digits", SPEC, "examples/digits/pipeline.yaml")
    outputs = {"dataset": {"dataset_version_id": dataset_version_id, "ref": "digits:1"}} if dataset_version_id else {}
    st = store.start_stage(run_id, "data", "data", cache_key="cached-data", log_path=None)
    store.finish_stage(st.id, "cached", outputs=outputs, cached_from=1)
    cause = "RuntimeError: mat1 and mat2 shapes cannot be multiplied"
    error = {
        "code": "stage_failed",
        "message": f"stage 'train' failed: {cause}",
        "where": None,
        "stage": "train",
        "hint": f"see /tmp/aidc/{run_id}/train.log; fix and continue with `aidc run --resume {run_id}`",
        "cause": cause,
        "log_path": f"/tmp/aidc/{run_id}/train.log",
        "run_id": run_id,
    }
    store.add_metrics(run_id, "train", [("train_loss", 1, 2.30)])
    _stage(store, run_id, "train", "failed", error=error)
    store.finish_run(run_id, "failed", error=error)
    return run_id


def record_sample_runs(store: MetadataStore) -> tuple[str, str]:
    """One succeeded run and, after it, one failed run; returns their ids."""
    ok = record_succeeded_run(store)
    dv = store.list_dataset_versions("digits")[-1]
    return ok, record_failed_run(store, dataset_version_id=dv.id)
