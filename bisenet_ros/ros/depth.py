"""Aligned depth images on their way to ``~/points``: kept briefly as they arrive, paired
with the colour frame of the same stamp, and checked before use.

A depth image aligned to the colour camera (a RealSense ``aligned_depth_to_color``, REP 118:
16UC1 millimetres or 32FC1 metres) carries the colour frame's stamp. Pairing by stamp keeps
the newest-frame policy intact: the worker segments whatever colour frame is newest and looks
up the depth taken with it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

import numpy as np

from bisenet_ros.inference.points import DEPTH_SCALE

from .camera_stats import Problem
from .image_cdr import RawImage

KEEP = 10  # depth images kept per camera: a third of a second at 30 Hz
WAIT_S = 0.1  # how long the worker waits for a frame's depth that has not arrived yet
SILENT_S = 1.0  # a depth stream quiet this long is not waited for: its camera is down


class DepthError(ValueError):
    """A depth image that cannot be used for this frame, with its counter key."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


class DepthBuffer:
    """The last few depth images of one camera: the executor adds, the worker looks up."""

    def __init__(self, topic: str) -> None:
        self.topic = topic  # as subscribed, for messages
        self._added = threading.Condition()
        self._images: deque = deque(maxlen=KEEP)
        self._last_arrival = -math.inf  # time.monotonic() of the last add

    def add(self, image: RawImage) -> None:
        with self._added:
            self._images.append(image)
            self._last_arrival = time.monotonic()
            self._added.notify_all()

    def clear(self) -> None:
        with self._added:
            self._images.clear()
            self._last_arrival = -math.inf

    def match(self, stamp: int, max_offset_ms: float, wait_s: float = WAIT_S) -> RawImage:
        """The depth image stamped closest to ``stamp`` within ``max_offset_ms``, waiting up
        to ``wait_s`` while none as new as the frame has arrived yet (the depth of a frame
        may come a moment after it); DepthError ``depth_unmatched`` otherwise.

        A stream with nothing for ``SILENT_S`` is not waited for: a stopped depth camera
        would otherwise hold up every frame of every camera by ``wait_s``."""
        max_offset = max_offset_ms * 1e6
        deadline = time.monotonic() + wait_s
        with self._added:
            while True:
                images = list(self._images)
                newest = max(map(stamp_ns, images), default=None)
                now = time.monotonic()
                silent_s = now - self._last_arrival
                if (
                    (newest is not None and newest >= stamp - max_offset)
                    or now >= deadline
                    or silent_s > SILENT_S
                ):
                    break
                self._added.wait(deadline - now)
        if not images:
            raise DepthError(
                Problem("depth_unmatched", f"no depth image has arrived on {self.topic}")
            )
        if silent_s > SILENT_S and newest < stamp - max_offset:
            raise DepthError(
                Problem(
                    "depth_unmatched",
                    f"no depth image on {self.topic} for {silent_s:.1f} s: is the depth "
                    "camera running?",
                )
            )
        nearest = min(images, key=lambda image: abs(stamp_ns(image) - stamp))
        offset_ms = abs(stamp_ns(nearest) - stamp) / 1e6
        if offset_ms > max_offset_ms:
            raise DepthError(
                Problem(
                    "depth_unmatched",
                    f"no depth image on {self.topic} within depth_max_offset_ms="
                    f"{max_offset_ms:g} of the frame's stamp (nearest {offset_ms:.1f} ms away): "
                    "is the depth aligned to this camera and stamped with its frames?",
                )
            )
        return nearest


def depth_array(image: RawImage, frame_size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """(HxW depth values, encoding) of a depth image for a colour frame of ``frame_size``
    (width, height); DepthError for a wrong encoding, size or data length."""
    if image.encoding not in DEPTH_SCALE:
        encoding = image.encoding[:40]
        raise DepthError(
            Problem(
                "depth_encoding",
                f"depth encoding {encoding!r}: 16UC1 (millimetres) or 32FC1 (metres) only",
            )
        )
    if (image.width, image.height) != frame_size:
        raise DepthError(
            Problem(
                "depth_size",
                f"depth image {image.width}x{image.height} for a {frame_size[0]}x"
                f"{frame_size[1]} frame: use the depth aligned to the colour camera",
            )
        )
    dtype = np.dtype("<u2" if image.encoding == "16UC1" else "<f4")
    if image.is_bigendian:
        dtype = dtype.newbyteorder(">")
    row = image.width * dtype.itemsize
    if image.step < row or len(image.data) != image.step * image.height:
        raise DepthError(
            Problem(
                "depth_data_length",
                f"{image.width}x{image.height} {image.encoding}: step {image.step}, "
                f"{len(image.data)} data bytes (need step >= {row} and data == step * height)",
            )
        )
    rows = np.frombuffer(image.data, np.uint8).reshape(image.height, image.step)[:, :row]
    return np.ascontiguousarray(rows).view(dtype).reshape(image.height, image.width), image.encoding
