"""One camera's ``/diagnostics`` status: a level that says whether anything is published,
and a message that names the cause.

OK: outputs are being published (or the node is inactive). WARN: no input (no publisher,
frames never arrived, frames stopped), some frames unusable, or output below
``expected_rate_hz``. ERROR: frames arrive but none has been answered for
``RATE_WINDOW_S`` (1 s when a recent problem explains why).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import NamedTuple

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from .camera import Camera
from .camera_stats import RATE_WINDOW_S, RecentProblem, Snapshot
from .transport import no_input_hint

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
PERIOD_S = 1.0  # one report per second
STEADY = 3  # frames from a publisher before its silence means "stopped"
INPUT_SITUATIONS = ("no_publisher", "never_arrived", "stopped")  # logged by the reporter
OVERHEAD_KEY = "node_overhead_ms_mean_last20"  # what the node adds to segment(); benchmarks read it


class Assessment(NamedTuple):
    level: bytes
    key: str  # stable name of the situation, for logging once per episode
    message: str


def assess(
    snap: Snapshot,
    now: float,
    topic: str,
    active: bool,
    no_input_warning_s: float,
    expected_rate_hz: float,
) -> Assessment:
    """The camera's situation, worst first."""
    if not active:
        return Assessment(OK, "inactive", "inactive")
    publishers = len(snap.input_publishers)
    if publishers == 0 and now - snap.last_receive > RATE_WINDOW_S:
        return Assessment(WARN, "no_publisher", f"no publisher on {topic}: nothing to segment")
    silent = now - max(snap.last_receive, snap.matched_since)
    if publishers and silent >= no_input_warning_s:
        # A publisher is noticed up to one period after it appeared. Fewer frames than
        # STEADY since then: they never or rarely got through (Fast DDS drops most large
        # best-effort frames without its profile); more: the camera was sending, then stopped.
        since = snap.matched_since - PERIOD_S
        if sum(t >= since for t in snap.input_times) < STEADY:
            return Assessment(WARN, "never_arrived", no_input_hint(topic, publishers, silent))
        return Assessment(
            WARN,
            "stopped",
            f"frames stopped arriving on {topic}: none for {now - snap.last_receive:.0f} s "
            f"after {snap.received} received, {publishers} publisher(s) still matched "
            "(camera paused or stopped?)",
        )
    problems = snap.recent_problems
    waiting = now - snap.unanswered_since if snap.unanswered_since else 0.0
    # a frame may be in flight for a moment; a recent problem explains the wait sooner
    if waiting > RATE_WINDOW_S or (problems and waiting > 1.0):
        idle = now - snap.last_receive
        arriving = (
            "although frames arrive" if idle < 2 * PERIOD_S else f"(no frame for {idle:.0f} s)"
        )
        reason = f": {problems_text(problems)}" if problems else ""
        key = problems[0].reason if problems else "stalled"
        return Assessment(ERROR, key, f"nothing published for {waiting:.0f} s {arriving}{reason}")
    warnings = []  # (key, message): every current cause, so that none hides another
    if problems:
        warnings.append((problems[0].reason, problems_text(problems)))
    if expected_rate_hz > 0 and snap.output_rate_hz < expected_rate_hz:
        warnings.append(
            (
                "slow",
                f"output {snap.output_rate_hz:.1f} Hz below expected {expected_rate_hz:.1f} Hz",
            )
        )
    if warnings:
        return Assessment(WARN, warnings[0][0], "; ".join(m for _, m in warnings))
    return Assessment(OK, "ok", "ok")


def problems_text(problems: tuple[RecentProblem, ...]) -> str:
    """Every recent reason with its count, most frequent first: one never hides another."""
    return "; ".join(
        f"{p.count} frame{'s' * (p.count > 1)} {p.reason} in {RATE_WINDOW_S:g} s ({p.detail})"
        for p in problems
    )


def counters(snap: Snapshot) -> dict[str, str]:
    """The camera's rates and counters as diagnostic values."""
    return {
        "input_rate_hz": f"{snap.input_rate_hz:.2f}",
        "output_rate_hz": f"{snap.output_rate_hz:.2f}",
        "input_age_ms": f"{snap.input_age_ms:.1f}",
        "frames_received": str(snap.received),
        "frames_processed": str(snap.processed),
        "frames_dropped": str(sum(snap.dropped.values())),
        "dropped_by_reason": _by_reason(snap.dropped),
        "frames_rejected": str(sum(snap.rejected.values())),
        "rejected_by_reason": _by_reason(snap.rejected),
        "recent_problems": problems_text(snap.recent_problems),
        "views_published": ", ".join(snap.views),
        "points_skipped_by_reason": _by_reason(snap.points_skipped),
    }


def _by_reason(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason}={n}" for reason, n in sorted(counts.items()))


class Timings:
    """The node's recent timing figures, shared by its cameras: the worker adds, the
    diagnostics timer reads, under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inference_ms: deque = deque(maxlen=100)
        self._node_ms: deque = deque(maxlen=20)  # frame received -> outputs published
        self._overhead_ms: deque = deque(maxlen=20)  # the same minus the segment() call
        self._batch_sizes: deque = deque(maxlen=100)

    def add_batch(self, size: int) -> None:
        with self._lock:
            self._batch_sizes.append(size)

    def add_frame(self, inference_ms: float, node_ms: float, segmenter_ms: float) -> None:
        with self._lock:
            self._inference_ms.append(inference_ms)
            self._node_ms.append(node_ms)
            self._overhead_ms.append(node_ms - segmenter_ms)

    def values(self) -> dict[str, str]:
        with self._lock:
            return {
                "inference_ms_mean": f"{_mean(self._inference_ms, float('nan')):.1f}",
                "node_latency_ms_mean_last20": f"{_mean(self._node_ms):.1f}",
                OVERHEAD_KEY: f"{_mean(self._overhead_ms):.2f}",
                "batch_size_mean": f"{_mean(self._batch_sizes):.2f}",
                "batch_size_max": str(max(self._batch_sizes, default=0)),
            }


def _mean(values: deque, empty: float = 0.0) -> float:
    return float(np.mean(values)) if values else empty


class Reporter:
    """Builds the node's DiagnosticArray once a period, and logs the input situations (no
    publisher, no frame from a publisher, frames stopped) that no frame's arrival can
    report: once when each begins."""

    def __init__(self, node) -> None:
        self._node = node  # its name, clock, logger and graph (topic names, publishers)
        self._situation: dict[str, str] = {}  # camera name -> the input situation logged
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
        camera.stats.publishers_seen(frozenset(tuple(i.endpoint_gid) for i in found), now)
        snap = camera.stats.snapshot(now)
        no_input_s, expected_hz = params["no_input_warning_s"], params["expected_rate_hz"]
        assessment = assess(snap, now, topic, active, no_input_s, expected_hz)
        self._log_input_situation(camera.name, assessment, now - snap.matched_since, no_input_s)
        values = {
            "input_topic": topic,
            **counters(snap),
            **self.timings.values(),
            **model,
        }
        return DiagnosticStatus(
            level=assessment.level,
            name=f"{self._node.get_name()}: {camera.name or 'camera'}",
            message=assessment.message,
            hardware_id=self._node.get_fully_qualified_name(),
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )

    def _log_input_situation(
        self, camera: str, assessment: Assessment, listening_s: float, no_input_s: float
    ) -> None:
        """Log an input situation once when it begins (frame problems are logged as frames
        arrive); a camera nobody publishes only after ``no_input_warning_s``."""
        key = assessment.key if assessment.key in INPUT_SITUATIONS else ""
        if key == "no_publisher" and listening_s < no_input_s:
            return
        if key == "stopped" and self._situation.get(camera) != key:
            self._node.get_logger().info(assessment.message)
        elif key and self._situation.get(camera) != key:
            self._node.get_logger().warning(assessment.message)
        self._situation[camera] = key
