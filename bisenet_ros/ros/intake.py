"""Frames on their way in: checked on arrival, one newest frame waiting per camera, decoded
by the worker; every frame that gets no answer is counted under its reason and logged.

The subscription callbacks call ``receive``; the worker calls ``take`` (which waits for
frames) and ``decode``. One condition guards the waiting frames of all cameras.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sensor_msgs.msg import CompressedImage

from bisenet_ros.image_decoding import ImageError, compressed_to_array, image_to_array

from .camera import Camera, Frame
from .camera_stats import Problem
from .input_checks import (
    DEACTIVATED,
    SUPERSEDED,
    age_ms,
    arrival_problem,
    checked_message,
    pickup_problem,
)
from .reason_log import ReasonLog


class Intake:
    """Admission, newest-frame slots and counting for the node's cameras."""

    def __init__(self, node, value: Callable[[str], object]) -> None:
        self._node = node  # its clock, logger and topic names
        self._value = value  # the node's current parameter values
        self._log = ReasonLog(node.get_logger(), period_s=5.0)
        self._frames = threading.Condition()  # guards the cameras' pending frames
        self._open = False
        self._clock_seen = (0, 0.0)  # (ROS time, monotonic time when it last changed)

    # --- the callbacks' side --------------------------------------------------------------

    def receive(self, camera: Camera, msg: bytes | CompressedImage) -> None:
        """A frame from a subscription: counted, checked, and kept if nothing rules it out."""
        now = time.monotonic()
        camera.stats.received(now)
        try:
            self._admit(camera, msg, now)
        except Exception as error:  # a bug must not stop the executor; count and say so
            self.count(camera, Problem("internal_error", repr(error)), rejected=True)

    def _admit(self, camera: Camera, msg: bytes | CompressedImage, now: float) -> None:
        try:
            checked = checked_message(msg, self._value("max_input_pixels"))
        except ImageError as error:
            self.count(camera, Problem(error.reason, error.detail), rejected=True)
            return
        age = self.age_ms(checked)
        camera.stats.input_age(age)
        problem = arrival_problem(age, self._value("max_input_age_ms"), self._clock_idle_s(now))
        if problem:
            self.count(camera, problem)
            return
        with self._frames:
            superseded = camera.pending is not None
            camera.pending = (checked, now)
            self._frames.notify()
        if superseded:
            self.count(camera, SUPERSEDED)

    def _clock_idle_s(self, now: float) -> float | None:
        """Seconds since the node's clock last moved under use_sim_time (inf: no /clock yet);
        None when it runs on the system clock."""
        clock = self._node.get_clock()
        if not clock.ros_time_is_active:
            return None
        ros_ns = clock.now().nanoseconds
        if ros_ns == 0:
            return float("inf")
        if ros_ns != self._clock_seen[0]:
            self._clock_seen = (ros_ns, now)
        return now - self._clock_seen[1]

    # --- the worker's side ----------------------------------------------------------------

    def open(self) -> None:
        with self._frames:
            self._open = True

    def close(self, cameras: list[Camera]) -> None:
        """Wake a waiting ``take`` and make it return None; frames still waiting are dropped
        (counted), so that none received before deactivation is answered after it."""
        with self._frames:
            self._open = False
            left = [camera for camera in cameras if camera.pending is not None]
            for camera in cameras:
                camera.pending = None
            self._frames.notify_all()
        for camera in left:
            self.count(camera, DEACTIVATED)
        for camera in cameras:
            camera.stats.stop_waiting()

    def take(self, cameras: list[Camera]) -> list[tuple] | None:
        """Every waiting (camera, message, receive time), once there is one; None when closed."""
        with self._frames:
            while self._open and not any(c.pending for c in cameras):
                self._frames.wait()
            if not self._open:
                return None
            batch = [(c, *c.pending) for c in cameras if c.pending]
            for camera in cameras:
                camera.pending = None
        return batch

    def decode(self, taken: tuple) -> Frame | None:
        """A (camera, message, receive time) from ``take`` as a decoded Frame, or None after
        counting why it is unusable."""
        camera, msg, received = taken
        problem = pickup_problem(self.age_ms(msg), self._value("max_input_age_ms"))
        if problem:
            self.count(camera, problem)
            return None
        max_pixels = self._value("max_input_pixels")
        try:
            if isinstance(msg, CompressedImage):
                return Frame(camera, msg, received, *compressed_to_array(msg, max_pixels))
            return Frame(camera, msg, received, *image_to_array(msg, max_pixels))
        except ImageError as error:
            self.count(camera, Problem(error.reason, error.detail), rejected=True)
        except Exception as error:  # e.g. a decoder crash on hostile data
            self.count(camera, Problem("decode", repr(error)), rejected=True)
        return None

    # --- both -----------------------------------------------------------------------------

    def age_ms(self, msg) -> float | None:
        return age_ms(msg, self._node.get_clock().now().nanoseconds)

    def count(self, camera: Camera, problem: Problem, rejected: bool = False) -> None:
        """Count a frame that gets no answer under its reason, and log the reason.

        The newest-frame policy's drops (superseded, deactivated) are by design: logged once
        at INFO and no problem for diagnostics; every other reason is a WARNING, repeated
        at most every 5 s with the count in between (``internal_error``: an ERROR).
        """
        by_design = problem in (SUPERSEDED, DEACTIVATED)
        camera.stats.unanswered(rejected, problem, time.monotonic(), noted=not by_design)
        verb = "rejected" if rejected else "dropped"
        topic = self._node.resolve_topic_name(camera.input_topic)
        message = f"{verb} a frame on {topic} ({problem.reason}): {problem.detail}"
        level = (
            "info" if by_design else "error" if problem.reason == "internal_error" else "warning"
        )
        self._log.report((camera.name, problem.reason), message, level, once=by_design)

    def report_bug(self, error: Exception) -> None:
        self._log.report(("", "bug"), f"frame processing failed: {error!r}", "error")
