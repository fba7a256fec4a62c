"""Quantisation-aware training with ``torch.ao``: fake-quantised fine-tuning (weights per channel, activations per
tensor, as the x86 INT8 kernels run them), then converted to INT8 and exported as an ONNX model whose weights are
stored as INT8 (QuantizeLinear/DequantizeLinear around the float ops), which ONNX Runtime runs with INT8 kernels."""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from aidc.compression.finetune import fit
from aidc.compression.measure import INPUT_NAME, OUTPUT_NAME
from aidc.errors import InvalidInput

FUSABLE = (nn.Conv2d, nn.Linear)


def fusable_pairs(model: nn.Module) -> list[list[str]]:
    """Each (Conv2d | Linear, ReLU) next to each other in an ``nn.Sequential``: fused, they quantise as one op."""
    if not isinstance(model, nn.Sequential):
        raise InvalidInput(
            f"quantisation-aware training takes the zoo's sequential networks (cnn, mlp), not {type(model).__name__}",
            hint="use compress.quantize.mode: static (ONNX Runtime, any exported model)",
        )
    children = list(model.named_children())
    return [
        [a, b]
        for (a, first), (b, second) in zip(children, children[1:], strict=False)
        if isinstance(first, FUSABLE) and isinstance(second, nn.ReLU)
    ]


def quantization_aware(
    model: nn.Module,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    on_epoch: Callable[[int, float], None] = lambda epoch, loss: None,
) -> bytes:
    """A copy of the trained ``model`` fine-tuned with fake quantisation for ``epochs``, converted to INT8, as ONNX."""
    from torch.ao import quantization

    tq: Any = quantization  # (untyped)

    engines = torch.backends.quantized.supported_engines
    engine = "x86" if "x86" in engines else "fbgemm" if "fbgemm" in engines else "qnnpack"
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():  # torch.ao's eager mode warns that it moves to torchao; it is what runs here
        warnings.simplefilter("ignore")
        net = copy.deepcopy(model).train()
        pairs = fusable_pairs(net)
        wrapped = tq.QuantWrapper(net)  # quantise the input, dequantise the logits
        if pairs:
            tq.fuse_modules_qat(net, pairs, inplace=True)
        wrapped.qconfig = tq.get_default_qat_qconfig(engine)
        tq.prepare_qat(wrapped, inplace=True)
        fit(wrapped, x_train, y_train, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, on_epoch=on_epoch)
        wrapped.eval()
        int8 = tq.convert(wrapped)
        blob: Any = io.BytesIO()  # (typed as a path; a file-like object is what it writes to here)
        # the TorchScript exporter: it writes torch's quantised ops as QDQ with INT8 weights (torch.export cannot)
        torch.onnx.export(
            int8,
            (torch.from_numpy(x_train[:2]),),
            blob,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    return bytes(blob.getvalue())
