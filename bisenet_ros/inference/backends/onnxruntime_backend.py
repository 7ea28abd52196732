"""ONNX Runtime backend: the exported graph on the CPU (fp32 or int8) or a GPU provider.

The graph ends in class ids (argmax inside the graph), so only uint8 planes leave the
runtime. Full graph optimisation folds BatchNorm into the convolutions and fuses
activations; the TensorRT and CUDA execution providers are used when this onnxruntime build
has them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from .base import check_precision, ids_and_confidence

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(
        self,
        onnx_path: str | Path,
        precision: str = "fp32",
        threads: int | None = None,
        quantized: bool = False,
    ) -> None:
        available = ort.get_available_providers()
        gpu = [p for p in GPU_PROVIDERS if p in available]
        # fp16 only through TensorRT's builder flag; int8 graphs run as quantised on the CPU.
        if quantized:
            supported = ("int8",)
        elif GPU_PROVIDERS[0] in gpu:
            supported = ("fp32", "fp16")
        else:
            supported = ("fp32",)
        where = "onnxruntime with an int8 graph" if quantized else f"onnxruntime ({available})"
        check_precision(precision, supported, where)
        self.precision = precision
        providers: list = ["CPUExecutionProvider"]
        if precision != "int8":
            providers = [
                (p, {"trt_fp16_enable": precision == "fp16"}) if p == GPU_PROVIDERS[0] else p
                for p in gpu
            ] + providers
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        self.providers = self.session.get_providers()
        self.input_name = self.session.get_inputs()[0].name
        self.outputs = [o.name for o in self.session.get_outputs()]

    def run(self, batch: np.ndarray, confidence: bool) -> tuple[np.ndarray, np.ndarray | None]:
        feed = {self.input_name: batch}
        if "logits" in self.outputs:
            return ids_and_confidence(self.session.run(["logits"], feed)[0], confidence)
        if confidence and "confidence" not in self.outputs:
            raise ValueError(
                "this ONNX graph has no 'confidence' output; re-export it with "
                "`bisenet export onnx --confidence` or ask for confidence=False"
            )
        if confidence:
            ids, conf = self.session.run(["ids", "confidence"], feed)
            return ids, conf
        return self.session.run(["ids"], feed)[0], None
