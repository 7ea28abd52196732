"""What an ONNX file says about itself: the manifest it carries, the precision it computes in.

Reading needs no ``onnx`` package and no PyTorch: a Jetson that runs exported graphs with
ONNX Runtime (or TensorRT engines) has neither. The few fields read are decoded straight
from the protobuf wire format, by the field numbers of ``onnx.proto`` (stable since ONNX's
first release). Writing (the exporters) works on ``onnx.ModelProto``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .manifest import ONNX_METADATA_KEY, Manifest, ManifestError, sidecar_path

if TYPE_CHECKING:
    import onnx

# onnx.proto field numbers of what is read here
MODEL_GRAPH, MODEL_METADATA_PROPS = 7, 14
GRAPH_NODE, GRAPH_INITIALIZER = 1, 5
NODE_OP_TYPE = 4
TENSOR_DATA_TYPE = 2
ENTRY_KEY, ENTRY_VALUE = 1, 2
FLOAT16 = 10  # TensorProto.FLOAT16
QUANTISED_OPS = {"QuantizeLinear", "QLinearConv", "ConvInteger"}


@dataclass
class GraphSummary:
    """The metadata, operator types and initializer element types of an ONNX model."""

    metadata: dict[str, str] = field(default_factory=dict)
    op_types: set[str] = field(default_factory=set)
    initializer_types: set[int] = field(default_factory=set)

    @classmethod
    def of_model(cls, model: onnx.ModelProto) -> GraphSummary:
        return cls(
            {p.key: p.value for p in model.metadata_props},
            {n.op_type for n in model.graph.node},
            {t.data_type for t in model.graph.initializer},
        )

    @classmethod
    def of_file(cls, path: str | Path) -> GraphSummary:
        """ValueError for what is not an ONNX model (a damaged or empty file, another format)."""
        try:
            summary = cls._decode(memoryview(Path(path).read_bytes()))
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not a readable ONNX model: {error}") from None
        if not summary.op_types:
            raise ValueError(f"{path} is not an ONNX model: no graph (an empty or damaged file)")
        return summary

    @classmethod
    def _decode(cls, model: memoryview) -> GraphSummary:
        summary = cls()
        for number, value in _fields(model):
            if number == MODEL_METADATA_PROPS:
                entry = dict(_fields(_message(value)))
                key, text = entry.get(ENTRY_KEY, b""), entry.get(ENTRY_VALUE, b"")
                summary.metadata[_text(key)] = _text(text)
            elif number == MODEL_GRAPH:
                for part, item in _fields(_message(value)):
                    if part == GRAPH_NODE:
                        op = dict(_fields(_message(item))).get(NODE_OP_TYPE, b"")
                        summary.op_types.add(_text(op))
                    elif part == GRAPH_INITIALIZER:
                        tensor = dict(_fields(_message(item)))
                        summary.initializer_types.add(int(tensor.get(TENSOR_DATA_TYPE, 0)))
        return summary

    @property
    def precision(self) -> str:
        """``int8`` (quantised nodes), ``fp16`` (fp16 weights, see ``export.fp16``) or
        ``fp32``."""
        if self.op_types & QUANTISED_OPS:
            return "int8"
        if FLOAT16 in self.initializer_types:
            return "fp16"
        return "fp32"


def _varint(buffer: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buffer):
            raise ValueError("truncated protobuf varint")
        byte = buffer[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("protobuf varint longer than 64 bits")


def _fields(message: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of a protobuf message: an int for a varint, else the bytes."""
    pos = 0
    while pos < len(message):
        key, pos = _varint(message, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _varint(message, pos)
            yield number, value
            continue
        if wire_type == 2:
            size, pos = _varint(message, pos)
        elif wire_type in (1, 5):  # fixed 64 and 32 bits
            size = 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"protobuf wire type {wire_type} (field {number})")
        if number == 0 or pos + size > len(message):
            raise ValueError("truncated or malformed protobuf")
        yield number, message[pos : pos + size]
        pos += size


def _message(value: int | memoryview) -> memoryview:
    if not isinstance(value, memoryview):
        raise ValueError("a number where a protobuf message was expected")
    return value


def _text(value: int | memoryview) -> str:
    return bytes(_message(value)).decode("utf-8")


def set_manifest_metadata(proto: onnx.ModelProto, manifest: Manifest) -> None:
    """Store the manifest (JSON) in the model's ``metadata_props``, replacing an older one."""
    kept = [p for p in proto.metadata_props if p.key != ONNX_METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_METADATA_KEY, manifest.to_json()


def read_onnx_manifest(path: str | Path) -> Manifest:
    """The manifest of an ONNX model: from its metadata, else from the sidecar file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    stored = GraphSummary.of_file(path).metadata.get(ONNX_METADATA_KEY)
    if stored is not None:
        return Manifest.from_json(stored)
    if sidecar_path(path).is_file():
        return Manifest.load(sidecar_path(path))
    raise ManifestError(
        f"{path} carries no manifest (no '{ONNX_METADATA_KEY}' metadata and no "
        f"{sidecar_path(path).name}); export it with `bisenet export onnx`"
    )


def stored_precision(path: str | Path) -> str:
    """The precision the ONNX graph in ``path`` computes in (see ``GraphSummary.precision``)."""
    return GraphSummary.of_file(path).precision


def graph_precision(model: onnx.ModelProto) -> str:
    """The precision an in-memory ONNX graph computes in."""
    return GraphSummary.of_model(model).precision
