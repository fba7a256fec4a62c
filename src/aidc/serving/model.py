"""An ONNX model loaded into an ONNX Runtime session, described in Open Inference Protocol terms."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aidc.errors import BackendUnavailable, NotFound

PLATFORM = "onnxruntime_onnx"

# ONNX Runtime's element type names → OIP v2 datatypes.
ORT_TO_OIP: dict[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: its name, OIP datatype and shape (-1 for a dynamic axis)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def host_threads() -> int:
    """CPU cores this process may run on (cgroup/affinity aware where the OS tells us)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def choose_providers(available: list[str], cuda_visible_devices: str | None = None) -> list[str]:
    """ONNX Runtime execution providers to ask for, best first; the CPU provider always comes last.

    CUDA when this ONNX Runtime build has it (the ``onnxruntime-gpu`` package) and the process may see a GPU:
    ``CUDA_VISIBLE_DEVICES`` set to empty or ``-1`` hides every GPU (Ray sets it to the GPUs a replica reserved).
    A CUDA provider that still fails to start (no driver) is dropped by ONNX Runtime itself, which falls back
    to the CPU; ``OnnxModel.providers`` says what the session really uses.
    """
    hidden = cuda_visible_devices is not None and cuda_visible_devices.strip() in ("", "-1")
    chosen = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available and not hidden else []
    return chosen + ["CPUExecutionProvider"]


def _spec(node: Any) -> TensorSpec:
    datatype = ORT_TO_OIP.get(node.type)
    if datatype is None:
        raise BackendUnavailable(
            f"tensor {node.name!r} has type {node.type}, which OIP v2 cannot carry",
            hint="export the model with plain numeric or string tensors",
        )
    # Symbolic ('batch') and unknown (None) dims are both dynamic to a client.
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in node.shape)
    return TensorSpec(node.name, datatype, shape)


class OnnxModel:
    """A servable model version: an ONNX Runtime session plus its OIP metadata.

    ``infer`` is thread-safe (ONNX Runtime sessions allow concurrent ``run``), but the batcher calls it
    from one thread per model so intra-op threads can use every core without oversubscription.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        name: str,
        version: str = "1",
        *,
        providers: list[str] | None = None,
        intra_op_threads: int | None = None,
        allow_spinning: bool = False,
    ) -> None:
        import onnxruntime as ort  # heavy: only when a model is actually loaded

        self.path = Path(path)
        if not self.path.is_file():
            raise NotFound(f"ONNX model file {self.path} does not exist", hint="export the model first")
        self.name = name
        self.version = str(version)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads or host_threads()
        options.inter_op_num_threads = 1
        # Spinning worker threads keep cores busy between runs, starving the event loop that parses requests
        # on the same host; they only pay when batches run back to back on many cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        available = ort.get_available_providers()
        if providers is None:
            providers = choose_providers(available, os.environ.get("CUDA_VISIBLE_DEVICES"))
        # A provider this build lacks would only be dropped by ONNX Runtime with a warning: ask for those it has.
        providers = [p for p in providers if p in available] or ["CPUExecutionProvider"]
        self._options, self._threads = options, options.intra_op_num_threads
        self._small_session: Any = None
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises its own untyped errors for corrupt files
            raise BackendUnavailable(
                f"ONNX Runtime could not load {self.path}: {exc}", hint="check that the file is a valid ONNX model"
            ) from exc
        self.providers: list[str] = list(self.session.get_providers())
        self.inputs: list[TensorSpec] = [_spec(i) for i in self.session.get_inputs()]
        self.outputs: list[TensorSpec] = [_spec(o) for o in self.session.get_outputs()]
        self._output_names = [o.name for o in self.outputs]

    @property
    def platform(self) -> str:
        return PLATFORM

    @property
    def batchable(self) -> bool:
        """Whether requests can be merged along axis 0: every input and output has a dynamic first axis."""
        return all(t.shape and t.shape[0] == -1 for t in self.inputs + self.outputs)

    def input(self, name: str) -> TensorSpec | None:
        return next((t for t in self.inputs if t.name == name), None)

    def output(self, name: str) -> TensorSpec | None:
        return next((t for t in self.outputs if t.name == name), None)

    def metadata(self, versions: list[str] | None = None) -> dict[str, Any]:
        """The OIP model metadata response body."""
        return {
            "name": self.name,
            "versions": versions or [self.version],
            "platform": self.platform,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            # OIP's optional metadata parameters: where the model runs (CUDA or CPU), as ONNX Runtime reports it.
            "parameters": {"execution_providers": list(self.providers)},
        }

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model once; returns every output by name."""
        results = self.session.run(self._output_names, inputs)
        return dict(zip(self._output_names, (np.asarray(r) for r in results), strict=False))

    def infer_small(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``infer`` for work the batcher measured to take well under a millisecond (it runs those on the loop).

        Such runs go to a second, single-threaded session on the CPU: waking ONNX Runtime's intra-op pool from
        sleep costs more than it saves on a tiny run (on a 2-core host, 84 µs vs 51 µs per digits image between
        requests). Other providers (CUDA) and single-threaded sessions just use the main session.
        """
        if self._small_session is None:
            if self._threads <= 1 or self.providers[0] != "CPUExecutionProvider":
                self._small_session = self.session
            else:
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                self._small_session = ort.InferenceSession(
                    str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
                )
        results = self._small_session.run(self._output_names, inputs)
        return dict(zip(self._output_names, (np.asarray(r) for r in results), strict=False))

    def __repr__(self) -> str:
        return f"OnnxModel({self.name!r}, version={self.version!r}, path={str(self.path)!r})"
