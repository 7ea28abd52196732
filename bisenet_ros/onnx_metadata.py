"""What an ONNX file says about itself: the manifest it carries, the precision it computes in.

Needs only the ``onnx`` package (no PyTorch): the node and ``bisenet infer`` read these from an
exported ``.onnx`` on machines without PyTorch; the exporters write them. ``onnx`` is imported
when a graph is read, so a machine that only runs TensorRT engines needs none.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .manifest import ONNX_METADATA_KEY, Manifest, ManifestError, sidecar_path

if TYPE_CHECKING:
    import onnx


def set_manifest_metadata(proto: onnx.ModelProto, manifest: Manifest) -> None:
    """Store the manifest (JSON) in the model's ``metadata_props``, replacing an older one."""
    kept = [p for p in proto.metadata_props if p.key != ONNX_METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_METADATA_KEY, manifest.to_json()


def _load(path: str | Path) -> onnx.ModelProto:
    """The graph without its weights' external data; ValueError for what is not ONNX."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf's DecodeError is no ValueError
        raise ValueError(f"{path} is not a readable ONNX model: {error}") from None
    if not proto.graph.node:  # protobuf reads an empty file as an empty model
        raise ValueError(f"{path} is not an ONNX model: no graph (an empty or damaged file)")
    return proto


def read_onnx_manifest(path: str | Path) -> Manifest:
    """The manifest of an ONNX model: from its metadata, else from the sidecar file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    proto = _load(path)
    for prop in proto.metadata_props:
        if prop.key == ONNX_METADATA_KEY:
            return Manifest.from_json(prop.value)
    if sidecar_path(path).is_file():
        return Manifest.load(sidecar_path(path))
    raise ManifestError(
        f"{path} carries no manifest (no '{ONNX_METADATA_KEY}' metadata and no "
        f"{sidecar_path(path).name}); export it with `bisenet export onnx`"
    )


def stored_precision(path: str | Path) -> str:
    """The precision the ONNX graph in ``path`` computes in (see ``graph_precision``)."""
    return graph_precision(_load(path))


def graph_precision(model: onnx.ModelProto) -> str:
    """The precision an ONNX graph computes in: ``int8`` (quantised nodes), ``fp16`` (fp16
    weights, see ``export.fp16``) or ``fp32``."""
    from onnx import TensorProto

    graph = model.graph
    if any(n.op_type in ("QuantizeLinear", "QLinearConv", "ConvInteger") for n in graph.node):
        return "int8"
    if any(t.data_type == TensorProto.FLOAT16 for t in graph.initializer):
        return "fp16"
    return "fp32"
