"""numpy -> sensor_msgs Image, for the node's tests and tools (its own outputs go out as
serialized bytes, see ``image_cdr``); incoming frames are decoded by
``bisenet_ros.image_decoding``.

Arrays go into ``msg.data`` as an ``array('B')`` of their bytes: assigning an ndarray there
is copied element by element by rclpy (~70 ms per 1.5 MB), and Humble's field checks accept
only that type quickly.
"""

from __future__ import annotations

import array as pyarray

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header


def array_to_image(array: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """A new Image holding a copy of ``array`` (uint8 HxW or HxWxC), with ``header``."""
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    msg = Image(height=height, width=width, encoding=encoding)
    if header is not None:
        msg.header = header
    msg.step = width * channels * array.itemsize
    msg.data = pyarray.array("B", array.tobytes())
    return msg
