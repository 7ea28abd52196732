"""int8 static quantisation of an exported graph: one Q/DQ graph for TensorRT and ONNX Runtime.

Explicit quantization in the form TensorRT's parser takes: weights int8 per channel,
activations int8 per tensor with zero point 0, biases left in float, and Q/DQ on the inputs
of weighted layers (``Conv -> Relu -> Q -> DQ -> Conv``). ONNX Runtime runs the
same file after an in-memory rewrite (``graph.for_onnxruntime_int8``) that gives it the
integer form its x86 kernels are fast for. Activation ranges are calibrated on real frames
run through the same preprocessing as inference, with the entropy (KL) method by default:
on the 233 CamVid test frames at 512x1024 it kept the mIoU of fp32 where the 99.999th
percentile lost 1.6 and min-max 2.0 (docs/inference.md).

Before quantising, grouped convolutions are rewritten as depthwise ones
(``depthwise_grouped_convs``: same result, 25 ms less at 512x1024 on ONNX Runtime). The
classifier is quantised but its bilinear upsampling and the argmax/softmax tail stay in
float, so argmax compares interpolated float logits (argmax over quantised logits meets
ties it breaks toward the lower class id). BiSeNetV2's stem convolutions (raw pixels in)
and the attention of its guided aggregation (sigmoid gates, their products with the
branches, the sum) stay in float too; the aggregation's convolutions are quantised.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantizationMode,
    QuantType,
    create_calibrator,
)
from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
from onnxruntime.quantization.quant_utils import load_model_with_shape_infer
from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry
from onnxruntime.quantization.shape_inference import quant_pre_process
from tqdm import tqdm

from ..image_decoding import ImageError, read_image_file
from ..image_files import spread
from ..manifest import Manifest, sidecar_path
from ..onnx_metadata import read_onnx_manifest, set_manifest_metadata
from .graph import depthwise_grouped_convs, relus_unquantized_before, uint8_outputs_through_float

log = logging.getLogger(__name__)

METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
TAIL_OPS = {"Resize", "ArgMax", "Softmax", "ReduceMax", "Cast", "Mul", "Round"}
# Node-name scopes (from the exporter's module paths) kept in float; see the module docstring:
# BiSeNetV2's stem convolutions, and every node of its guided aggregation except convolutions.
DEFAULT_IMAGES, DEFAULT_METHOD = 32, "entropy"
FLOAT_SCOPES = ("/detail/S1/S1.0/", "/segment/S1S2/conv/")
ATTENTION_SCOPE = "/bga/"


# TensorRT's form: int8 with zero point 0 everywhere, biases left in float
QUANTIZER_OPTIONS = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False}


class FrameReader(CalibrationDataReader):
    """Feeds calibration frames, preprocessed exactly as inference does; ``set_range``
    limits it to some of them (``calibrated_ranges`` takes one at a time)."""

    def __init__(self, files: list[Path], manifest: Manifest, input_name: str) -> None:
        self.files = list(files)
        self.manifest = manifest
        self.input_name = input_name
        self._next, self._end = 0, len(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._next, self._end = start_index, min(end_index, len(self.files))

    def get_next(self) -> dict[str, np.ndarray] | None:
        from ..preprocess import preprocess

        if self._next >= self._end:
            return None
        path = self.files[self._next]
        self._next += 1
        try:
            image, order = read_image_file(path)
        except ImageError as error:
            raise ValueError(f"cannot read calibration image {path}: {error.detail}") from None
        batch, _ = preprocess([image], self.manifest, order, "stretch")
        return {self.input_name: batch}

    def rewind(self) -> None:
        self._next, self._end = 0, len(self.files)


def float_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes to keep in float: the tail after the classifier, the stems, BGA's attention,
    and every BatchNormalization left after pre-processing fused the others into their
    convolutions (the context embedding's, on pooled features: int8 weights there would
    feed no weighted layer, which TensorRT's parser takes only through a fallback)."""
    scoped = {
        n.name
        for n in model.graph.node
        if any(s in n.name for s in FLOAT_SCOPES)
        or (ATTENTION_SCOPE in n.name and n.op_type != "Conv")
        or n.op_type == "BatchNormalization"
    }
    return sorted(scoped | set(float_tail(model)))


def float_tail(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes after the classifier: its upsampling, argmax and confidence."""
    producer = {out: node for node in model.graph.node for out in node.output}
    keep, stack = set(), [o.name for o in model.graph.output]
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in keep or node.op_type not in TAIL_OPS:
            continue
        keep.add(node.name)
        stack.extend(node.input)
    return sorted(keep)


def quantize_onnx(
    fp32_path: str | Path,
    output: str | Path,
    calibration: str | Path,
    num_images: int = DEFAULT_IMAGES,
    method: str = DEFAULT_METHOD,
) -> Path:
    """Write the int8 Q/DQ copy of ``fp32_path`` calibrated on images from the
    ``calibration`` folder; the manifest is carried over."""
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {sorted(METHODS)}, not {method!r}")
    manifest = read_onnx_manifest(fp32_path)
    files = spread(calibration, num_images)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".quantize-") as work:
        rewritten, prepared = Path(work) / "rewritten.onnx", Path(work) / "prepared.onnx"
        onnx.save(depthwise_grouped_convs(onnx.load(str(fp32_path))), str(rewritten))
        quant_pre_process(str(rewritten), str(prepared))
        model = onnx.load(str(prepared))
        input_name = model.graph.input[0].name
        excluded = float_nodes(model)
        log.info(
            "calibrating int8 ranges (%s) on %d images from %s", method, len(files), calibration
        )
        reader = FrameReader(files, manifest, input_name)
        ranges = calibrated_ranges(prepared, reader, method, Path(work))
        model = quantized(prepared, ranges, excluded)
        model = uint8_outputs_through_float(relus_unquantized_before(model))
        set_manifest_metadata(model, manifest)
        written = Path(work) / "quantized.onnx"
        onnx.save(model, str(written))
        os.replace(written, output)
    manifest.save(sidecar_path(output))
    return output


def calibrated_ranges(prepared: Path, reader: FrameReader, method: str, work: Path):
    """The activation ranges of ``prepared`` over the reader's frames, collected one frame
    at a time.

    ONNX Runtime's histogram calibrators keep the activations of every frame they are given
    before binning them (about 650 MB per 512x1024 frame), and ``quantize_static`` hands
    them all at once before 1.19 (the Jetson's 1.16 passed 8 GiB on 32 frames). Fed a frame
    at a time, they bin it and let it go.
    """
    calibrator = create_calibrator(
        prepared,
        quantized_op_types(),
        augmented_model_path=str(work / "augmented.onnx"),
        calibrate_method=METHODS[method],
    )
    with contextlib.redirect_stdout(io.StringIO()):  # its prints; the bar is on stderr
        for index in tqdm(range(len(reader)), desc="calibrating", unit="frame"):
            reader.set_range(index, index + 1)
            calibrator.collect_data(reader)
        return calibrator.compute_data()


def quantized(prepared: Path, ranges, excluded: list[str]) -> onnx.ModelProto:
    """The Q/DQ graph of ``prepared`` with activation ``ranges`` (what ``quantize_static``
    does after calibrating, on every onnxruntime release)."""
    settings = dict(
        model=load_model_with_shape_infer(prepared),
        per_channel=True,
        reduce_range=False,
        weight_qType=QuantType.QInt8,
        activation_qType=QuantType.QInt8,
        tensors_range=ranges,
        nodes_to_quantize=[],
        nodes_to_exclude=excluded,
        op_types_to_quantize=quantized_op_types(),
        extra_options=dict(QUANTIZER_OPTIONS),
    )
    if "static" in inspect.signature(QDQQuantizer).parameters:  # older onnxruntime (1.16)
        settings.update(mode=QuantizationMode.QLinearOps, static=True)
    quantizer = QDQQuantizer(**settings)
    quantizer.quantize_model()
    quantizer.model.topological_sort()  # as its save does
    return quantizer.model.model


def quantized_op_types() -> list[str]:
    """The operators ``quantize_static`` quantises by default."""
    return sorted(set(QLinearOpsRegistry) | set(QDQRegistry))
