"""Camera images in ROS message form -> numpy, for any object with the fields of
sensor_msgs Image / CompressedImage: rclpy's messages in the node, rosbags' in recorded bags.

One decoder for live and recorded frames, so a bag segments exactly as the node would have.
ROS 2 ``cv_bridge`` is not used even where it is installed: these functions cover every
encoding it does, are tested, and cost nothing a copy would not (an apt ``cv_bridge`` built
against numpy 1.x also fails to import next to a pip numpy 2). Raw pixels are viewed in place
with ``np.frombuffer``.

Every function raises ``ImageError`` with a short ``reason`` on unusable input, so callers
can count and report rejections instead of dying on a bad frame. ``check_raw`` and
``check_compressed`` look only at the header and lengths: the node runs them as each frame
arrives, so a bad frame is counted even when a newer one replaces it before decoding.

JPEG data is decoded with simplejpeg (libjpeg-turbo) in strict mode: OpenCV's decoder only
prints libjpeg's "Corrupt JPEG data" warning and returns a half-grey image, which would be
segmented as if it were real. simplejpeg is also faster than ``cv2.imdecode``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import simplejpeg

from .preprocess import MIN_SIDE

# encoding -> (channels, bytes per channel); how each is turned into network input below.
RAW_ENCODINGS = {
    "rgb8": (3, 1),
    "bgr8": (3, 1),
    "rgba8": (4, 1),
    "bgra8": (4, 1),
    "mono8": (1, 1),
    "mono16": (1, 2),
    "yuv422": (2, 1),  # UYVY, the ROS name
    "uyvy": (2, 1),
    "yuyv": (2, 1),
    "yuv422_yuy2": (2, 1),  # YUYV, the ROS name
    "bayer_rggb8": (1, 1),
    "bayer_bggr8": (1, 1),
    "bayer_gbrg8": (1, 1),
    "bayer_grbg8": (1, 1),
}
# OpenCV names a Bayer pattern after the second row's first two pixels, ROS after the
# first row's: this is the same mapping cv_bridge uses.
_TO_RGB = {
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2BGR,
    "yuv422": cv2.COLOR_YUV2RGB_UYVY,
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuyv": cv2.COLOR_YUV2RGB_YUYV,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUYV,
    "bayer_rggb8": cv2.COLOR_BayerBG2RGB,
    "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg8": cv2.COLOR_BayerGR2RGB,
    "bayer_grbg8": cv2.COLOR_BayerGB2RGB,
}
_BGR_ENCODINGS = {"bgr8", "bgra8"}
_SIGNATURES = {"jpeg": b"\xff\xd8", "png": b"\x89PNG\r\n\x1a\n"}


class ImageError(ValueError):
    """An input image that cannot be used; ``reason`` is a short key for counters."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def _echo(text: str, limit: int = 40) -> str:
    """A string from the input, quoted and cut short: a sender controls its length, and it
    goes into logs and every diagnostics report."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def check_size(width: int, height: int, max_pixels: int) -> None:
    """Reject empty, tiny and enormous images before any memory is touched."""
    if width <= 0 or height <= 0:
        raise ImageError("empty", f"{width}x{height} image")
    if min(width, height) < MIN_SIDE:
        raise ImageError("too_small", f"{width}x{height} image: each side needs {MIN_SIDE} pixels")
    if width * height > max_pixels:
        raise ImageError("too_large", f"{width}x{height} exceeds max_input_pixels={max_pixels}")


def check_raw(msg: object, max_pixels: int = 1 << 26) -> None:
    """Raise ImageError unless ``msg`` describes pixels ``image_to_array`` can read."""
    encoding = msg.encoding.lower()
    if encoding not in RAW_ENCODINGS:
        raise ImageError("encoding", f"unsupported encoding {_echo(msg.encoding)}")
    check_size(msg.width, msg.height, max_pixels)
    channels, depth = RAW_ENCODINGS[encoding]
    row = msg.width * channels * depth
    if msg.step < row or len(msg.data) != msg.step * msg.height:
        raise ImageError(
            "data_length",
            f"{msg.width}x{msg.height} {encoding}: step {msg.step}, {len(msg.data)} data bytes "
            f"(need step >= {row} and data == step * height = {msg.step * msg.height})",
        )
    if channels == 2 and msg.width % 2:  # 4:2:2 packs two pixels per chroma pair
        raise ImageError("odd_width", f"{encoding} needs an even width, got {msg.width}")


def image_to_array(msg: object, max_pixels: int = 1 << 26) -> tuple[np.ndarray, str]:
    """Decode a raw Image into (HxWx3 or HxW uint8 array, channel order 'rgb' or 'bgr').

    Three-channel results keep the order they arrived in (no copy for rgb8/bgr8);
    the segmenter swaps channels while it normalises, which costs nothing.
    """
    check_raw(msg, max_pixels)
    encoding = msg.encoding.lower()
    channels, depth = RAW_ENCODINGS[encoding]
    row = msg.width * channels * depth
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, :row]
    if depth == 2:
        dtype = ">u2" if msg.is_bigendian else "<u2"
        mono16 = np.ascontiguousarray(rows).view(dtype).reshape(msg.height, msg.width)
        return (mono16 >> 8).astype(np.uint8), "rgb"
    pixels = rows.reshape(msg.height, msg.width, channels) if channels > 1 else rows
    if encoding in ("rgb8", "bgr8", "mono8"):
        return pixels, "bgr" if encoding == "bgr8" else "rgb"
    order = "bgr" if encoding in _BGR_ENCODINGS else "rgb"
    return cv2.cvtColor(np.ascontiguousarray(pixels), _TO_RGB[encoding]), order


def compressed_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """(width, height) from a JPEG or PNG header without decoding, None if it is neither or
    its header cannot be read.

    JPEG headers are read by libjpeg-turbo itself (simplejpeg's header reader), which parses
    every marker the standard allows, fill bytes and all SOFn included; PNG's IHDR is its
    first chunk by the standard.
    """
    head = bytes(data[:24])
    if head.startswith(_SIGNATURES["png"]):
        if len(head) < 24 or head[12:16] != b"IHDR":
            return None
        return struct.unpack(">II", head[16:24])
    if not head.startswith(_SIGNATURES["jpeg"]):
        return None
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    return width, height


def compressed_kind(msg: object) -> str:
    """'jpeg' or 'png' from the data's signature, checked against what ``format`` declares.

    ``format`` is image_transport's (``jpeg``, ``png``, ``bgr8; jpeg compressed bgr8``) or
    empty; anything else (``compressedDepth``, video codecs) is not a camera frame we read.
    """
    data = bytes(msg.data[:8])
    if not data:
        raise ImageError("empty", "compressed image without data")
    kind = next((k for k, sig in _SIGNATURES.items() if data.startswith(sig)), None)
    declared = msg.format.lower()
    named = [k for k in ("jpeg", "png") if k in declared or (k == "jpeg" and "jpg" in declared)]
    if declared and (not named or "compresseddepth" in declared):
        raise ImageError("format", f"unsupported compressed format {_echo(msg.format)}")
    if kind is None:
        raise ImageError("decode", f"{len(msg.data)} bytes that are neither JPEG nor PNG")
    if named and kind not in named:
        raise ImageError("format", f"format {_echo(msg.format)} but the data is {kind.upper()}")
    return kind


def check_compressed(msg: object, max_pixels: int = 1 << 26) -> str:
    """'jpeg' or 'png'; ImageError for what the header shows: no data, wrong format, too many
    pixels."""
    kind = compressed_kind(msg)
    _check_header(memoryview(msg.data), kind, max_pixels)
    return kind


def _check_header(data: memoryview, kind: str | None, max_pixels: int) -> None:
    """The size check before decoding; a JPEG or PNG whose size its header does not give is
    refused unread (it could be any size)."""
    size = compressed_size(data)
    if size is None and kind is not None:
        raise ImageError(
            "corrupt", f"{len(data)} bytes of {kind.upper()} whose header gives no image size"
        )
    if size is not None:
        check_size(*size, max_pixels)


def compressed_to_array(msg: object, max_pixels: int = 1 << 26) -> tuple[np.ndarray, str]:
    """Decode a JPEG/PNG CompressedImage into (array, channel order); rejects bombs unread
    and corrupt data (reason ``corrupt``) instead of returning a partly grey image."""
    return _decode(np.frombuffer(msg.data, np.uint8), compressed_kind(msg), max_pixels)


def read_image_file(path: Path, max_pixels: int = 1 << 26) -> tuple[np.ndarray, str]:
    """An image file as (array, channel order): JPEG and PNG exactly as a CompressedImage,
    other formats (BMP, TIFF, WebP) through OpenCV. The ImageError does not name the file."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageError("unreadable", error.strerror or str(error)) from None
    return decode_image_bytes(data, max_pixels)


def decode_image_bytes(data: bytes, max_pixels: int = 1 << 26) -> tuple[np.ndarray, str]:
    """An image file's bytes (an image embedded in an annotation), as ``read_image_file``."""
    kind = next((k for k, sig in _SIGNATURES.items() if data.startswith(sig)), None)
    return _decode(np.frombuffer(data, np.uint8), kind, max_pixels)


def _decode(data: np.ndarray, kind: str | None, max_pixels: int) -> tuple[np.ndarray, str]:
    """``kind``: 'jpeg', 'png' or None for whatever OpenCV reads."""
    _check_header(memoryview(data), kind, max_pixels)
    if kind == "jpeg":
        try:
            image = simplejpeg.decode_jpeg(data, colorspace="BGR", strict=True)
        except ValueError as error:
            raise ImageError("corrupt", f"{len(data)} bytes of JPEG: {error}") from None
    else:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ImageError("corrupt", f"cannot decode {len(data)} bytes of {kind or 'image'}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageError("format", f"{image.dtype} pixels: 8- and 16-bit images only")
    check_size(image.shape[1], image.shape[0], max_pixels)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image, "bgr"
