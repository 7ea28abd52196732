"""Backends behind one interface, and the rule that picks one for ``backend="auto"``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .base import PRECISIONS, Backend

BACKENDS = ("auto", "tensorrt", "torch", "onnxruntime")
CHECKPOINT_SUFFIXES = (".pt", ".pth")
ENGINE_SUFFIXES = (".engine", ".plan")

__all__ = ["BACKENDS", "PRECISIONS", "Backend", "model_kind", "resolve_backend"]


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


def cuda_available() -> bool:
    """A CUDA GPU usable through PyTorch (which also provides TensorRT's device buffers)."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def tensorrt_available() -> bool:
    return importlib.util.find_spec("tensorrt") is not None and cuda_available()


def resolve_backend(name: str, kind: str, precision: str) -> str:
    """The concrete backend for a request; ``auto`` prefers TensorRT, then torch CUDA, then ORT.

    Raises ``ValueError`` for combinations that cannot work (an engine off TensorRT, an ONNX
    file on torch).
    """
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {name!r}")
    if name == "auto":
        if kind == "engine" or tensorrt_available():
            name = "tensorrt"
        elif kind == "checkpoint" and cuda_available() and precision != "int8":
            name = "torch"
        else:
            name = "onnxruntime"
    if kind == "engine" and name != "tensorrt":
        raise ValueError(f"a TensorRT engine runs only on the tensorrt backend, not {name!r}")
    if kind == "onnx" and name == "torch":
        raise ValueError("the torch backend needs a checkpoint (.pt/.pth), not an ONNX file")
    return name
