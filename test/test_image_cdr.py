"""Image <-> CDR bytes, and PointCloud2 to them, checked against rclpy's own serialization
(the real type support)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, PointCloud2, PointField
from std_msgs.msg import Header

from bisenet_ros.image_decoding import ImageError
from bisenet_ros.inference.points import point_dtype, point_fields
from bisenet_ros.ros.image_cdr import parse_image, serialize_image, serialize_points
from bisenet_ros.ros.image_conversion import array_to_image

RNG = np.random.default_rng(0)
# frame_id lengths 0..5 and odd image sizes move every later field across alignment cases
CASES = [
    (frame_id, encoding, shape)
    for frame_id in ("", "a", "ab", "abc", "abcd", "cam_left_optical")
    for encoding, shape in (("mono8", (5, 7)), ("rgb8", (3, 5, 3)), ("rgba8", (2, 3, 4)))
]


def header(frame_id: str) -> Header:
    return Header(stamp=Time(sec=1_700_000_123, nanosec=456_789), frame_id=frame_id)


@pytest.mark.parametrize(("frame_id", "encoding", "shape"), CASES)
def test_serialized_image_is_what_rclpy_reads(frame_id, encoding, shape):
    array = RNG.integers(0, 256, shape, dtype=np.uint8)
    msg = deserialize_message(serialize_image(array, encoding, header(frame_id)), Image)
    assert msg == array_to_image(array, encoding, header(frame_id))


@pytest.mark.parametrize("frame_id", ["", "a", "ab", "abc", "abcd", "cam_left_optical"])
@pytest.mark.parametrize("with_confidence", [True, False])
def test_point_cloud_is_what_rclpy_reads(frame_id, with_confidence):
    fields = point_fields(with_confidence)
    records = RNG.standard_normal((3, 5, 4), np.float32)
    points = records.view(point_dtype(with_confidence))[..., 0]
    msg = deserialize_message(serialize_points(points, fields, header(frame_id)), PointCloud2)
    assert msg.header == header(frame_id)
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (3, 5, 16, 80)
    assert not msg.is_bigendian and not msg.is_dense
    types = {"<f4": PointField.FLOAT32, "u1": PointField.UINT8}
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        (name, offset, types[kind], 1) for name, offset, kind in fields
    ]
    assert bytes(msg.data) == records.tobytes()


@pytest.mark.parametrize(("frame_id", "encoding", "shape"), CASES)
def test_parse_reads_what_rclpy_writes(frame_id, encoding, shape):
    msg = array_to_image(RNG.integers(0, 256, shape, dtype=np.uint8), encoding, header(frame_id))
    msg.is_bigendian = 1
    raw = parse_image(serialize_message(msg))
    assert raw.header == msg.header
    assert (raw.height, raw.width, raw.encoding, raw.step) == (
        msg.height,
        msg.width,
        msg.encoding,
        msg.step,
    )
    assert raw.is_bigendian == 1 and bytes(raw.data) == bytes(msg.data)


def test_parse_views_pixels_without_copying():
    buffer = serialize_message(array_to_image(np.zeros((4, 4), np.uint8), "mono8", header("c")))
    raw = parse_image(buffer)
    assert raw.data.obj is buffer


def test_big_endian_encapsulation():
    """A big-endian writer (another DDS vendor) is read too."""
    fields = [
        b"\x00\x00\x00\x00",  # CDR big endian
        struct.pack(">iI", 7, 8),
        struct.pack(">I", 2) + b"c\x00",
        b"\x00\x00",  # align height to 4
        struct.pack(">II", 1, 2),
        struct.pack(">I", 6) + b"mono8\x00",
        b"\x00",  # is_bigendian
        b"\x00",  # align step to 4
        struct.pack(">II", 2, 2) + b"\x05\x06",
    ]
    raw = parse_image(b"".join(fields))
    assert raw.header.stamp == Time(sec=7, nanosec=8) and raw.header.frame_id == "c"
    assert (raw.height, raw.width, raw.encoding, raw.step, bytes(raw.data)) == (
        1,
        2,
        "mono8",
        2,
        b"\x05\x06",
    )


@pytest.mark.parametrize("cut", [0, 3, 10, 30, -1])
def test_truncated_bytes_are_rejected(cut):
    buffer = serialize_message(array_to_image(np.ones((8, 8, 3), np.uint8), "rgb8", header("x")))
    with pytest.raises(ImageError) as error:
        parse_image(buffer[:cut])
    assert error.value.reason == "malformed"


def test_unknown_encapsulation_is_rejected():
    buffer = serialize_message(array_to_image(np.ones((2, 2), np.uint8), "mono8", header("x")))
    with pytest.raises(ImageError, match="encapsulation"):
        parse_image(b"\x00\x0a" + buffer[2:])
