"""Backends behind one interface, and the rule that picks one for ``backend="auto"``."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

from ...choices import BACKENDS
from ...cuda_runtime import cuda_problem
from ...export.tensorrt_versions import UnsupportedTensorRT, tensorrt_version
from .base import Backend

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".pt", ".pth")
ENGINE_SUFFIXES = (".engine", ".plan")

__all__ = [
    "Backend", "check_content", "model_kind", "resolve_backend",
]  # fmt: skip


def model_kind(path: str | Path) -> str:
    """``checkpoint``, ``onnx`` or ``engine``, from the file name."""
    suffix = Path(path).suffix.lower()
    if suffix in CHECKPOINT_SUFFIXES:
        return "checkpoint"
    if suffix == ".onnx":
        return "onnx"
    if suffix in ENGINE_SUFFIXES:
        return "engine"
    raise ValueError(
        f"{path}: unknown model file type {suffix!r}; expected a checkpoint "
        f"({', '.join(CHECKPOINT_SUFFIXES)}), .onnx or a TensorRT engine "
        f"({', '.join(ENGINE_SUFFIXES)})"
    )


# How each kind of file begins: torch.save's zip or a pickle; an ONNX ModelProto's first
# field (ir_version, tag 0x08). Engines are left to TensorRT, which says what it cannot read.
_FIRST_BYTES = {"checkpoint": (b"PK\x03\x04", b"\x80"), "onnx": (b"\x08",)}
_SUFFIX = {"checkpoint": ".pt", "onnx": ".onnx"}


def check_content(path: Path, kind: str) -> None:
    """ValueError when the file's first bytes show another kind than its name: a renamed
    file would otherwise fail deep in the wrong loader with a message about protobuf or
    pickles."""
    with open(path, "rb") as file:
        head = file.read(4)
    actual = next((k for k, starts in _FIRST_BYTES.items() if head.startswith(starts)), None)
    if kind in _FIRST_BYTES and actual not in (None, kind):
        raise ValueError(
            f"{path} holds {'an ONNX graph' if actual == 'onnx' else 'a PyTorch checkpoint'}, "
            f"not what its name says: rename it to {path.stem}{_SUFFIX[actual]}"
        )


def cuda_available() -> bool:
    """A CUDA GPU usable through PyTorch (the torch backend's)."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def tensorrt_problem() -> str | None:
    """Why TensorRT cannot run here, or None: not installed, a version this project does not
    build engines with, or no usable CUDA runtime and device."""
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed"
    import tensorrt

    try:
        tensorrt_version(tensorrt.__version__)
    except UnsupportedTensorRT as error:
        return str(error)
    cuda = cuda_problem()
    return f"TensorRT {tensorrt.__version__} is installed but cannot run: {cuda}" if cuda else None


def tensorrt_available() -> bool:
    """A supported TensorRT importable and a CUDA device usable through the runtime library."""
    return tensorrt_problem() is None


def tensorrt_outside_venv(system_dirs: list[Path] | None = None) -> Path | None:
    """Where the system Python's TensorRT is, if this virtual environment cannot see it.

    On a Jetson, TensorRT comes from apt into the system Python only; a venv made without
    ``--system-site-packages`` silently runs another backend instead.
    """
    if sys.prefix == sys.base_prefix or importlib.util.find_spec("tensorrt") is not None:
        return None
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if system_dirs is None:
        system_dirs = [Path("/usr/lib/python3/dist-packages"),
                       Path("/usr/local/lib") / version / "dist-packages"]  # fmt: skip
    return next((d / "tensorrt" for d in system_dirs if (d / "tensorrt").is_dir()), None)


def resolve_backend(name: str, kind: str, precision: str, path: str | Path = "") -> str:
    """The concrete backend for a request; ``auto`` prefers TensorRT, then torch CUDA, then ORT.

    ``auto`` never hands TensorRT an ONNX graph its parser refuses (ONNX Runtime's CPU int8
    graph, for one). Raises ``ValueError`` for combinations that cannot work (an engine off
    TensorRT, an ONNX file on torch).
    """
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {name!r}")
    if name == "auto":
        problem = tensorrt_problem()
        if kind == "engine" or (problem is None and _tensorrt_takes(kind, path)):
            name = "tensorrt"
        elif kind == "checkpoint" and cuda_available() and precision != "int8":
            name = "torch"
        else:
            name = "onnxruntime"
        if problem and importlib.util.find_spec("tensorrt") is not None and name != "tensorrt":
            log.warning("backend auto: not TensorRT, %s instead: %s", name, problem)
        hidden = tensorrt_outside_venv()
        if hidden is not None:
            log.warning(
                "TensorRT is installed for the system Python (%s) but this virtual environment "
                "cannot import it, so %s runs instead: recreate the venv with "
                "`python3 -m venv --system-site-packages`",
                hidden,
                name,
            )
    if kind == "engine" and name != "tensorrt":
        raise ValueError(f"a TensorRT engine runs only on the tensorrt backend, not {name!r}")
    if kind == "onnx" and name == "torch":
        raise ValueError("the torch backend needs a checkpoint (.pt/.pth), not an ONNX file")
    return name


def _tensorrt_takes(kind: str, path: str | Path) -> bool:
    """Whether the installed TensorRT's parser takes the model (checkpoints are exported for
    it)."""
    if kind != "onnx":
        return True
    import onnx
    import tensorrt

    from ...export.tensorrt_rules import problems
    from ...export.tensorrt_versions import tensorrt_version

    model = onnx.load(str(path), load_external_data=False)
    refused = problems(model) + tensorrt_version(tensorrt.__version__).graph_problems(model)
    if refused:
        log.info("not TensorRT for %s (%s): onnxruntime instead", path, refused[0])
    return not refused
