"""TensorRT backend: a cached engine run by one thread that owns all TensorRT/CUDA work.

The engine is built from the ONNX graph on first use (see ``export.tensorrt``) or loaded
from a given ``.engine`` file. Device buffers, the stream and the copies go through the CUDA
runtime library itself (``cuda_runtime``), so an engine runs without PyTorch; a logits
engine's argmax runs on the host. Every TensorRT call (deserialisation, context creation,
execution) is submitted to a single worker thread, so whichever thread calls ``run`` the
engine is driven from the thread that created it.
"""

from __future__ import annotations

import json
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ...cuda_runtime import CudaRuntime
from ...export.tensorrt_versions import PRECISIONS, tensorrt_version
from ...manifest import Manifest, sidecar_path
from .base import check_precision, ids_and_confidence


class _DeviceMemory:
    """Everything the backend allocates, recorded as it is allocated, so that one release
    frees exactly what exists, also after an allocation failed half way."""

    def __init__(self) -> None:
        self.device: list[int] = []
        self.host: list[int] = []
        self.streams: list[int] = []


def _release(cuda: CudaRuntime, memory: _DeviceMemory) -> None:
    for pointer in memory.device:
        cuda.free(pointer)
    for pointer in memory.host:
        cuda.free_host(pointer)
    for stream in memory.streams:
        cuda.destroy_stream(stream)


class TensorRTBackend:
    name = "tensorrt"

    def __init__(self, engine_path: Path, precision: str, input_size: tuple[int, int]) -> None:
        self.precision = precision
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tensorrt")
        self._worker.submit(self._open, engine_path, tuple(input_size)).result()

    @classmethod
    def load(
        cls,
        model_path: Path,
        precision: str,
        calibration_images: str | Path | None,
        cache_dir: str | Path | None,
    ) -> tuple[TensorRTBackend, Manifest]:
        """From an ONNX graph (engine built or taken from the cache) or a built ``.engine``;
        the caller (``loading.load_backend``) has checked TensorRT and the GPU first.

        int8 engines are built from the int8 Q/DQ graph: an fp32 graph is quantised first
        (on ``calibration_images``), an already quantised one is used as it is.
        """
        from ...export.tensorrt import build_engine, build_info_path, engine_graph

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
        manifest = Manifest.load(sidecar_path(engine))
        return cls(engine, precision, manifest.input_size), manifest

    # --- everything below runs on the worker thread -------------------------------------

    def _open(self, engine_path: Path, input_size: tuple[int, int]) -> None:
        import tensorrt as trt

        self._cuda = CudaRuntime()
        # registered before anything is allocated: device memory goes back when the backend
        # does (a lifecycle node reconfigures), or when an allocation below fails
        self._memory = _DeviceMemory()
        release = weakref.finalize(self, _release, self._cuda, self._memory)
        release.atexit = False  # process exit frees it anyway, after libcudart unloads
        logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(logger)
        self._engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self._engine is None:  # a bad model file: ValueError, one line in the CLI
            raise ValueError(
                f"cannot load {engine_path}: not an engine, or built by another TensorRT "
                "version or for another GPU; rebuild it here with `bisenet export tensorrt`"
            )
        self._context = self._engine.create_execution_context()
        self._stream = self._cuda.create_stream()
        self._memory.streams.append(self._stream)
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._input = next(
            n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT
        )
        self._outputs = [n for n in names if n != self._input]
        self.has_confidence = bool({"logits", "confidence"} & set(self._outputs))
        dtypes = tensorrt_version(trt.__version__).numpy_dtypes(trt)
        self._dtypes = {n: dtypes[self._engine.get_tensor_dtype(n)] for n in names}
        largest = self._check_profile(engine_path, input_size)
        self._max_batch = largest[0]
        self._allocate(names, largest)

    def _check_profile(self, engine_path: Path, input_size: tuple[int, int]) -> tuple:
        """The largest input shape; ValueError unless the engine takes (N, 3, H, W) frames at the
        manifest's input size (a batch of another size would overrun the buffers)."""
        smallest, _, largest = (
            tuple(shape) for shape in self._engine.get_tensor_profile_shape(self._input, 0)
        )
        expected = (3, *input_size)
        if smallest[1:] != expected or largest[1:] != expected:
            raise ValueError(
                f"{engine_path} takes {smallest[1:]}..{largest[1:]} inputs but its manifest says "
                f"{expected}: rebuild it with `bisenet export tensorrt` from the model"
            )
        return largest

    def _set_batch(self, shape: tuple[int, ...]) -> None:
        if not self._context.set_input_shape(self._input, shape):
            raise ValueError(
                f"the engine takes batches of 1..{self._max_batch} at its input size, not {shape}"
            )

    def _allocate(self, names: list[str], largest: tuple) -> None:
        """Per I/O tensor, sized for the largest batch: a device buffer bound for good, and
        a pinned host buffer the copies go through."""
        self._set_batch(largest)
        self._buffers, self._host = {}, {}
        for name in names:
            shape = tuple(self._context.get_tensor_shape(name))
            nbytes = int(np.prod(shape)) * np.dtype(self._dtypes[name]).itemsize
            self._buffers[name] = self._cuda.malloc(nbytes)
            self._memory.device.append(self._buffers[name])
            pointer, self._host[name] = self._cuda.host_alloc(nbytes)
            self._memory.host.append(pointer)
            self._context.set_tensor_address(name, self._buffers[name])

    def _pinned(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The pinned host buffer of ``name`` as an array of ``shape``."""
        dtype = np.dtype(self._dtypes[name])
        return self._host[name][: int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)

    def _execute(self, batch: np.ndarray, confidence: bool) -> tuple[np.ndarray, np.ndarray | None]:
        wanted = self._wanted_outputs(confidence)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in wanted}
        for start in range(0, batch.shape[0], self._max_batch):
            chunk = batch[start : start + self._max_batch]
            self._set_batch(chunk.shape)
            staged = self._pinned(self._input, chunk.shape)
            np.copyto(staged, chunk, casting="same_kind")
            self._cuda.copy_to_device(self._buffers[self._input], staged, self._stream)
            if not self._context.execute_async_v3(self._stream):
                raise RuntimeError("TensorRT execution failed")
            hosts = {n: self._pinned(n, tuple(self._context.get_tensor_shape(n))) for n in wanted}
            for name, host in hosts.items():
                self._cuda.copy_to_host(host, self._buffers[name], self._stream)
            self._cuda.synchronize(self._stream)  # the copies are complete
            for name, host in hosts.items():
                parts[name].append(host.copy())  # the pinned buffer is reused by the next chunk
        out = {name: np.concatenate(chunks) for name, chunks in parts.items()}
        if "logits" in out:
            return ids_and_confidence(out["logits"].astype(np.float32, copy=False), confidence)
        return out["ids"].astype(np.uint8, copy=False), out.get("confidence")

    def _wanted_outputs(self, confidence: bool) -> list[str]:
        """The outputs to copy back: logits, or ids (and confidence when asked)."""
        if "logits" in self._outputs:
            return ["logits"]
        if confidence and "confidence" not in self._outputs:
            raise ValueError(
                "this engine has no 'confidence' output; build it from a graph exported with "
                "`bisenet export onnx --confidence`, or ask for confidence=False"
            )
        return ["ids", "confidence"] if confidence else ["ids"]

    def run(self, batch: np.ndarray, confidence: bool) -> tuple[np.ndarray, np.ndarray | None]:
        return self._worker.submit(self._execute, batch, confidence).result()
