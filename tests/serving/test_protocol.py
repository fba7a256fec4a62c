"""The OIP v2 codec on its own: every datatype survives JSON and binary round trips exactly."""

from __future__ import annotations

import numpy as np
import pytest

from aidc.errors import InvalidInput
from aidc.serving.protocol import HEADER_LENGTH, decode_infer_response, encode_infer_request, split_body

ARRAYS = {
    "BOOL": np.array([[True, False], [False, True]]),
    "UINT8": np.array([[0, 255]], dtype=np.uint8),
    "INT64": np.array([[-(2**62), 7]], dtype=np.int64),
    "FP16": np.array([[0.5, -2.0]], dtype=np.float16),
    "FP32": np.array([[1.25, -3.5]], dtype=np.float32),
    "FP64": np.array([[1e-300, 2.0]], dtype=np.float64),
    "BYTES": np.array([b"hello", b"", "wörld".encode()], dtype=object),
}


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("datatype", list(ARRAYS))
def test_round_trip(datatype: str, binary: bool) -> None:
    array = ARRAYS[datatype]
    body, headers = encode_infer_request({"x": array}, binary=binary)
    # A request's inputs are laid out exactly like a response's outputs, so the response decoder reads them.
    body = body.replace(b'"inputs"', b'"outputs"', 1)
    header_len = None
    if binary:
        header_len = str(int(headers[HEADER_LENGTH]) + 1)  # "outputs" is one byte longer
        assert body[int(header_len) :]  # the tensor really travelled as bytes
    decoded = decode_infer_response(body, header_len)["x"]
    assert decoded.shape == array.shape
    assert decoded.tolist() == array.tolist()


def test_framing_errors_are_precise() -> None:
    with pytest.raises(InvalidInput, match="must be an integer"):
        split_body(b"{}", "abc")
    with pytest.raises(InvalidInput, match="body has only 2 bytes"):
        split_body(b"{}", "10")
    with pytest.raises(InvalidInput, match="must be a JSON object"):
        split_body(b"[]", None)
    with pytest.raises(InvalidInput, match="binary bytes no tensor's binary_data_size claims"):
        decode_infer_response(b'{"outputs": []}xyz', "15")
