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

from .camera import Camera, Frame, Problem
from .input_checks import SUPERSEDED, age_ms, arrival_problem, checked_message, pickup_problem
from .reason_log import ReasonLog


class Intake:
    """Admission, newest-frame slots and counting for the node's cameras."""

    def __init__(self, node, value: Callable[[str], object]) -> None:
        self._node = node  # its clock, logger and topic names
        self._value = value  # the node's current parameter values
        self._log = ReasonLog(node.get_logger(), period_s=5.0)
        self._frames = threading.Condition()  # guards the cameras' pending frames
        self._open = False

    # --- the callbacks' side --------------------------------------------------------------

    def receive(self, camera: Camera, msg: bytes | CompressedImage) -> None:
        """A frame from a subscription: counted, checked, and kept if nothing rules it out."""
        now = time.monotonic()
        with self._frames:
            camera.received += 1
            camera.last_receive = now
            camera.unanswered_since = camera.unanswered_since or now
            camera.input_times.append(now)
        try:
            self._admit(camera, msg, now)
        except Exception as error:  # a bug must not stop the executor; count and say so
            self.count(camera, camera.rejected, Problem("internal_error", repr(error)), "error")

    def _admit(self, camera: Camera, msg: bytes | CompressedImage, now: float) -> None:
        try:
            checked = checked_message(msg, self._value("max_input_pixels"))
        except ImageError as error:
            self.count(camera, camera.rejected, Problem(error.reason, error.detail))
            return
        age = self.age_ms(checked)
        camera.last_input_age_ms = float("nan") if age is None else age
        clock = self._node.get_clock()
        waiting_for_clock = clock.ros_time_is_active and clock.now().nanoseconds == 0
        problem = arrival_problem(age, self._value("max_input_age_ms"), waiting_for_clock)
        if problem:
            self.count(camera, camera.dropped, problem)
            return
        with self._frames:
            if camera.pending is not None:
                self.count(camera, camera.dropped, SUPERSEDED, level="info")
            camera.pending = (checked, now)
            self._frames.notify()

    # --- the worker's side ----------------------------------------------------------------

    def open(self) -> None:
        with self._frames:
            self._open = True

    def close(self) -> None:
        """Wake a waiting ``take`` and make it return None."""
        with self._frames:
            self._open = False
            self._frames.notify_all()

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
            self.count(camera, camera.dropped, problem)
            return None
        max_pixels = self._value("max_input_pixels")
        try:
            if isinstance(msg, CompressedImage):
                return Frame(camera, msg, received, *compressed_to_array(msg, max_pixels))
            return Frame(camera, msg, received, *image_to_array(msg, max_pixels))
        except ImageError as error:
            self.count(camera, camera.rejected, Problem(error.reason, error.detail))
        except Exception as error:  # e.g. a decoder crash on hostile data
            self.count(camera, camera.rejected, Problem("decode", repr(error)))
        return None

    # --- both -----------------------------------------------------------------------------

    def age_ms(self, msg) -> float | None:
        return age_ms(msg, self._node.get_clock().now().nanoseconds)

    def count(self, camera: Camera, counter, problem: Problem, level: str = "warning") -> None:
        """Count a frame that gets no answer under its reason, and log the reason."""
        counter[problem.reason] += 1
        if problem is not SUPERSEDED:
            camera.note_problem(problem, time.monotonic())
        verb = "rejected" if counter is camera.rejected else "dropped"
        topic = self._node.resolve_topic_name(camera.input_topic)
        message = f"{verb} a frame on {topic} ({problem.reason}): {problem.detail}"
        self._log.report((camera.name, problem.reason), message, level)

    def report_bug(self, error: Exception) -> None:
        self._log.report(("", "bug"), f"frame processing failed: {error!r}", "error")
