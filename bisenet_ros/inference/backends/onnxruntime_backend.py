"""ONNX Runtime backend: the exported graph (fp32, fp16 or int8) on the CPU or a GPU provider.

The graph ends in class ids (argmax inside the graph), so only uint8 planes leave the
runtime. Full graph optimisation folds BatchNorm into the convolutions and fuses
activations; the TensorRT and CUDA execution providers are used when this onnxruntime build
has them. With the ``onnx`` package the graph is also rewritten in memory (see
``export.graph``): calls without confidence run a pruned ids-only graph (ONNX Runtime
computes every output whatever is asked), confidence comes from a cheaper max-softmax built
on first use, and int8 graphs take the form of ONNX Runtime's integer kernels. Without it (a
Jetson with only onnxruntime) the file runs as it is, slower, and the log says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ...onnx_metadata import stored_precision
from .base import check_precision, ids_and_confidence
from .cpu_int8 import log_int8_speed

log = logging.getLogger(__name__)

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(
        self, onnx_path: str | Path, precision: str = "fp32", threads: int | None = None
    ) -> None:
        stored = stored_precision(onnx_path)
        check_precision(precision, (stored,), f"onnxruntime with the {stored} graph {onnx_path}")
        self.precision = precision
        if precision == "int8":
            log_int8_speed()
        available = ort.get_available_providers()
        # int8 graphs run as quantised on the CPU; fp32 and fp16 graphs on a GPU if there is one
        gpu = [p for p in GPU_PROVIDERS if p in available and precision != "int8"]
        self._providers = [*gpu, "CPUExecutionProvider"]
        self.options = ort.SessionOptions()
        self.options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep instead of spinning: spinning threads take the cores the
        # node's own threads (DDS, decoding, publishing) need; measured in benchmarks/.
        self.options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            self.options.intra_op_num_threads = threads
            self.options.inter_op_num_threads = 1
        try:
            import onnx
        except ImportError:
            log.info(
                "the onnx package is not installed: %s runs as stored, without the in-memory "
                "rewrites that make it faster (ids-only pruning, integer kernels for int8); "
                "`pip install onnx` to get them",
                onnx_path,
            )
            self._model = None
            session = self._session(str(onnx_path))
            self.input_name = session.get_inputs()[0].name
            self.outputs = [o.name for o in session.get_outputs()]
            self._sessions = {False: session, True: session}
        else:
            from ...export.graph import for_onnxruntime_int8, pruned

            self._model = onnx.load(str(onnx_path))
            if precision == "int8":
                self._model = for_onnxruntime_int8(self._model)
            self.input_name = self._model.graph.input[0].name
            self.outputs = [o.name for o in self._model.graph.output]
            first = ["logits"] if "logits" in self.outputs else ["ids"]
            self._sessions = {False: self._session(pruned(self._model, first).SerializeToString())}
        self.has_confidence = bool({"logits", "confidence"} & set(self.outputs))
        self.providers = self._sessions[False].get_providers()

    def _session(self, model: str | bytes) -> ort.InferenceSession:
        return ort.InferenceSession(model, self.options, providers=self._providers)

    def run(self, batch: np.ndarray, confidence: bool) -> tuple[np.ndarray, np.ndarray | None]:
        feed = {self.input_name: batch}
        if "logits" in self.outputs:
            logits = self._sessions[False].run(["logits"], feed)[0]
            return ids_and_confidence(logits, confidence)
        if not confidence:
            return self._sessions[False].run(["ids"], feed)[0], None
        if "confidence" not in self.outputs:
            raise ValueError(
                "this ONNX graph has no 'confidence' output; re-export it with "
                "`bisenet export onnx --confidence` or ask for confidence=False"
            )
        if True not in self._sessions:
            from ...export.graph import cheap_max_softmax

            self._sessions[True] = self._session(cheap_max_softmax(self._model).SerializeToString())
        ids, conf = self._sessions[True].run(["ids", "confidence"], feed)
        return ids, conf
