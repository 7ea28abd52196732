"""One camera's ``/diagnostics`` status: a level that says whether anything is published,
and a message that names the cause.

OK: outputs are being published (or the node is inactive). WARN: no input (no publisher,
frames never arrived, frames stopped), some frames unusable, or output below
``expected_rate_hz``. ERROR: frames arrive but none has been answered for
``RATE_WINDOW_S`` (1 s when a recent problem explains why).
"""

from __future__ import annotations

import time
from collections import deque
from typing import NamedTuple

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from .camera import RATE_WINDOW_S, Camera, rate
from .reason_log import ReasonLog
from .transport import no_input_hint

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
PERIOD_S = 1.0  # one report per second
STEADY = 3  # frames from a publisher before its silence means "stopped"


class Assessment(NamedTuple):
    level: bytes
    key: str  # stable name of the situation, for throttled logging
    message: str


def assess(
    camera: Camera,
    now: float,
    topic: str,
    active: bool,
    no_input_warning_s: float,
    expected_rate_hz: float,
) -> Assessment:
    """The camera's situation, worst first."""
    if not active:
        return Assessment(OK, "inactive", "inactive")
    publishers = len(camera.input_publishers)
    if publishers == 0 and now - camera.last_receive > RATE_WINDOW_S:
        return Assessment(WARN, "no_publisher", f"no publisher on {topic}: nothing to segment")
    silent = now - max(camera.last_receive, camera.matched_since)
    if publishers and silent >= no_input_warning_s:
        # A publisher is noticed up to one period after it appeared. Fewer frames than
        # STEADY since then: they never or rarely got through (Fast DDS drops most large
        # best-effort frames without its profile); more: the camera was sending, then stopped.
        since = camera.matched_since - PERIOD_S
        if sum(t >= since for t in camera.input_times) < STEADY:
            return Assessment(WARN, "never_arrived", no_input_hint(topic, publishers, silent))
        return Assessment(
            WARN,
            "stopped",
            f"frames stopped arriving on {topic}: none for {now - camera.last_receive:.0f} s "
            f"after {camera.received} received, {publishers} publisher(s) still matched "
            "(camera paused or stopped?)",
        )
    recent_problem = camera.last_problem and now - camera.last_problem_time < RATE_WINDOW_S
    waiting = now - camera.unanswered_since if camera.unanswered_since else 0.0
    # a frame may be in flight for a moment; a recent problem explains the wait sooner
    if waiting > RATE_WINDOW_S or (recent_problem and waiting > 1.0):
        reason = f": {camera.last_problem.detail}" if recent_problem else ""
        key = camera.last_problem.reason if recent_problem else "stalled"
        return Assessment(
            ERROR, key, f"nothing published for {waiting:.0f} s although frames arrive{reason}"
        )
    warnings = []  # (key, message): every current cause, so that none hides another
    if recent_problem:
        warnings.append((camera.last_problem.reason, camera.last_problem.detail))
    out_rate = rate(camera.output_times, now)
    if expected_rate_hz > 0 and out_rate < expected_rate_hz:
        warnings.append(
            ("slow", f"output {out_rate:.1f} Hz below expected {expected_rate_hz:.1f} Hz")
        )
    if warnings:
        return Assessment(WARN, warnings[0][0], "; ".join(m for _, m in warnings))
    return Assessment(OK, "ok", "ok")


def counters(camera: Camera, now: float) -> dict[str, str]:
    """The camera's rates and counters as diagnostic values."""
    return {
        "input_rate_hz": f"{rate(camera.input_times, now):.2f}",
        "output_rate_hz": f"{rate(camera.output_times, now):.2f}",
        "input_age_ms": f"{camera.last_input_age_ms:.1f}",
        "frames_received": str(camera.received),
        "frames_processed": str(camera.processed),
        "frames_dropped": str(sum(camera.dropped.values())),
        "dropped_by_reason": _by_reason(camera.dropped),
        "frames_rejected": str(sum(camera.rejected.values())),
        "rejected_by_reason": _by_reason(camera.rejected),
        "last_problem": camera.last_problem.detail if camera.last_problem else "",
        "views_published": ", ".join(camera.last_views),
    }


def _by_reason(counts) -> str:
    return ", ".join(f"{reason}={n}" for reason, n in sorted(counts.items()))


class Timings:
    """The node's recent timing figures, shared by its cameras."""

    def __init__(self) -> None:
        self.inference_ms: deque = deque(maxlen=100)
        self.node_ms: deque = deque(maxlen=20)  # frame received -> outputs published
        self.overhead_ms: deque = deque(maxlen=20)  # the same minus the segment() call
        self.batch_sizes: deque = deque(maxlen=100)

    def add_frame(self, inference_ms: float, node_ms: float, segmenter_ms: float) -> None:
        self.inference_ms.append(inference_ms)
        self.node_ms.append(node_ms)
        self.overhead_ms.append(node_ms - segmenter_ms)

    def values(self) -> dict[str, str]:
        return {
            "inference_ms_mean": f"{_mean(self.inference_ms, float('nan')):.1f}",
            "node_latency_ms_mean_last20": f"{_mean(self.node_ms):.1f}",
            "node_overhead_ms_mean_last20": f"{_mean(self.overhead_ms):.2f}",
            "batch_size_mean": f"{_mean(self.batch_sizes):.2f}",
            "batch_size_max": str(max(self.batch_sizes, default=0)),
        }


def _mean(values: deque, empty: float = 0.0) -> float:
    return float(np.mean(values)) if values else empty


class Reporter:
    """Builds the node's DiagnosticArray once a period, and logs the input situations (no
    frame from a publisher, frames stopped) that no frame's arrival can report."""

    def __init__(self, node) -> None:
        self._node = node  # its name, clock and graph (topic names, publisher counts)
        self._log = ReasonLog(node.get_logger(), period_s=30.0)
        self.timings = Timings()

    def report(self, cameras: list[Camera], params: dict, model: dict[str, str]) -> DiagnosticArray:
        """One status per camera (a WARN if unconfigured); ``model``: backend, precision, path."""
        node = self._node
        array = DiagnosticArray()
        array.header.stamp = node.get_clock().now().to_msg()
        if not cameras:
            array.status.append(
                DiagnosticStatus(
                    level=WARN,
                    name=f"{node.get_name()}: model",
                    message="unconfigured: no model loaded",
                    hardware_id=node.get_fully_qualified_name(),
                )
            )
        for camera in cameras:
            array.status.append(self._camera_status(camera, params, model))
        return array

    def _camera_status(self, camera: Camera, params: dict, model: dict) -> DiagnosticStatus:
        now = time.monotonic()
        topic = self._node.resolve_topic_name(camera.input_topic)
        active = bool(camera.subscriptions)
        found = self._node.get_publishers_info_by_topic(topic) if active else []
        publishers = frozenset(tuple(info.endpoint_gid) for info in found)
        # one appeared since the last report, also where another left (a restarted driver)
        if publishers - camera.input_publishers:
            camera.matched_since = now
        camera.input_publishers = publishers
        no_input_s, expected_hz = params["no_input_warning_s"], params["expected_rate_hz"]
        assessment = assess(camera, now, topic, active, no_input_s, expected_hz)
        if assessment.key in ("never_arrived", "stopped"):  # frame problems: logged on arrival
            level = "warning" if assessment.key == "never_arrived" else "info"
            self._log.report((camera.name, assessment.key), assessment.message, level)
        values = {"input_topic": topic, **counters(camera, now), **self.timings.values(), **model}
        return DiagnosticStatus(
            level=assessment.level,
            name=f"{self._node.get_name()}: {camera.name or 'camera'}",
            message=assessment.message,
            hardware_id=self._node.get_fully_qualified_name(),
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
