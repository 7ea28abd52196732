"""TensorRT engines from the exported ONNX graph (TensorRT 10+ Python API), cached on disk.

An engine is specific to the TensorRT version and the GPU it was built on, and costs minutes
to build, so it is built once and kept under ``~/.cache/bisenet_ros/tensorrt`` (never
``/tmp``) with a key of everything it depends on: the ONNX file's hash, TensorRT version,
GPU name and compute capability, precision and input shape. int8 engines are calibrated on
a folder of the user's frames (entropy or min-max); the calibration cache is kept too and
reused by later builds of the same graph on the same frames.

Only ``build_engine`` and the calibrator need ``tensorrt``; keys, paths and the calibration
batches are plain Python so they can be checked anywhere.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import atomic
from ..manifest import Manifest, sidecar_path
from ..onnx_metadata import read_onnx_manifest

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
CALIBRATION_METHODS = ("entropy", "minmax")
WORKSPACE_BYTES = 2 << 30


@dataclass(frozen=True)
class EngineSpec:
    """Everything an engine depends on; equal specs can share one engine file."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    input_shape: tuple[int, int, int]  # (channels, height, width)
    max_batch: int
    calibration: str = ""  # hash of the calibration cache for int8

    def key(self) -> str:
        from .cache import key_of

        return key_of(**asdict(self))


def engine_path(spec: EngineSpec, stem: str, cache: str | Path | None = None) -> Path:
    """Where the engine for ``spec`` lives in the cache."""
    from .cache import cache_dir

    name = f"{stem}-{spec.precision}-b{spec.max_batch}-{spec.key()}.engine"
    return cache_dir(cache) / "tensorrt" / name


def build_info_path(engine: str | Path) -> Path:
    """The JSON beside an engine recording its ``EngineSpec``."""
    engine = Path(engine)
    return engine.with_name(engine.stem + ".build.json")


class CalibrationBatches:
    """Fixed-size float32 NCHW batches of real frames, preprocessed as at inference time.

    TensorRT calibrates with one batch size, so a last partial batch is dropped.
    """

    def __init__(self, files: list[Path], manifest: Manifest, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if len(files) < batch_size:
            raise ValueError(f"{len(files)} calibration images for a batch of {batch_size}")
        self.files = list(files)
        self.manifest = manifest
        self.batch_size = batch_size

    def __len__(self) -> int:
        return len(self.files) // self.batch_size

    def __iter__(self):
        import cv2

        from ..preprocess import preprocess

        for start in range(0, len(self) * self.batch_size, self.batch_size):
            images = []
            for path in self.files[start : start + self.batch_size]:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    raise ValueError(f"cannot read calibration image {path}")
                images.append(image)
            batch, _ = preprocess(images, self.manifest, "bgr", "stretch")
            yield np.ascontiguousarray(batch)


def calibration_cache_path(onnx_sha256: str, files: list[Path], method: str, cache=None) -> Path:
    """The calibration cache for a graph calibrated on ``files`` with ``method``."""
    from .cache import cache_dir, key_of

    images = key_of(files=[str(f.resolve()) for f in files])
    return cache_dir(cache) / "tensorrt" / f"{onnx_sha256[:16]}-{method}-{images}.calib"


def _make_calibrator(trt, batches: CalibrationBatches, cache_file: Path, method: str):
    """A TensorRT int8 calibrator (entropy or min-max) over ``batches`` with a disk cache."""
    import torch

    base = trt.IInt8EntropyCalibrator2 if method == "entropy" else trt.IInt8MinMaxCalibrator

    class Calibrator(base):
        def __init__(self) -> None:
            base.__init__(self)  # the bindings require the explicit base constructor call
            self._batches = iter(batches)
            self._device: torch.Tensor | None = None

        def get_batch_size(self) -> int:
            return batches.batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self._batches, None)
            if batch is None:
                return None
            self._device = torch.from_numpy(batch).cuda()  # kept alive until the next call
            return [int(self._device.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            return cache_file.read_bytes() if cache_file.is_file() else None

        def write_calibration_cache(self, cache: memoryview) -> None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            cache_file.write_bytes(bytes(cache))

    return Calibrator()


def gpu_identity() -> tuple[str, str]:
    """(GPU name, compute capability "major.minor") of the current CUDA device."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("TensorRT engines need a CUDA GPU and none is visible")
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return props.name, f"{props.major}.{props.minor}"


def build_engine(
    onnx_path: str | Path,
    precision: str = "fp16",
    calibration_images: str | Path | None = None,
    calibration_method: str = "entropy",
    calibration_count: int = 64,
    max_batch: int = 4,
    cache: str | Path | None = None,
) -> Path:
    """The cached engine for ``onnx_path`` at ``precision``, built if missing; returns its path.

    The engine takes batches of 1..``max_batch`` at the graph's fixed height and width.
    """
    import tensorrt as trt

    from ..image_files import spread
    from .cache import file_hash

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if calibration_method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration_method must be one of {CALIBRATION_METHODS}")
    onnx_path = Path(onnx_path)
    manifest = read_onnx_manifest(onnx_path)
    onnx_sha = file_hash(onnx_path)
    calibration = ""
    if precision == "int8":
        if calibration_images is None:
            raise ValueError("an int8 engine needs calibration_images (a folder of frames)")
        files = spread(calibration_images, calibration_count)
        calib_cache = calibration_cache_path(onnx_sha, files, calibration_method, cache)
        calibration = calib_cache.name
    gpu, capability = gpu_identity()
    height, width = manifest.input_size
    spec = EngineSpec(onnx_sha, trt.__version__, gpu, capability, precision,
                      (3, height, width), max_batch, calibration)  # fmt: skip
    target = engine_path(spec, onnx_path.stem, cache)
    if target.is_file():
        return target

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    profile.set_shape(name, (1, 3, height, width), (1, 3, height, width),
                      (max_batch, 3, height, width))  # fmt: skip
    config.add_optimization_profile(profile)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # int8 layers fall back to fp16, not fp32
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        batches = CalibrationBatches(files, manifest, batch_size=min(max_batch, len(files)))
        calibration_profile = builder.create_optimization_profile()
        shape = (batches.batch_size, 3, height, width)
        calibration_profile.set_shape(name, shape, shape, shape)
        config.set_calibration_profile(calibration_profile)
        config.int8_calibrator = _make_calibrator(trt, batches, calib_cache, calibration_method)
    log.info("building TensorRT %s engine for %s on %s (minutes)", precision, onnx_path, gpu)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine for {onnx_path}")
    # sidecars first: an engine file exists only with its sidecars beside it
    atomic.write_bytes(build_info_path(target), json.dumps(asdict(spec), indent=2).encode())
    manifest.save(sidecar_path(target))
    atomic.write_bytes(target, bytes(serialized))
    return target
