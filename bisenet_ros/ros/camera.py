"""One camera as the node sees it: its topics, the newest waiting frame and its statistics."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from rclpy.exceptions import InvalidTopicNameException
from rclpy.validate_topic_name import validate_topic_name
from sensor_msgs.msg import CameraInfo, CompressedImage

from .camera_stats import CameraStats
from .depth import DepthBuffer
from .image_cdr import RawImage


@dataclass
class Camera:
    """One camera's topics, publishers and subscriptions (set by the node's lifecycle
    callbacks), its newest waiting frame (guarded by the intake) and its statistics (which
    guard themselves)."""

    namespace: str  # as configured: relative to the node's namespace, or absolute
    image_topic: str  # leaf under the namespace, with /compressed for compressed input
    compressed: bool = False
    output_group: str = ""  # outputs under ~/<output_group>/; '' when the node has one camera
    publishers: dict = field(default_factory=dict)
    subscriptions: list = field(default_factory=list)
    pending: tuple | None = None  # (checked message, monotonic receive time)
    camera_info: CameraInfo | None = None
    depth: DepthBuffer | None = None  # the aligned depth images, when depth_topic is set
    point_records: np.ndarray | None = None  # ~/points is built here, frame after frame
    label_info: object | None = None  # ~/label_info's publisher, where vision_msgs exists
    stats: CameraStats = field(default_factory=CameraStats)

    @property
    def name(self) -> str:
        return self.namespace.strip("/")

    @property
    def input_topic(self) -> str:
        return self.input(self.image_topic)

    @property
    def info_topic(self) -> str:
        """The camera's calibration, beside its images as image_transport puts it:
        ``image_raw`` -> ``camera_info``, ``color/image_raw`` -> ``color/camera_info``."""
        image = (
            self.image_topic.removesuffix("/compressed") if self.compressed else self.image_topic
        )
        folder = image.rpartition("/")[0]
        return self.input(f"{folder}/camera_info" if folder else "camera_info")

    def input(self, leaf: str) -> str:
        """An input topic in the camera's namespace."""
        return f"{self.namespace.rstrip('/')}/{leaf}" if self.namespace else leaf

    def output(self, leaf: str) -> str:
        """An output topic: ~/<leaf> for a node's only camera, else ~/<camera>/<leaf>."""
        return f"~/{self.output_group}/{leaf}" if self.output_group else f"~/{leaf}"

    def topic_problem(self, output_leaves: Iterable[str]) -> str | None:
        """Why a topic of this camera is not a valid ROS name, or None: checked at configure,
        since rclpy would raise it from inside a transition, as a traceback."""
        inputs = (self.input_topic, self.info_topic, *([self.depth.topic] if self.depth else []))
        for topic in (*inputs, *map(self.output, output_leaves)):
            try:
                validate_topic_name(topic)
            except InvalidTopicNameException as error:
                why = str(error).splitlines()[0].removeprefix("Invalid topic name: ").rstrip(":")
                return (
                    f"{topic!r} is not a valid topic name ({why}); check the cameras and "
                    "image_topic parameters"
                )
        return None


class Frame(NamedTuple):
    """A decoded frame on its way through the worker."""

    camera: Camera
    msg: RawImage | CompressedImage
    received: float  # monotonic time of the callback
    image: np.ndarray
    order: str  # channel order of ``image``: rgb or bgr
