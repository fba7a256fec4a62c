"""Open Inference Protocol v2 REST codec: JSON tensors and the binary tensor data extension, both directions."""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from aidc.errors import InvalidInput

if TYPE_CHECKING:
    from aidc.serving.model import OnnxModel, TensorSpec

HEADER_LENGTH = "Inference-Header-Content-Length"
JSON_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"

# OIP datatypes → little-endian numpy dtypes (the binary extension is little-endian on the wire).
OIP_TO_NUMPY: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}


_DATATYPE_OF: dict[np.dtype[Any], str] = {}


def oip_datatype(dtype: np.dtype[Any]) -> str:
    """The OIP datatype carrying a numpy dtype (strings and bytes travel as BYTES)."""
    known = _DATATYPE_OF.get(dtype)
    if known is None:
        known = _DATATYPE_OF[dtype] = _find_datatype(dtype)
    return known


def _find_datatype(dtype: np.dtype[Any]) -> str:
    if dtype.kind in ("O", "U", "S"):
        return "BYTES"
    for name, candidate in OIP_TO_NUMPY.items():
        if candidate.kind == dtype.kind and candidate.itemsize == dtype.itemsize and name != "BYTES":
            return name
    raise InvalidInput(f"numpy dtype {dtype} has no OIP v2 datatype")


@dataclass
class RequestedOutput:
    name: str
    binary: bool


@dataclass
class InferRequest:
    """A decoded, validated inference request: input arrays by name and how the answer should look."""

    inputs: dict[str, np.ndarray]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[RequestedOutput] | None = None  # None: every output, in the model's order
    binary_output: bool = False


def _shape_text(shape: Any) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


# --------------------------------------------------------------------------------------------- tensors


def decode_tensor(obj: Any, binary: bytes | None, what: str) -> np.ndarray:
    """One tensor object (JSON ``data`` or its slice of the binary tail) as a numpy array."""
    datatype, shape = obj.get("datatype"), obj.get("shape")
    if datatype not in OIP_TO_NUMPY:
        raise InvalidInput(
            f"{what}: datatype {datatype!r} is not an OIP v2 datatype", hint="use one of " + ", ".join(OIP_TO_NUMPY)
        )
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise InvalidInput(f"{what}: shape must be a list of non-negative integers, got {shape!r}")
    count = math.prod(shape)
    dtype = OIP_TO_NUMPY[datatype]
    if binary is not None:
        if datatype == "BYTES":
            array = _unpack_bytes(binary, what)
        else:
            if len(binary) != count * dtype.itemsize:
                raise InvalidInput(
                    f"{what}: binary_data_size is {len(binary)} bytes but shape "
                    f"{_shape_text(shape)} of {datatype} needs {count * dtype.itemsize}"
                )
            array = np.frombuffer(binary, dtype=dtype)
    else:
        if "data" not in obj:
            raise InvalidInput(f"{what}: has neither 'data' nor a 'binary_data_size' parameter")
        array = _json_array(obj["data"], datatype, dtype, what)
    if array.size != count:
        raise InvalidInput(f"{what}: data has {array.size} elements but shape {_shape_text(shape)} needs {count}")
    return array.reshape(shape)


def _json_array(data: Any, datatype: str, dtype: np.dtype[Any], what: str) -> np.ndarray:
    try:
        if datatype == "BYTES":
            flat = np.asarray(data, dtype=object).reshape(-1)
            return np.array([v.encode() if isinstance(v, str) else v for v in flat], dtype=object)
        if datatype == "BOOL" and not _all_bools(data):
            raise ValueError("BOOL data must be true/false")
        return np.asarray(data, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"{what}: data is not a rectangular list of {datatype} values ({exc})") from None


def _all_bools(data: Any) -> bool:
    if isinstance(data, list):
        return all(_all_bools(v) for v in data)
    return isinstance(data, bool)


def _unpack_bytes(buffer: bytes, what: str) -> np.ndarray:
    """BYTES elements on the wire: each is a 4-byte little-endian length then that many bytes."""
    items: list[bytes] = []
    offset = 0
    while offset < len(buffer):
        if offset + 4 > len(buffer):
            raise InvalidInput(f"{what}: truncated BYTES element length in binary data")
        (size,) = struct.unpack_from("<I", buffer, offset)
        offset += 4
        if offset + size > len(buffer):
            raise InvalidInput(f"{what}: BYTES element overruns the binary data")
        items.append(buffer[offset : offset + size])
        offset += size
    return np.array(items, dtype=object)


def _pack_bytes(array: np.ndarray) -> bytes:
    parts = []
    for value in array.reshape(-1):
        raw = value.encode() if isinstance(value, str) else bytes(value)
        parts.append(struct.pack("<I", len(raw)) + raw)
    return b"".join(parts)


def tensor_bytes(array: np.ndarray) -> bytes:
    """An array's binary-extension encoding."""
    if oip_datatype(array.dtype) == "BYTES":
        return _pack_bytes(array)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def tensor_json_data(array: np.ndarray) -> list[Any]:
    if array.dtype.kind in ("O", "S"):
        return [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in array.reshape(-1)]
    return array.reshape(-1).tolist()


# ---------------------------------------------------------------------------------------- framing


def split_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """Split a body into its JSON header and binary tail (the tail is empty without the extension)."""
    if header_length is None:
        json_part, tail = body, b""
    else:
        try:
            size = int(header_length)
        except ValueError:
            raise InvalidInput(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
        if not 0 <= size <= len(body):
            raise InvalidInput(f"{HEADER_LENGTH} is {size} but the body has only {len(body)} bytes")
        json_part, tail = body[:size], body[size:]
    try:
        header = json.loads(json_part)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"request body is not valid JSON: {exc}", hint=f"binary bodies need the {HEADER_LENGTH} header"
        ) from None
    if not isinstance(header, dict):
        raise InvalidInput("request body must be a JSON object")
    return header, tail


def _tensors(header: dict[str, Any], key: str, tail: bytes, kind: str) -> dict[str, np.ndarray]:
    objs = header.get(key)
    if not isinstance(objs, list) or not all(isinstance(o, dict) for o in objs):
        raise InvalidInput(f"'{key}' must be a list of tensor objects")
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for obj in objs:
        name = obj.get("name")
        if not isinstance(name, str):
            raise InvalidInput(f"every {kind} needs a string 'name'")
        if name in arrays:
            raise InvalidInput(f"{kind} {name!r} appears twice")
        what = f"{kind} {name!r}"
        size = (obj.get("parameters") or {}).get("binary_data_size")
        chunk = None
        if size is not None:
            if not isinstance(size, int) or size < 0:
                raise InvalidInput(f"{what}: binary_data_size must be a non-negative integer")
            if "data" in obj:
                raise InvalidInput(f"{what}: has both 'data' and binary_data_size; send one")
            if offset + size > len(tail):
                raise InvalidInput(
                    f"{what}: binary_data_size {size} runs past the end of the body "
                    f"({len(tail) - offset} binary bytes left)"
                )
            chunk = tail[offset : offset + size]
            offset += size
        arrays[name] = decode_tensor(obj, chunk, what)
    if offset != len(tail):
        raise InvalidInput(f"body has {len(tail) - offset} binary bytes no tensor's binary_data_size claims")
    return arrays


# ------------------------------------------------------------------------------------- server side


def _check_against(array: np.ndarray, obj_datatype: str, spec: TensorSpec, model: str) -> None:
    if obj_datatype != spec.datatype:
        raise InvalidInput(f"input {spec.name!r} is {obj_datatype} but model {model!r} expects {spec.datatype}")
    shape = array.shape
    if len(shape) != len(spec.shape) or any(w != -1 and w != d for d, w in zip(shape, spec.shape, strict=False)):
        raise InvalidInput(
            f"input {spec.name!r} has shape {_shape_text(shape)} but model {model!r} expects "
            f"{_shape_text(spec.shape)} (-1 means any size)"
        )


def decode_infer_request(body: bytes, header_length: str | None, model: OnnxModel) -> InferRequest:
    """Decode and validate an infer request against the model's inputs and outputs."""
    header, tail = split_body(body, header_length)
    arrays = _tensors(header, "inputs", tail, "input")
    expected = {t.name for t in model.inputs}
    for name in arrays:
        if name not in expected:
            raise InvalidInput(
                f"model {model.name!r} has no input named {name!r}; its inputs are: " + ", ".join(sorted(expected))
            )
    datatypes = {o["name"]: o["datatype"] for o in header["inputs"]}
    for spec in model.inputs:
        if spec.name not in arrays:
            raise InvalidInput(
                f"model {model.name!r} needs input {spec.name!r} ({spec.datatype} "
                f"{_shape_text(spec.shape)}); the request does not have it"
            )
        _check_against(arrays[spec.name], datatypes[spec.name], spec, model.name)
    parameters = header.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput("'parameters' must be a JSON object")
    binary_output = bool(parameters.get("binary_data_output", False))
    outputs = None
    if header.get("outputs") is not None:
        if not isinstance(header["outputs"], list):
            raise InvalidInput("'outputs' must be a list of requested outputs")
        outputs = []
        known = {t.name for t in model.outputs}
        for obj in header["outputs"]:
            wanted = obj.get("name") if isinstance(obj, dict) else None
            if not isinstance(wanted, str) or wanted not in known:
                raise InvalidInput(
                    f"model {model.name!r} has no output named {wanted!r}; its outputs are: " + ", ".join(sorted(known))
                )
            binary = (obj.get("parameters") or {}).get("binary_data", binary_output)
            outputs.append(RequestedOutput(wanted, bool(binary)))
    request_id = header.get("id")
    return InferRequest(
        inputs=arrays,
        id=None if request_id is None else str(request_id),
        parameters=parameters,
        outputs=outputs,
        binary_output=binary_output,
    )


def encode_infer_response(
    model_name: str, model_version: str, request: InferRequest, results: dict[str, np.ndarray]
) -> tuple[bytes, dict[str, str]]:
    """The response body and headers: JSON, or JSON + binary tail with the header length set."""
    wanted = request.outputs or [RequestedOutput(n, request.binary_output) for n in results]
    header: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request.id is not None:
        header["id"] = request.id
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for want in wanted:
        array = results[want.name]
        obj: dict[str, Any] = {"name": want.name, "datatype": oip_datatype(array.dtype), "shape": list(array.shape)}
        if want.binary:
            raw = tensor_bytes(array)
            obj["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            obj["data"] = tensor_json_data(array)
        outputs.append(obj)
    header["outputs"] = outputs
    head = json.dumps(header, separators=(",", ":")).encode()
    if not chunks:
        return head, {"content-type": JSON_TYPE}
    return head + b"".join(chunks), {"content-type": BINARY_TYPE, HEADER_LENGTH: str(len(head))}


# ------------------------------------------------------------------------------------- client side


def encode_infer_request(
    inputs: dict[str, np.ndarray],
    *,
    binary: bool = False,
    binary_output: bool = False,
    outputs: list[str] | None = None,
    request_id: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A request body and headers, as an OIP v2 client sends them."""
    header: dict[str, Any] = {"inputs": []}
    if request_id is not None:
        header["id"] = request_id
    chunks: list[bytes] = []
    for name, array in inputs.items():
        array = np.asarray(array)
        obj: dict[str, Any] = {"name": name, "datatype": oip_datatype(array.dtype), "shape": list(array.shape)}
        if binary:
            raw = tensor_bytes(array)
            obj["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            obj["data"] = tensor_json_data(array)
        header["inputs"].append(obj)
    if outputs is not None:
        header["outputs"] = [{"name": n, "parameters": {"binary_data": binary_output}} for n in outputs]
    elif binary_output:
        header["parameters"] = {"binary_data_output": True}
    head = json.dumps(header, separators=(",", ":")).encode()
    if not chunks:
        return head, {"content-type": JSON_TYPE}
    return head + b"".join(chunks), {"content-type": BINARY_TYPE, HEADER_LENGTH: str(len(head))}


def decode_infer_response(body: bytes, header_length: str | None) -> dict[str, np.ndarray]:
    """Output arrays by name, in the order the server sent them."""
    header, tail = split_body(body, header_length)
    return _tensors(header, "outputs", tail, "output")
