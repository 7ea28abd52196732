"""Turn a model file into a ready backend, deriving (and caching) the file each backend runs.

A checkpoint is exported to ONNX for onnxruntime, an ONNX graph is quantised for int8, and
an ONNX graph is built into an engine for TensorRT; each derived file is cached under a key
of everything it depends on, so it is made once.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from ..export.cache import exported_onnx, graph_of_precision
from ..manifest import Manifest
from ..onnx_metadata import read_onnx_manifest
from .backends.base import Backend

log = logging.getLogger(__name__)


def load_backend(
    name: str,
    kind: str,
    path: Path,
    precision: str,
    threads: int | None,
    input_size: tuple[int, int] | None,
    cuda_graphs: bool,
    calibration_images: str | Path | None,
    cache_dir: str | Path | None,
) -> tuple[Backend, Manifest]:
    """The backend ``name`` running the model in ``path`` (of ``kind``), and its manifest."""
    if cuda_graphs and name != "torch":
        raise ValueError("cuda_graphs applies to the torch backend only")
    if input_size is not None:
        input_size = (int(input_size[0]), int(input_size[1]))
    if name == "torch":
        return _torch(path, precision, threads, input_size, cuda_graphs)
    if name == "onnxruntime":
        return _onnxruntime(
            kind, path, precision, threads, input_size, calibration_images, cache_dir
        )
    if name == "tensorrt":
        from ..export.tensorrt import require_tensorrt
        from .backends.tensorrt_backend import TensorRTBackend

        require_tensorrt()  # before exporting anything for it
        onnx_path = _onnx_for(kind, path, input_size, cache_dir) if kind != "engine" else path
        return TensorRTBackend.load(onnx_path, precision, calibration_images, cache_dir)
    raise ValueError(f"unknown backend {name!r}")


def _torch(path, precision, threads, input_size, cuda_graphs):
    import torch

    from ..models import load_checkpoint
    from .backends.torch_backend import TorchBackend

    if threads:
        torch.set_num_threads(threads)
    model, manifest = load_checkpoint(path)
    if input_size:
        manifest = replace(manifest, input_size=input_size)
    return TorchBackend(model, precision, cuda_graphs=cuda_graphs), manifest


def _onnx_for(kind: str, path: Path, input_size, cache) -> Path:
    """The ONNX graph to run: the file itself, or the checkpoint exported at ``input_size``."""
    if kind == "checkpoint":
        return exported_onnx(path, input_size, cache)
    graph_size = read_onnx_manifest(path).input_size
    if input_size and tuple(input_size) != tuple(graph_size):
        raise ValueError(
            f"{path} is fixed at {graph_size[0]}x{graph_size[1]}; export it again at "
            f"{input_size[0]}x{input_size[1]} (`bisenet export onnx --size`) or pass a checkpoint"
        )
    return path


def _onnxruntime(kind, path, precision, threads, input_size, calibration_images, cache):
    from .backends.onnxruntime_backend import OnnxRuntimeBackend

    onnx_path = _onnx_for(kind, path, input_size, cache)
    onnx_path = graph_of_precision(onnx_path, precision, calibration_images, cache)
    manifest = read_onnx_manifest(onnx_path)
    return OnnxRuntimeBackend(onnx_path, precision, threads), manifest
