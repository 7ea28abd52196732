"""Inference: ``Segmenter`` over TensorRT, PyTorch and ONNX Runtime; drivable mask; views."""

from .segmenter import Segmentation, Segmenter

__all__ = ["Segmentation", "Segmenter"]
