"""The fp16 graph: weights and arithmetic in fp16, a float32 input, the same outputs.

TensorRT 11 builds only strongly typed networks, whose precision is the graph's own, so an
fp16 engine needs an fp16 graph (10.x builds from it too). The exported fp32 graph is
rewritten rather than re-exported from PyTorch, so any exported ``.onnx`` converts without
torch. The image path is followed from the input: every float tensor computed from the
image becomes fp16, and the float constants it meets are stored again in fp16. Shape
arithmetic (sizes computed in float, Resize's ``scales``) stays float32, and the uint8
outputs are cast from fp16; a float output (logits) is cast back to float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..atomic import atomic_path
from ..manifest import sidecar_path
from ..onnx_metadata import graph_precision, read_onnx_manifest, set_manifest_metadata
from .graph import unused_removed

# inputs that keep their own float type whatever the data's (ONNX type T2, not T)
OWN_TYPE_INPUTS = {"Resize": {1, 2}}


def half_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the float32 graph ``model`` computing in fp16 (input and outputs kept)."""
    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    tensors = [*graph.input, *graph.value_info, *graph.output]
    types = {v.name: v.type.tensor_type.elem_type for v in tensors}
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    half: set[str] = set()
    halved: dict[str, str] = {}  # float32 name -> its fp16 twin
    nodes: list[onnx.NodeProto] = []

    def fp16_of(name: str) -> str:
        """The fp16 twin of a float32 tensor: a stored constant, or a Cast node."""
        if name not in halved:
            halved[name] = f"{name}_fp16"
            if name in constants:
                array = constants[name].astype(np.float16)
                graph.initializer.append(numpy_helper.from_array(array, halved[name]))
            else:
                nodes.append(
                    helper.make_node("Cast", [name], [halved[name]], to=TensorProto.FLOAT16)
                )
        return halved[name]

    for image in (i for i in graph.input if i.type.tensor_type.elem_type == TensorProto.FLOAT):
        fp16_of(image.name)
        half.add(halved[image.name])
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] in constants:
            nodes.append(node)
            continue
        fixed = OWN_TYPE_INPUTS.get(node.op_type, set())
        data = [i for at, i in enumerate(node.input) if at not in fixed]
        if any(halved.get(i) in half for i in data):
            for at, name in enumerate(node.input):
                if at not in fixed and _is_float32(name, types, constants):
                    node.input[at] = fp16_of(name)
            if node.op_type != "Cast":
                half.update(o for o in node.output if types.get(o) == TensorProto.FLOAT)
                halved.update({o: o for o in node.output if o in half})
        nodes.append(node)
    for output in graph.output:
        if output.name in half:  # a float output (logits) leaves as float32
            inner = f"{output.name}_fp16"
            for node in nodes:
                node.output[:] = [inner if o == output.name else o for o in node.output]
                node.input[:] = [inner if i == output.name else i for i in node.input]
            nodes.append(helper.make_node("Cast", [inner], [output.name], to=TensorProto.FLOAT))
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    return unused_removed(model)


def _is_float32(name: str, types: dict, constants: dict) -> bool:
    if name in constants:
        return constants[name].dtype == np.float32
    return types.get(name) == TensorProto.FLOAT


def export_fp16(fp32_path: str | Path, output: str | Path) -> Path:
    """Write the fp16 graph of the exported graph ``fp32_path`` (and its manifest) to ``output``."""
    model = onnx.load(str(fp32_path))
    if graph_precision(model) != "fp32":
        raise ValueError(f"{fp32_path} is already a {graph_precision(model)} graph")
    manifest = read_onnx_manifest(fp32_path)
    model = half_graph(model)
    set_manifest_metadata(model, manifest)
    onnx.checker.check_model(model, full_check=True)
    output = Path(output)
    with atomic_path(output, suffix=".onnx") as tmp:
        onnx.save(model, str(tmp))
    manifest.save(sidecar_path(output))
    return output
