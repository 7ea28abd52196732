"""TensorRT engines from the exported ONNX graphs (TensorRT 8.6, 10.x, 11.x), cached on disk.

An engine is specific to the TensorRT version and the GPU it was built on, and costs minutes
to build, so it is built once and kept under ``~/.cache/bisenet_ros/tensorrt`` (never
``/tmp``) with a key of everything it depends on: the graph's hash, TensorRT version, the
GPU (name, compute capability, SM count, memory: Jetson Orin modules share a name), the
precision, input shape and largest batch. The runtime takes an engine with a larger batch
than it asked for, so one built by ``bisenet export tensorrt --max-batch 8`` is found.

Precision comes from the graph: the fp16 graph (``bisenet export fp16``; on 8.6 the fp32
graph with the fp16 builder flag) or the int8 Q/DQ graph (explicit quantization, ``bisenet
export int8``: no calibrator runs); weakly typed versions (8.6, 10.x) add the builder flags
that let TensorRT pick those kernels. ``tensorrt_versions`` holds every
version-dependent choice, ``tensorrt_rules`` checks a graph before it is parsed. Only
``build_engine`` needs ``tensorrt``; importing this module needs neither it nor ``onnx``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .. import atomic
from ..cuda_runtime import CudaError, CudaRuntime
from ..manifest import sidecar_path
from .cache import cache_dir, file_hash, graph_of_precision, key_of
from .tensorrt_versions import PRECISIONS, tensorrt_version

log = logging.getLogger(__name__)

WORKSPACE_BYTES = 2 << 30
GRAPH_COMMANDS = {
    "fp32": "bisenet export onnx",
    "fp16": "bisenet export fp16",
    "int8": "bisenet export int8",
}


@dataclass(frozen=True)
class EngineSpec:
    """Everything an engine depends on; equal specs can share one engine file."""

    onnx_sha256: str
    tensorrt_version: str
    gpu: str  # name, compute capability, SM count, memory: see CudaRuntime.device_identity()
    precision: str
    input_shape: tuple[int, int, int]  # (channels, height, width)
    max_batch: int

    def key(self) -> str:
        return key_of(**asdict(self))


def engine_path(spec: EngineSpec, stem: str, cache: str | Path | None = None) -> Path:
    """Where the engine for ``spec`` lives in the cache."""
    name = f"{stem}-{spec.precision}-b{spec.max_batch}-{spec.key()}.engine"
    return cache_dir(cache) / "tensorrt" / name


def build_info_path(engine: str | Path) -> Path:
    """The JSON beside an engine recording its ``EngineSpec``."""
    engine = Path(engine)
    return engine.with_name(engine.stem + ".build.json")


def cached_engine(spec: EngineSpec, stem: str, cache: str | Path | None = None) -> Path | None:
    """An engine already built for ``spec`` or for the same one with a larger batch."""
    exact = engine_path(spec, stem, cache)
    if exact.is_file():
        return exact
    for info in sorted(exact.parent.glob(f"{stem}-{spec.precision}-b*.build.json")):
        data = json.loads(info.read_text())
        built = EngineSpec(**{**data, "input_shape": tuple(data["input_shape"])})
        wanted = replace(spec, max_batch=built.max_batch)
        engine = info.with_name(info.name.replace(".build.json", ".engine"))
        if built == wanted and built.max_batch >= spec.max_batch and engine.is_file():
            return engine
    return None


def require_tensorrt() -> None:
    """Raise ``ImportError`` naming what is missing unless a supported TensorRT and a CUDA
    GPU are usable: before anything is exported or quantised for an engine."""
    if importlib.util.find_spec("tensorrt") is None:
        raise ImportError(
            "TensorRT engines need TensorRT 8.6, 10.x or 11.x (`tensorrt`, importable from this "
            "Python: on a Jetson, a venv made with --system-site-packages)"
        )
    try:
        CudaRuntime().require_device()
    except CudaError as error:
        raise ImportError(f"TensorRT engines need a CUDA GPU: {error}") from None
    import tensorrt as trt

    tensorrt_version(trt.__version__)  # UnsupportedTensorRT (an ImportError) otherwise


def engine_graph(
    onnx_path: Path, precision: str, calibration_images: str | Path | None, cache=None
) -> Path:
    """The graph an engine of ``precision`` is built from on the installed TensorRT, derived
    from ``onnx_path`` (and cached) if it is fp32."""
    import tensorrt as trt

    wanted = tensorrt_version(trt.__version__).graph_precision(precision)
    return graph_of_precision(onnx_path, wanted, calibration_images, cache)


def build_engine(
    onnx_path: str | Path,
    precision: str = "fp16",
    max_batch: int = 4,
    cache: str | Path | None = None,
) -> Path:
    """The cached engine for ``onnx_path`` at ``precision``, built if missing; returns its path.

    ``onnx_path`` is the graph ``tensorrt_versions`` names for the precision: an int8 engine
    needs the int8 Q/DQ graph, an fp16 engine on TensorRT 10.x and 11.x the fp16 graph. The engine
    takes batches of 1..``max_batch`` at the graph's fixed height and width.
    """
    import onnx
    import tensorrt as trt

    from ..onnx_metadata import graph_precision, read_onnx_manifest
    from .tensorrt_rules import problems

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    support = tensorrt_version(trt.__version__)
    onnx_path = Path(onnx_path)
    model = onnx.load(str(onnx_path), load_external_data=False)
    refused = problems(model) + support.graph_problems(model)
    if refused:
        raise ValueError(f"TensorRT cannot take {onnx_path}: " + "; ".join(refused[:5]))
    wanted, stored = support.graph_precision(precision), graph_precision(model)
    if stored != wanted:
        raise ValueError(
            f"{onnx_path} is a {stored} graph; a {precision} engine on TensorRT "
            f"{support.version} is built from the {wanted} graph (`{GRAPH_COMMANDS[wanted]}`)"
        )
    manifest = read_onnx_manifest(onnx_path)
    height, width = manifest.input_size
    gpu = CudaRuntime().device_identity()
    spec = EngineSpec(file_hash(onnx_path), trt.__version__, gpu, precision,
                      (3, height, width), max_batch)  # fmt: skip
    found = cached_engine(spec, onnx_path.stem, cache)
    if found is not None:
        return found

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(support.network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    for flag in support.flags_to_set(trt, precision):
        config.set_flag(flag)
    for flag in support.flags_to_clear(trt, precision):
        config.clear_flag(flag)
    profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    profile.set_shape(name, (1, 3, height, width), (1, 3, height, width),
                      (max_batch, 3, height, width))  # fmt: skip
    config.add_optimization_profile(profile)
    log.info("building TensorRT %s engine for %s on %s (minutes)", precision, onnx_path, spec.gpu)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine for {onnx_path}")
    target = engine_path(spec, onnx_path.stem, cache)
    # sidecars first: an engine file exists only with its sidecars beside it
    atomic.write_bytes(build_info_path(target), json.dumps(asdict(spec), indent=2).encode())
    manifest.save(sidecar_path(target))
    atomic.write_bytes(target, bytes(serialized))
    return target
