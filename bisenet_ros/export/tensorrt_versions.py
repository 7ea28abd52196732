"""The TensorRT versions the project builds engines with, and every choice that depends on one.

- **8.6** (JetPack 6.0): weakly typed networks that need the explicit-batch flag; fp16 and
  int8 kernels are enabled with builder flags, fp16 over the fp32 graph, int8 over the Q/DQ
  graph (explicit quantization: no calibrator runs).
- **10.x** (JetPack 6.1+, desktops): weakly typed, without the (deprecated) explicit-batch
  flag; the builder flags as on 8.6, fp16 over the fp16 graph.
- **11.x** (``pip install tensorrt``): strongly typed only, so the precision comes from the
  graph itself (the fp16 graph, the int8 Q/DQ graph); the precision builder flags and the
  int8 calibrators are gone (NVIDIA's 10.x -> 11.x migration guide).

Each parser takes graphs up to its own opset (the support matrices: 17 for 8.6, 20 for
10.x, 25 for 11.x), and 8.6's Resize implements ``tf_half_pixel_for_nn`` only with the
``round_prefer_floor`` nearest mode (onnx-tensorrt 8.6 operators.md).

Anything else (7.x, 8.0-8.5, 9.x, 12+) is refused with one sentence naming these. No other
module looks at the TensorRT version.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..choices import PRECISIONS

SUPPORTED = "8.6, 10.x and 11.x"
MAX_OPSET = {8: 17, 10: 20, 11: 25}  # the newest ONNX opset each major's parser takes


class UnsupportedTensorRT(ImportError):
    """The installed TensorRT is not one this project builds engines with."""


@dataclass(frozen=True)
class TensorRTVersion:
    version: str
    major: int
    strongly_typed: bool  # precision from the graph's types (11.x), not builder flags

    def network_flags(self, trt) -> int:
        """The ``create_network`` flags: explicit batch on 8.6; none on 10.x (explicit batch
        is the only mode) and 11.x (always strongly typed)."""
        if self.major == 8:
            return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        return 0

    def flags_to_set(self, trt, precision: str) -> list:
        """Builder flags that enable the precision's kernels (8.6 and 10.x)."""
        if precision == "fp32" or self.strongly_typed:
            return []
        if precision == "fp16":
            return [trt.BuilderFlag.FP16]
        return [trt.BuilderFlag.FP16, trt.BuilderFlag.INT8]  # int8 layers fall back to fp16

    @staticmethod
    def flags_to_clear(trt, precision: str) -> list:
        """TF32 is on by default: an fp32 engine would not compute in fp32 on Ampere+."""
        return [trt.BuilderFlag.TF32] if precision == "fp32" else []

    def numpy_dtypes(self, trt) -> dict:
        """TensorRT tensor types -> numpy dtypes for the I/O buffers (INT64 from 10.x on)."""
        dtypes = {
            trt.DataType.FLOAT: np.float32,
            trt.DataType.HALF: np.float16,
            trt.DataType.INT8: np.int8,
            trt.DataType.INT32: np.int32,
            trt.DataType.UINT8: np.uint8,
            trt.DataType.BOOL: np.bool_,
        }
        if self.major >= 10:
            dtypes[trt.DataType.INT64] = np.int64
        return dtypes

    def graph_problems(self, model) -> list[str]:
        """What this version's parser refuses in an ONNX ``model`` beyond the rules every
        version shares (``tensorrt_rules``)."""
        from .graph import opset  # onnx, which engines at run time do not need

        found, version = [], opset(model)
        if version > MAX_OPSET[self.major]:
            ceiling = MAX_OPSET[self.major]
            found.append(
                f"opset {version}: TensorRT {self.version} parses graphs up to opset {ceiling}; "
                f"export with --opset {ceiling}"
            )
        if self.major == 8:
            for node in model.graph.node:
                settings = {a.name: a.s.decode() for a in node.attribute if a.s}
                coordinates = settings.get("coordinate_transformation_mode")
                nearest = settings.get("nearest_mode", "round_prefer_floor")
                if (
                    node.op_type == "Resize"
                    and coordinates == "tf_half_pixel_for_nn"
                    and (nearest != "round_prefer_floor")
                ):
                    found.append(
                        f"Resize {node.name or node.output[0]}: TensorRT 8.6 implements "
                        f"tf_half_pixel_for_nn only with round_prefer_floor, not {nearest}"
                    )
        return found

    def graph_precision(self, precision: str) -> str:
        """Which exported graph to parse for an engine of ``precision``: the graph of that
        precision, except fp16 on 8.6, which lowers the fp32 graph with the builder flag."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        if precision == "fp16" and self.major == 8:
            return "fp32"
        return precision


def tensorrt_version(version: str) -> TensorRTVersion:
    """What ``tensorrt.__version__`` means for the build; UnsupportedTensorRT otherwise."""
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        raise UnsupportedTensorRT(f"cannot read the TensorRT version {version!r}") from None
    if (major, minor) == (8, 6) or major in (10, 11):
        return TensorRTVersion(version, major, strongly_typed=major >= 11)
    raise UnsupportedTensorRT(
        f"TensorRT {version} is not supported: bisenet_ros builds engines with TensorRT "
        f"{SUPPORTED} (8.6 on JetPack 6.0, 10.x on JetPack 6.1+ and desktops, 11.x from pip); "
        "install one of those, or use backend:=onnxruntime or torch"
    )
