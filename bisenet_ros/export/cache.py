"""Derived model files (exported ONNX, fp16 and int8 graphs, TensorRT engines), made once and kept.

Derived files are expensive to make and cheap to key, so each lives under a name made from
the hash of everything it depends on. The default is ``~/.cache/bisenet_ros`` (or
``$XDG_CACHE_HOME/bisenet_ros``), never ``/tmp``, so they survive reboots.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from ..atomic import atomic_path
from ..image_files import spread
from ..manifest import sidecar_path

log = logging.getLogger(__name__)


def cache_dir(override: str | Path | None = None) -> Path:
    """The cache root: ``override``, ``$BISENET_ROS_CACHE``, else the XDG cache directory."""
    if override is not None:
        root = Path(override)
    elif os.environ.get("BISENET_ROS_CACHE"):
        root = Path(os.environ["BISENET_ROS_CACHE"])
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root = Path(base) / "bisenet_ros"
    root.mkdir(parents=True, exist_ok=True)
    return root


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def key_of(**parts: object) -> str:
    """A short stable key for a set of named parts (order-independent)."""
    text = "\n".join(f"{k}={parts[k]}" for k in sorted(parts))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def exported_onnx(
    checkpoint: Path, input_size: tuple[int, int] | None = None, cache: str | Path | None = None
) -> Path:
    """The checkpoint's ONNX graph (ids + confidence head) at ``input_size``, exported once.

    ``input_size`` defaults to the manifest's.
    """
    import torch

    from ..models import load_checkpoint
    from .onnx import export_onnx

    model, manifest = load_checkpoint(checkpoint)
    input_size = tuple(input_size or manifest.input_size)
    key = key_of(
        weights=file_hash(checkpoint),
        size=input_size,
        head="ids+confidence",
        torch=torch.__version__,
    )
    target = cache_dir(cache) / "onnx" / f"{checkpoint.stem}-{key}.onnx"
    if not target.is_file():
        log.info("exporting %s to %s", checkpoint, target)
        _atomic(
            target,
            lambda tmp: export_onnx(model, manifest, tmp, input_size=input_size, confidence=True),
        )
    return target


def quantized_onnx(fp32: Path, calibration_images: str | Path, cache=None) -> Path:
    """The int8 Q/DQ version of ``fp32`` calibrated on ``calibration_images``, quantised once
    (the one int8 graph: TensorRT and ONNX Runtime run it)."""
    from .quantize import DEFAULT_IMAGES, DEFAULT_METHOD, FLOAT_SCOPES, quantize_onnx

    files = spread(calibration_images, DEFAULT_IMAGES)
    key = key_of(
        onnx=file_hash(fp32),
        images=[str(f.resolve()) for f in files],
        method=DEFAULT_METHOD,
        float_scopes=FLOAT_SCOPES,
        form="int8 activations, zero point 0, float biases",
    )
    target = cache_dir(cache) / "int8" / f"{fp32.stem}-int8-{key}.onnx"
    if not target.is_file():
        _atomic(target, lambda tmp: quantize_onnx(fp32, tmp, calibration_images))
    return target


def half_onnx(fp32: Path, cache: str | Path | None = None) -> Path:
    """The fp16 version of the exported graph ``fp32`` (see ``fp16``), converted once."""
    from .fp16 import export_fp16

    target = cache_dir(cache) / "fp16" / f"{fp32.stem}-fp16-{key_of(onnx=file_hash(fp32))}.onnx"
    if not target.is_file():
        _atomic(target, lambda tmp: export_fp16(fp32, tmp))
    return target


def graph_of_precision(
    onnx_path: str | Path, precision: str, calibration_images: str | Path | None, cache=None
) -> Path:
    """The graph to run at ``precision``: ``onnx_path`` itself, or, from an fp32 graph, its
    fp16 graph or its int8 graph calibrated on ``calibration_images`` (each made once).

    A graph that is not fp32 is returned as it is; the runtime says if it is not the one wanted.
    """
    from ..onnx_metadata import stored_precision

    onnx_path = Path(onnx_path)
    if precision == "fp32" or stored_precision(onnx_path) != "fp32":
        return onnx_path
    if precision == "fp16":
        return half_onnx(onnx_path, cache)
    if calibration_images is None:
        raise ValueError(
            f"{onnx_path} is not quantised: give a folder of frames to calibrate on "
            "(calibration_images, --calibration), or quantise it first with `bisenet export int8`"
        )
    return quantized_onnx(onnx_path, calibration_images, cache)


def _atomic(target: Path, make) -> None:
    """Write ``target`` (and its manifest sidecar) via a temporary name, so a crash leaves none."""
    with atomic_path(target, suffix=".onnx") as tmp:
        try:
            make(tmp)
            os.replace(sidecar_path(tmp), sidecar_path(target))
        finally:
            sidecar_path(tmp).unlink(missing_ok=True)
