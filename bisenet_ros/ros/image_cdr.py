"""sensor_msgs/Image straight from and to its serialized (CDR) bytes, and the node's
sensor_msgs/PointCloud2 to them.

rclpy turns every received Image into a C struct and then into a Python object: two
copies of the pixels plus per-message work, paid in the executor thread for every frame,
including the ones superseded before inference. On a 2-core machine at 1024x2048 rgb8
that is most of what the node adds to the Segmenter. A ``raw=True`` subscription hands
over the serialized bytes instead (one copy), and ``parse_image`` views the pixels in
place. Outputs go the same way: ``serialize_image`` and ``serialize_points`` write the bytes
that ``publish`` sends as they are, skipping rclpy's conversion of ``uint8[]``.

Layout (OMG CDR as Fast DDS writes ROS messages): a 4-byte encapsulation header naming
the byte order, then the fields, each aligned to its own size from the end of that
header; strings are a uint32 length (counting the NUL), the bytes and a NUL. Image has
no 8-byte field, so plain XCDR1 and XCDR2 lay it out identically.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import numpy as np
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from bisenet_ros.image_decoding import ImageError

# encapsulation identifier -> struct byte order (CDR and PLAIN_CDR2, big and little endian)
_BYTE_ORDER = {b"\x00\x00": ">", b"\x00\x01": "<", b"\x00\x06": ">", b"\x00\x07": "<"}
_ORIGIN = 4  # alignment counts from the end of the encapsulation header


class RawImage(NamedTuple):
    """The fields of a received Image; ``data`` is a view into the received bytes."""

    header: Header
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


class _Reader:
    """Reads CDR fields in order, refusing to run past the end."""

    def __init__(self, buffer: bytes) -> None:
        self.view = memoryview(buffer)
        order = _BYTE_ORDER.get(bytes(self.view[:2]))
        if order is None:
            raise ImageError("malformed", f"unknown CDR encapsulation {bytes(self.view[:4])!r}")
        self.uint32 = struct.Struct(order + "I")
        self.int32 = struct.Struct(order + "i")
        self.pos = _ORIGIN

    def take(self, size: int, align: int = 1) -> memoryview:
        self.pos += -(self.pos - _ORIGIN) % align
        end = self.pos + size
        if size < 0 or end > len(self.view):
            raise ImageError(
                "malformed", f"serialized Image ends at byte {len(self.view)}, field needs {end}"
            )
        field = self.view[self.pos : end]
        self.pos = end
        return field

    def number(self, kind: struct.Struct) -> int:
        return kind.unpack(self.take(4, 4))[0]

    def string(self) -> str:
        raw = bytes(self.take(self.number(self.uint32)))
        return raw.rstrip(b"\x00").decode("utf-8", errors="replace")


def parse_image(buffer: bytes) -> RawImage:
    """A serialized sensor_msgs/Image as fields, without copying the pixels."""
    reader = _Reader(buffer)
    sec = reader.number(reader.int32)
    nanosec = reader.number(reader.uint32)
    header = Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=reader.string())
    height, width = reader.number(reader.uint32), reader.number(reader.uint32)
    encoding = reader.string()
    is_bigendian = reader.take(1)[0]
    step = reader.number(reader.uint32)
    data = reader.take(reader.number(reader.uint32))
    return RawImage(header, height, width, encoding, is_bigendian, step, data)


class _Writer:
    """Collects little-endian CDR fields, aligning each 4-byte one."""

    def __init__(self) -> None:
        self.parts: list = [b"\x00\x01\x00\x00"]
        self.pos = _ORIGIN

    def add(self, part: bytes | memoryview) -> None:
        self.parts.append(part)
        self.pos += len(part)

    def uint32s(self, fmt: str, *values: int) -> None:
        """4-byte fields (``fmt`` of struct codes i/I), aligned."""
        padding = -(self.pos - _ORIGIN) % 4
        if padding:
            self.add(b"\x00" * padding)
        self.add(struct.pack("<" + fmt, *values))

    def string(self, text: str) -> None:
        raw = text.encode() + b"\x00"
        self.uint32s("I", len(raw))
        self.add(raw)


def serialize_image(array: np.ndarray, encoding: str, header: Header) -> bytes:
    """The little-endian CDR bytes of an Image holding ``array`` (uint8 HxW or HxWxC)."""
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    out = _Writer()
    out.uint32s("iI", header.stamp.sec, header.stamp.nanosec)
    out.string(header.frame_id)
    out.uint32s("II", height, width)
    out.string(encoding)
    out.add(b"\x00")  # is_bigendian
    out.uint32s("II", width * channels * array.itemsize, array.nbytes)
    out.add(memoryview(array).cast("B"))
    return b"".join(out.parts)


# numpy type of a point field -> sensor_msgs/PointField datatype
_POINT_FIELD_TYPES = {"u1": 2, "<f4": 7}  # UINT8, FLOAT32


def serialize_points(points: np.ndarray, fields: list[tuple[str, int, str]], header) -> bytes:
    """The little-endian CDR bytes of an organized PointCloud2 holding ``points`` (an HxW
    structured array); ``fields``: (name, byte offset, numpy type) of each point field.
    ``is_dense`` is false: points without depth are NaN."""
    height, width = points.shape
    out = _Writer()
    out.uint32s("iI", header.stamp.sec, header.stamp.nanosec)
    out.string(header.frame_id)
    out.uint32s("III", height, width, len(fields))
    for name, offset, kind in fields:
        out.string(name)
        out.uint32s("I", offset)
        out.add(bytes([_POINT_FIELD_TYPES[kind]]))
        out.uint32s("I", 1)  # count
    out.add(b"\x00")  # is_bigendian
    step = points.dtype.itemsize
    out.uint32s("III", step, step * width, points.nbytes)
    out.add(memoryview(np.ascontiguousarray(points)).cast("B"))
    out.add(b"\x00")  # is_dense
    return b"".join(out.parts)
