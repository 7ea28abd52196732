"""TensorRT backend: a cached engine run by one thread that owns all TensorRT/CUDA work.

The engine is built from the ONNX graph on first use (see ``export.tensorrt``) or loaded
from a given ``.engine`` file. Device buffers, the stream and the argmax for logits graphs
use PyTorch's CUDA runtime, so no second CUDA binding is needed. Every TensorRT call
(deserialisation, context creation, execution) is submitted to a single worker thread, so
whichever thread calls ``run`` the engine is driven from the thread that created it.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ...export.tensorrt_versions import PRECISIONS, tensorrt_version
from ...manifest import Manifest, sidecar_path
from .base import check_precision


def require_tensorrt() -> None:
    """Raise ``ImportError`` saying what is missing unless a supported TensorRT and a CUDA
    GPU are usable."""
    from . import tensorrt_available

    if not tensorrt_available():
        raise ImportError(
            "the tensorrt backend needs TensorRT 8.6, 10.x or 11.x (`tensorrt`, importable from "
            "this Python: on a Jetson, a venv made with --system-site-packages) and PyTorch "
            "with a CUDA GPU"
        )
    import tensorrt as trt

    tensorrt_version(trt.__version__)  # UnsupportedTensorRT (an ImportError) otherwise


class TensorRTBackend:
    name = "tensorrt"

    def __init__(self, engine_path: Path, precision: str) -> None:
        self.precision = precision
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tensorrt")
        self._worker.submit(self._open, engine_path).result()

    @classmethod
    def load(
        cls,
        model_path: Path,
        precision: str,
        calibration_images: str | Path | None,
        cache_dir: str | Path | None,
    ) -> tuple[TensorRTBackend, Manifest]:
        """From an ONNX graph (engine built or taken from the cache) or a built ``.engine``.

        int8 engines are built from the int8 Q/DQ graph: an fp32 graph is quantised first
        (on ``calibration_images``), an already quantised one is used as it is.
        """
        from ...export.tensorrt import build_engine, build_info_path, engine_graph

        require_tensorrt()
        check_precision(precision, PRECISIONS, "the tensorrt backend")
        model_path = Path(model_path)
        if model_path.suffix == ".onnx":
            graph = engine_graph(model_path, precision, calibration_images, cache_dir)
            engine = build_engine(graph, precision, cache=cache_dir)
        else:
            engine = model_path
            info = build_info_path(engine)
            if info.is_file():  # an engine says what it was built as; trust that over the call
                precision = json.loads(info.read_text())["precision"]
        if not sidecar_path(engine).is_file():
            raise ValueError(f"{engine} has no manifest beside it ({sidecar_path(engine).name})")
        return cls(engine, precision), Manifest.load(sidecar_path(engine))

    # --- everything below runs on the worker thread -------------------------------------

    def _open(self, engine_path: Path) -> None:
        import tensorrt as trt
        import torch

        self._torch = torch
        logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(logger)
        self._engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self._engine is None:
            raise RuntimeError(
                f"cannot load {engine_path}: built by another TensorRT version or for another GPU"
            )
        self._context = self._engine.create_execution_context()
        self._stream = torch.cuda.Stream()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._inputs = [
            n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT
        ]
        self._outputs = [n for n in names if n not in self._inputs]
        self.has_confidence = bool({"logits", "confidence"} & set(self._outputs))
        self._max_batch = self._engine.get_tensor_profile_shape(self._inputs[0], 0)[2][0]
        dtypes = tensorrt_version(trt.__version__).torch_dtypes(trt, torch)
        self._dtypes = {n: dtypes[self._engine.get_tensor_dtype(n)] for n in names}

    def _execute(self, batch: np.ndarray, confidence: bool) -> tuple[np.ndarray, np.ndarray | None]:
        torch = self._torch
        ids_parts, conf_parts = [], []
        with torch.cuda.stream(self._stream):
            for start in range(0, batch.shape[0], self._max_batch):
                chunk = torch.from_numpy(batch[start : start + self._max_batch]).pin_memory()
                x = chunk.to("cuda", non_blocking=True)
                self._context.set_input_shape(self._inputs[0], tuple(x.shape))
                self._context.set_tensor_address(self._inputs[0], x.data_ptr())
                out = {}
                for name in self._outputs:
                    shape = tuple(self._context.get_tensor_shape(name))
                    out[name] = torch.empty(shape, dtype=self._dtypes[name], device="cuda")
                    self._context.set_tensor_address(name, out[name].data_ptr())
                if not self._context.execute_async_v3(self._stream.cuda_stream):
                    raise RuntimeError("TensorRT execution failed")
                ids, conf = self._ids_and_confidence(out, confidence)
                ids_parts.append(ids.to("cpu", non_blocking=True))
                if conf is not None:
                    conf_parts.append(conf.to("cpu", non_blocking=True))
            self._stream.synchronize()
        ids = torch.cat(ids_parts).numpy()
        return ids, (torch.cat(conf_parts).numpy() if confidence else None)

    def _ids_and_confidence(self, out: dict, confidence: bool):
        """uint8 ids (and confidence) on the device, from an ids graph or a logits graph."""
        from ...models.labels import ids_and_confidence

        if "logits" in out:
            return ids_and_confidence(out["logits"], confidence)
        if confidence and "confidence" not in out:
            raise ValueError(
                "this engine has no 'confidence' output; build it from a graph exported with "
                "`bisenet export onnx --confidence`, or ask for confidence=False"
            )
        return out["ids"], (out["confidence"] if confidence else None)

    def run(self, batch: np.ndarray, confidence: bool) -> tuple[np.ndarray, np.ndarray | None]:
        return self._worker.submit(self._execute, batch, confidence).result()
