"""One camera as the node sees it: its topics, the newest waiting frame and its counters."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from rclpy.exceptions import InvalidTopicNameException
from rclpy.validate_topic_name import validate_topic_name
from sensor_msgs.msg import CameraInfo, CompressedImage

from .image_cdr import RawImage

RATE_WINDOW_S = 5.0  # rates, "recent" problems and "nothing published" look this far back


class Problem(NamedTuple):
    """Why a frame got no answer: a counter key and a sentence that names the fix."""

    reason: str
    detail: str


@dataclass
class Camera:
    """One camera's topics, newest waiting frame and counters.

    Every received frame ends up in exactly one counter: ``processed``, ``dropped`` (by
    reason: superseded by a newer frame, or its stamp) or ``rejected`` (by reason: its
    content), apart from the one that may be waiting in ``pending``.
    """

    namespace: str  # as configured: relative to the node's namespace, or absolute
    image_topic: str  # leaf under the namespace, with /compressed for compressed input
    compressed: bool = False
    output_group: str = ""  # outputs under ~/<output_group>/; '' when the node has one camera
    publishers: dict = field(default_factory=dict)
    subscriptions: list = field(default_factory=list)
    pending: tuple | None = None  # (checked message, monotonic receive time)
    camera_info: CameraInfo | None = None
    received: int = 0
    processed: int = 0
    dropped: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    last_problem: Problem | None = None
    last_problem_time: float = 0.0
    last_views: tuple = ()  # topics published for the last frame (read by diagnostics)
    input_times: deque = field(default_factory=lambda: deque(maxlen=100))
    output_times: deque = field(default_factory=lambda: deque(maxlen=100))
    last_input_age_ms: float = float("nan")
    last_receive: float = 0.0
    unanswered_since: float = 0.0  # first frame received after the last one answered; 0: none
    input_publishers: frozenset = frozenset()  # GIDs of the input's publishers at the last check
    matched_since: float = 0.0  # when one of them was first seen (a restarted driver is new)

    @property
    def name(self) -> str:
        return self.namespace.strip("/")

    @property
    def input_topic(self) -> str:
        return self.input(self.image_topic)

    @property
    def info_topic(self) -> str:
        """The camera's calibration, beside its images."""
        return self.input("camera_info")

    def input(self, leaf: str) -> str:
        """An input topic in the camera's namespace."""
        return f"{self.namespace.rstrip('/')}/{leaf}" if self.namespace else leaf

    def output(self, leaf: str) -> str:
        """An output topic: ~/<leaf> for a node's only camera, else ~/<camera>/<leaf>."""
        return f"~/{self.output_group}/{leaf}" if self.output_group else f"~/{leaf}"

    def topic_problem(self, output_leaves: Iterable[str]) -> str | None:
        """Why a topic of this camera is not a valid ROS name, or None: checked at configure,
        since rclpy would raise it from inside a transition, as a traceback."""
        for topic in (self.input_topic, self.info_topic, *map(self.output, output_leaves)):
            try:
                validate_topic_name(topic)
            except InvalidTopicNameException as error:
                why = str(error).splitlines()[0].removeprefix("Invalid topic name: ").rstrip(":")
                return (
                    f"{topic!r} is not a valid topic name ({why}); check the cameras and "
                    "image_topic parameters"
                )
        return None

    def note_problem(self, problem: Problem, now: float) -> None:
        self.last_problem, self.last_problem_time = problem, now


class Frame(NamedTuple):
    """A decoded frame on its way through the worker."""

    camera: Camera
    msg: RawImage | CompressedImage
    received: float  # monotonic time of the callback
    image: np.ndarray
    order: str  # channel order of ``image``: rgb or bgr


def rate(times: deque, now: float) -> float:
    """Events per second over the last (up to) 100 events within RATE_WINDOW_S."""
    recent = [t for t in times if now - t < RATE_WINDOW_S]
    if len(recent) < 2:
        return 0.0
    return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)
