"""In-memory rewrites of exported graphs: cheaper on ONNX Runtime, acceptable to TensorRT.

Two costs dominate the exported tail on the CPU: ONNX Runtime always runs every node of a
graph, so an unused ``confidence`` branch is paid for on every ``ids``-only call; and
``Softmax`` over the class axis of an NCHW tensor is transposed internally (slower than the
whole network at 512x1024). Pruning gives an ids-only graph; the maximum softmax
probability is rewritten as ``1 / sum(exp(x - max(x)))``, the same value without Softmax.
The int8 graph is written in TensorRT's form and given to ONNX Runtime in the integer form
its x86 kernels are fast for (``for_onnxruntime_int8``).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

QDQ = ("QuantizeLinear", "DequantizeLinear")


def pruned(model: onnx.ModelProto, outputs: list[str]) -> onnx.ModelProto:
    """A copy of ``model`` computing only ``outputs`` (metadata kept)."""
    inputs = [i.name for i in model.graph.input]
    extracted = onnx.utils.Extractor(model).extract_model(inputs, outputs)
    extracted.metadata_props.extend(model.metadata_props)
    return extracted


def opset(model: onnx.ModelProto) -> int:
    """The version of the default ONNX domain ``model`` is written in."""
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def cheap_max_softmax(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace ``ReduceMax(Softmax(x, axis=1), axis=1)`` by ``1 / ReduceSum(Exp(x - max x))``."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    version = opset(model)
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
            if version >= 18
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


def for_onnxruntime_int8(model: onnx.ModelProto) -> onnx.ModelProto:
    """The int8 Q/DQ graph (TensorRT's form: int8 activations with zero point 0, float
    biases) in the form ONNX Runtime's x86 integer kernels run fast; a graph already in that
    form passes unchanged."""
    return integer_biases(unsigned_activations(relu_inside_integer_ops(model)))


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return users


def relus_unquantized_before(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop each Q/DQ pair that feeds only a Relu whose output is quantised:
    ``X -> Q -> DQ -> Relu -> Q -> DQ`` becomes ``X -> Relu -> Q -> DQ``.

    ONNX Runtime's quantiser quantises both sides of a Relu. TensorRT's placement quantises
    the inputs of weighted layers (``Conv -> Relu -> Q -> DQ -> Conv``) and fuses the Relu
    into the convolution; it is also one rounding fewer.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers = _consumers(graph)
    for relu in [n for n in graph.node if n.op_type == "Relu"]:
        dequantize = producer.get(relu.input[0])
        if dequantize is None or dequantize.op_type != "DequantizeLinear":
            continue
        quantize = producer.get(dequantize.input[0])
        if (
            quantize is not None
            and quantize.op_type == "QuantizeLinear"
            and consumers[quantize.output[0]] == [dequantize]
            and consumers[dequantize.output[0]] == [relu]
            and [n.op_type for n in consumers.get(relu.output[0], [])] == ["QuantizeLinear"]
        ):
            relu.input[0] = quantize.input[0]
            graph.node.remove(dequantize)
            graph.node.remove(quantize)
    return unused_removed(model)


def relu_inside_integer_ops(model: onnx.ModelProto) -> onnx.ModelProto:
    """Let ONNX Runtime fold each quantised Relu into the op before it.

    With nothing quantised between an op and its Relu (``relus_unquantized_before``), the
    Q after the Relu is stored as uint8 with zero point 0 and the same scale: the same
    values wherever int8 holds them, and a zero point at the type's minimum, which is what
    lets ONNX Runtime remove the Relu and fuse the op with its Q/DQ neighbours.
    """
    model = relus_unquantized_before(model)
    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    consumers = _consumers(graph)
    for relu in [n for n in graph.node if n.op_type == "Relu"]:
        users = consumers.get(relu.output[0], [])
        quantize = users[0] if len(users) == 1 else None
        if quantize is None or quantize.op_type != "QuantizeLinear":
            continue
        if not _symmetric_int8(quantize, constants):
            continue
        int8_zero, uint8_zero = quantize.input[2], f"{quantize.input[2]}_relu_uint8"
        if uint8_zero not in constants:
            shape = constants[int8_zero].dims
            constants[uint8_zero] = numpy_helper.from_array(np.zeros(shape, np.uint8), uint8_zero)
            graph.initializer.append(constants[uint8_zero])
        for node in [quantize, *consumers.get(quantize.output[0], [])]:
            if node.op_type in QDQ and node.input[2] == int8_zero:
                node.input[2] = uint8_zero
    del graph.value_info[:]  # the Q outputs changed type
    return unused_removed(model)


def _symmetric_int8(node: onnx.NodeProto, constants: dict) -> bool:
    """Whether a Q/DQ node has an int8 zero point of 0 (TensorRT's form)."""
    if len(node.input) < 3 or node.input[2] not in constants:
        return False
    zero_point = constants[node.input[2]]
    is_int8 = zero_point.data_type == onnx.TensorProto.INT8
    return is_int8 and not numpy_helper.to_array(zero_point).any()


def integer_biases(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give each convolution between Q/DQ pairs an int32 bias (scale: input scale x weight
    scale, zero point 0), the form ONNX Runtime fuses into one integer convolution.

    TensorRT's int8 graph keeps float biases (its parser takes no int32 Q/DQ); ONNX Runtime
    then runs those convolutions in float between the Q/DQ nodes.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}

    def array(name: str) -> np.ndarray:
        return numpy_helper.to_array(constants[name])

    for conv in [n for n in graph.node if n.op_type == "Conv" and len(n.input) == 3]:
        x, w = producer.get(conv.input[0]), producer.get(conv.input[1])
        if conv.input[2] not in constants or not x or not w:
            continue
        if x.op_type != "DequantizeLinear" or w.op_type != "DequantizeLinear":
            continue
        bias = array(conv.input[2])
        scale = (array(x.input[1]) * array(w.input[1])).astype(np.float32)
        if scale.size not in (1, bias.size):
            continue
        scale = np.broadcast_to(scale.reshape(-1), bias.shape).copy()
        name = f"{conv.input[2]}_int32"
        graph.initializer.extend([
            numpy_helper.from_array(np.round(bias / scale).astype(np.int32), name),
            numpy_helper.from_array(scale, f"{name}_scale"),
            numpy_helper.from_array(np.zeros(bias.shape, np.int32), f"{name}_zero_point"),
        ])  # fmt: skip
        dequantize = helper.make_node(
            "DequantizeLinear", [name, f"{name}_scale", f"{name}_zero_point"], [f"{name}_dq"],
            axis=0,
        )  # fmt: skip
        graph.node.insert(list(graph.node).index(conv), dequantize)
        conv.input[2] = f"{name}_dq"
    return unused_removed(model)


def unsigned_activations(model: onnx.ModelProto) -> onnx.ModelProto:
    """Store int8 activations with zero point 0 as uint8 with zero point 128: the same
    values (q + 128), in the type ONNX Runtime's x86 integer kernels are fast for."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    shifted: dict[str, str] = {}
    for node in graph.node:
        weight = node.op_type == "DequantizeLinear" and node.input[0] in constants
        if node.op_type not in QDQ or weight or not _symmetric_int8(node, constants):
            continue
        if node.input[2] not in shifted:
            shifted[node.input[2]] = f"{node.input[2]}_uint8"
            shape = constants[node.input[2]].dims
            uint8 = np.full(shape, 128, np.uint8)
            graph.initializer.append(numpy_helper.from_array(uint8, shifted[node.input[2]]))
        node.input[2] = shifted[node.input[2]]
    del graph.value_info[:]  # the Q outputs changed type
    return unused_removed(model)


def unused_removed(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop the initializers and Constant nodes nothing reads any more (in place)."""
    graph = model.graph
    used = {i for node in graph.node for i in node.input} | {o.name for o in graph.output}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for node in [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in used]:
        graph.node.remove(node)
    return model
