"""Whether TensorRT's ONNX parser takes a graph, judged from the graph alone.

TensorRT cannot run everywhere, so the rules its documentation states for the parser
(onnx-tensorrt's operator support list, the TensorRT data-type rules) are checked on the
graph itself: before an engine build, by ``backend: auto`` before it picks TensorRT, and by
the tests over every graph the project exports.

- every op is one the parser supports and this project emits (anything else is reported,
  not guessed about), with the attributes the parser accepts (ArgMax without
  ``select_last_index``; Resize modes and coordinate transformations it implements);
- Q/DQ is int8 with zero point 0 (explicit quantization: no uint8 activations); a
  DequantizeLinear of a constant (quantized weights) feeds only a weighted layer (Conv,
  ConvTranspose, Gemm, MatMul), the only place the parser fuses int8 weights;
- no double tensors; no int64 or double network outputs; a uint8 output is made by a Cast
  from a float type (TensorRT converts uint8 only to and from float);
- one float input (N, 3, H, W) whose batch alone is dynamic.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, numpy_helper

# ops the parser supports (onnx-tensorrt operators.md) that this project's graphs use
SUPPORTED_OPS = {
    "Add", "ArgMax", "AveragePool", "BatchNormalization", "Cast", "Concat", "Constant",
    "Conv", "DequantizeLinear", "Div", "Gather", "GlobalAveragePool", "Identity", "MaxPool",
    "Mul", "QuantizeLinear", "ReduceMax", "ReduceMean", "Relu", "Reshape", "Resize", "Round",
    "Shape", "Sigmoid", "Slice", "Softmax", "Sub", "Unsqueeze",
}  # fmt: skip
RESIZE_MODES = {"nearest", "linear", "cubic"}
RESIZE_COORDINATES = {
    "half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn",
}  # fmt: skip
FLOATS = {TensorProto.FLOAT, TensorProto.FLOAT16}
WEIGHTED_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def problems(model: onnx.ModelProto) -> list[str]:
    """What in ``model`` TensorRT's parser refuses (empty: nothing found)."""
    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.output]}
    types |= {i.name: i.type.tensor_type.elem_type for i in graph.input}
    types |= {t.name: t.data_type for t in graph.initializer}
    constants = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    found = []
    for node in graph.node:
        where = f"{node.op_type} {node.name or node.output[0]}"
        attributes = _attributes(node)
        if node.op_type not in SUPPORTED_OPS:
            found.append(f"{where}: op {node.op_type} is not one checked against the parser")
        elif node.op_type == "ArgMax" and attributes.get("select_last_index", 0):
            found.append(f"{where}: select_last_index=1 is not supported")
        elif node.op_type == "Resize":
            mode = _text(attributes.get("mode", "nearest"))
            coords = _text(attributes.get("coordinate_transformation_mode", "half_pixel"))
            if mode not in RESIZE_MODES or coords not in RESIZE_COORDINATES:
                found.append(f"{where}: mode {mode} with {coords} is not supported")
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            found += _qdq_problems(node, where, constants)
        for name in node.output:
            if types.get(name) == TensorProto.DOUBLE:
                found.append(f"{where}: double tensor {name}")
    for output in graph.output:
        kind = output.type.tensor_type.elem_type
        if kind in (TensorProto.INT64, TensorProto.DOUBLE):
            found.append(f"output {output.name}: {TensorProto.DataType.Name(kind)}")
        if kind == TensorProto.UINT8:
            cast = producers.get(output.name)
            source = types.get(cast.input[0]) if cast is not None else None
            if cast is None or cast.op_type != "Cast" or source not in FLOATS:
                found.append(f"output {output.name}: uint8 not made by a Cast from float")
    found += _input_problems(graph)
    found += _weight_dq_problems(graph, constants)
    return found


def _weight_dq_problems(graph: onnx.GraphProto, constants: dict) -> list[str]:
    """Quantized constants that feed anything but a weighted layer (a BatchNormalization
    scale, an Add operand): the parser would take them only through elementwise fallbacks."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in constants:
            for user in consumers.get(node.output[0], []):
                if user.op_type not in WEIGHTED_OPS:
                    found.append(
                        f"DequantizeLinear {node.name or node.output[0]}: int8 constant "
                        f"{node.input[0]} feeds {user.op_type} {user.name or user.output[0]}, "
                        "not a weighted layer"
                    )
    return found


def _qdq_problems(node: onnx.NodeProto, where: str, constants: dict) -> list[str]:
    if len(node.input) < 3 or node.input[2] not in constants:  # absent: uint8, zero point 0
        return [f"{where}: no int8 zero point (a missing one means uint8)"]
    zero_point = constants[node.input[2]]
    if zero_point.data_type != TensorProto.INT8:
        kind = TensorProto.DataType.Name(zero_point.data_type)
        return [f"{where}: {kind} zero point; TensorRT takes int8 Q/DQ only"]
    if numpy_helper.to_array(zero_point).any():
        return [f"{where}: zero point is not 0 (TensorRT quantizes symmetrically)"]
    return []


def _input_problems(graph: onnx.GraphProto) -> list[str]:
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        return [f"{len(inputs)} inputs; the engines take one image batch"]
    tensor = inputs[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if tensor.elem_type not in FLOATS or len(dims) != 4 or dims[1] != 3:
        return [f"input {inputs[0].name}: not a float (N, 3, H, W) batch"]
    if dims[0] is not None or None in dims[1:]:
        return [f"input {inputs[0].name}: only the batch may be dynamic, got {dims}"]
    return []
