"""In-memory rewrites of exported graphs: cheaper on ONNX Runtime, acceptable to TensorRT.

Two costs dominate the exported tail on the CPU: ONNX Runtime always runs every node of a
graph, so an unused ``confidence`` branch is paid for on every ``ids``-only call; and
``Softmax`` over the class axis of an NCHW tensor is transposed internally (slower than the
whole network at 512x1024). Pruning gives an ids-only graph; the maximum softmax
probability is rewritten as ``1 / sum(exp(x - max(x)))``, the same value without Softmax.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def pruned(model: onnx.ModelProto, outputs: list[str]) -> onnx.ModelProto:
    """A copy of ``model`` computing only ``outputs`` (metadata kept)."""
    inputs = [i.name for i in model.graph.input]
    extracted = onnx.utils.Extractor(model).extract_model(inputs, outputs)
    extracted.metadata_props.extend(model.metadata_props)
    return extracted


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def cheap_max_softmax(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace ``ReduceMax(Softmax(x, axis=1), axis=1)`` by ``1 / ReduceSum(Exp(x - max x))``."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    opset = _opset(model)
    for softmax in [n for n in graph.node if n.op_type == "Softmax"]:
        axis = next((a.i for a in softmax.attribute if a.name == "axis"), -1)
        users = consumers.get(softmax.output[0], [])
        if axis != 1 or len(users) != 1 or users[0].op_type != "ReduceMax":
            continue
        reduce = users[0]
        keep = next((a.i for a in reduce.attribute if a.name == "keepdims"), 1)
        x, out, tag = softmax.input[0], reduce.output[0], softmax.name or "softmax"
        axes = f"{tag}_axes"
        graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), axes))
        top = (
            helper.make_node("ReduceMax", [x, axes], [f"{tag}_max"], keepdims=1)
            if opset >= 18
            else helper.make_node("ReduceMax", [x], [f"{tag}_max"], axes=[1], keepdims=1)
        )
        replacement = [
            top,
            helper.make_node("Sub", [x, f"{tag}_max"], [f"{tag}_shifted"]),
            helper.make_node("Exp", [f"{tag}_shifted"], [f"{tag}_exp"]),
            helper.make_node("ReduceSum", [f"{tag}_exp", axes], [f"{tag}_sum"], keepdims=keep),
            helper.make_node("Reciprocal", [f"{tag}_sum"], [out]),
        ]
        index = list(graph.node).index(softmax)
        graph.node.remove(softmax)
        graph.node.remove(reduce)
        for offset, node in enumerate(replacement):
            graph.node.insert(index + offset, node)
    return model


def depthwise_grouped_convs(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite grouped convolutions with several outputs per input channel as depthwise ones.

    BiSeNetV2's gather-and-expansion layers expand C channels to 6C with a 3x3 convolution
    of C groups. ONNX Runtime's int8 kernels have a fast path for depthwise convolutions
    (one output per group) but not for these: at 512x1024 they take a quarter of the int8
    network's time. The same result comes from repeating each input channel (a 1x1
    convolution with 0/1 weights, exact in float and in int8) and a depthwise convolution
    with the original weights.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    for conv in [n for n in graph.node if n.op_type == "Conv"]:
        group = next((a for a in conv.attribute if a.name == "group"), None)
        weight = weights.get(conv.input[1])
        if group is None or group.i == 1 or weight is None:
            continue
        outputs, per_group = weight.dims[0], weight.dims[1]
        if per_group != 1 or outputs == group.i:
            continue
        repeat = np.zeros((outputs, group.i, 1, 1), np.float32)
        repeat[np.arange(outputs), np.arange(outputs) // (outputs // group.i)] = 1.0
        name = f"{conv.name}_repeat"
        graph.initializer.append(numpy_helper.from_array(repeat, f"{name}_weight"))
        graph.node.insert(
            list(graph.node).index(conv),
            helper.make_node("Conv", [conv.input[0], f"{name}_weight"], [name], name=name),
        )
        conv.input[0] = name
        group.i = outputs
    return model


def uint8_outputs_through_float(model: onnx.ModelProto) -> onnx.ModelProto:
    """Make every ``Cast(to=uint8)`` graph output take a float input: TensorRT converts to
    uint8 only from float, and ONNX Runtime's optimiser merges the exporter's
    ``ArgMax -> Cast(float) -> Cast(uint8)`` into one Cast from int64."""
    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in graph.value_info}
    outputs = {o.name for o in graph.output}
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    for node in list(graph.node):
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if node.op_type != "Cast" or to != onnx.TensorProto.UINT8 or node.output[0] not in outputs:
            continue
        if types.get(node.input[0]) in floats:
            continue
        as_float = node.input[0] + "_as_float"
        cast = helper.make_node("Cast", [node.input[0]], [as_float], to=onnx.TensorProto.FLOAT)
        graph.node.insert(list(graph.node).index(node), cast)
        node.input[0] = as_float
    return model
