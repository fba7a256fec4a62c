"""The export stage: the trained model as ONNX with a dynamic batch axis, checked and compared with PyTorch."""

from __future__ import annotations

import traceback
import warnings
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aidc.errors import StageFailed
from aidc.pipeline.stage import Stage, StageContext

INPUT_NAME, OUTPUT_NAME = "images", "logits"  # an image classifier's; other models' are named by what they carry
TOKENIZER_KEY = "aidc.tokenizer"  # a text model's ONNX metadata: its fitted tokenizer, as the data stage saved it


def tensor_names(sample: np.ndarray, arch: dict[str, Any] | None = None) -> tuple[str, str]:
    """The ONNX input and output names: ``images``/``logits`` for an image classifier (as served so far), else
    ``tokens`` (int64 token ids, a text model's) or ``inputs``, and ``logits`` (a classifier) or ``outputs`` (a
    regression)."""
    regression = (arch or {}).get("task") == "regression"
    given = "images" if sample.ndim == 4 else "tokens" if sample.dtype.kind in "iu" else "inputs"
    return given, ("outputs" if regression else "logits")


class ExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tolerance: float = Field(1e-4, gt=0, description="largest |ONNX Runtime − PyTorch| allowed on the test split")
    opset: int | None = Field(None, ge=17, le=23, description="ONNX opset (default: the exporter's)")
    on_failure: Literal["skip", "fail"] = Field(
        "skip",
        description="a model the exporter cannot turn into ONNX: skip (say why; the checkpoint is still registered "
        "and serving skips it) or fail the run",
    )


def to_onnx(
    model: Any, sample: np.ndarray, opset: int | None = None, names: tuple[str, str] = (INPUT_NAME, OUTPUT_NAME)
) -> bytes:
    """Serialized ONNX of ``model`` (torch.export based exporter); the first axis is a symbolic batch."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (torch.from_numpy(sample),),
            None,
            input_names=[names[0]],
            output_names=[names[1]],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    return program.model_proto.SerializeToString()  # type: ignore[union-attr,no-any-return]


def with_metadata(blob: bytes, entries: dict[str, str]) -> bytes:
    """The ONNX model with ``entries`` in its metadata (``metadata_props``; ONNX Runtime's custom_metadata_map)."""
    import onnx

    model = onnx.load_from_string(blob)
    for key, value in entries.items():
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()  # type: ignore[no-any-return]


def onnx_logits(blob: bytes, x: np.ndarray) -> np.ndarray:
    """The model's first output for ``x`` through ONNX Runtime (whatever its tensors are named)."""
    import onnxruntime as ort

    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]  # type: ignore[no-any-return]


class ExportStage(Stage):
    kind = "export"
    Config = ExportConfig
    inputs = {
        "checkpoint": "a train stage's checkpoint",
        "model": "its architecture",
        "data": "arrays for the parity check",
    }
    outputs = {"onnx": "the ONNX model", "parity": "ONNX Runtime vs PyTorch on the test split"}

    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        import onnx

        from aidc.data.preprocess import load_arrays
        from aidc.training.loop import evaluate_arrays
        from aidc.training.zoo import load_weights

        cfg: ExportConfig = config
        model = load_weights(inputs["model"], ctx.get_artifact(inputs["checkpoint"]))
        data = load_arrays(ctx.get_artifact(inputs["data"]))
        x = data["x_test"]
        ctx.progress("export", 0, 3, force=True, step="onnx")
        try:
            blob = to_onnx(model, x[:2], cfg.opset, tensor_names(x, inputs["model"]))
        except Exception as exc:
            if cfg.on_failure == "fail":
                raise
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            with open(ctx.log_path, "a", encoding="utf-8") as fh:
                fh.write(traceback.format_exc())
            ctx.log(
                f"cannot export this model to ONNX ({reason}); the checkpoint is registered without it and the "
                "deploy stage will skip it (set export.on_failure: fail to stop the run instead)"
            )
            ctx.progress("export", 3, 3, force=True, step="skipped")
            return {"onnx": None, "parity": {"exported": False, "reason": reason}}
        if "tokenizer" in data:  # a text model: what turns a client's text into its input travels inside it
            blob = with_metadata(blob, {TOKENIZER_KEY: data["tokenizer"].tobytes().decode()})
        ctx.progress("export", 1, 3, force=True, step="checker")
        try:
            onnx.checker.check_model(onnx.load_from_string(blob), full_check=True)
        except onnx.checker.ValidationError as exc:
            raise StageFailed(
                f"the exported model is not valid ONNX: {exc}",
                stage=ctx.stage,
                run_id=ctx.run_id,
                cause="onnx.checker rejected the model",
            ) from exc
        ctx.progress("export", 2, 3, force=True, step="parity")
        diff = float(np.abs(onnx_logits(blob, x) - evaluate_arrays(model, x)).max()) if len(x) else 0.0
        if diff > cfg.tolerance:
            raise StageFailed(
                f"ONNX Runtime differs from PyTorch by {diff:.2e} (> {cfg.tolerance:g}) on the test split",
                stage=ctx.stage,
                run_id=ctx.run_id,
                cause="export parity check failed",
                hint="try another opset (export.opset), or raise export.tolerance if the difference is expected",
            )
        ref = ctx.put_artifact(blob, kind="onnx", name="model.onnx")
        ctx.progress("export", 3, 3, force=True, step="done")
        ctx.log(f"ONNX {len(blob)} bytes, parity max |diff| {diff:.2e} on {len(x)} test images")
        return {"onnx": ref, "parity": {"max_abs_diff": diff, "tolerance": cfg.tolerance, "rows": int(len(x))}}
