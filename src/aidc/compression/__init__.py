"""Model compression as a pipeline stage: INT8 quantisation (ONNX Runtime), pruning (torch), distillation."""
