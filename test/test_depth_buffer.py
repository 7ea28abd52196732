"""Pairing colour frames with depth: the worker waits a moment for a frame's depth while the
depth stream is alive, and not at all once it has stopped (a dead depth camera must not
slow every camera's frames down)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

pytest.importorskip("rclpy")

from bisenet_ros.ros import depth as depth_module  # noqa: E402
from bisenet_ros.ros.depth import DepthBuffer, DepthError  # noqa: E402

TOPIC = "/front/depth"
FRAME_NS = 1_000 * 1_000_000_000  # the colour frame's stamp
NEVER_S = 3600.0  # a wait the tests would notice


def depth_image(stamp_ns: int):
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    header = SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id="")
    return SimpleNamespace(header=header)  # match() reads only the stamp


def match_in_thread(buffer: DepthBuffer, wait_s: float):
    """(result or DepthError, whether match() returned within a minute)."""
    outcome = []

    def run():
        try:
            outcome.append(buffer.match(FRAME_NS, 10.0, wait_s=wait_s))
        except DepthError as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=60.0)
    return (outcome[0] if outcome else None), not thread.is_alive()


def test_no_depth_ever_is_not_waited_for():
    error, returned = match_in_thread(DepthBuffer(TOPIC), NEVER_S)
    assert returned, f"match() waited for a depth topic that never published ({NEVER_S} s)"
    assert isinstance(error, DepthError) and error.problem.reason == "depth_unmatched"
    assert f"no depth image has arrived on {TOPIC}" in error.problem.detail


def test_a_stopped_depth_stream_is_not_waited_for(monkeypatch):
    buffer = DepthBuffer(TOPIC)
    buffer.add(depth_image(FRAME_NS - 5 * 1_000_000_000))  # the last one, 5 s before
    later = time.monotonic() + 2 * depth_module.SILENT_S  # nothing since then
    monkeypatch.setattr(depth_module, "time", SimpleNamespace(monotonic=lambda: later))
    error, returned = match_in_thread(buffer, NEVER_S)
    assert returned, "match() waited for a depth stream that had stopped"
    assert isinstance(error, DepthError) and error.problem.reason == "depth_unmatched"
    assert "is the depth camera running?" in error.problem.detail


def test_a_live_stream_is_waited_for_until_the_frames_depth_arrives():
    buffer = DepthBuffer(TOPIC)
    buffer.add(depth_image(FRAME_NS - 33_000_000))  # the previous frame's depth, just now
    matched = depth_image(FRAME_NS)
    adder = threading.Timer(0.0, buffer.add, args=[matched])
    adder.start()
    result, returned = match_in_thread(buffer, NEVER_S)
    adder.join()
    assert returned and result is matched


def test_a_live_stream_without_the_frames_depth_is_waited_for_wait_s():
    buffer = DepthBuffer(TOPIC)
    buffer.add(depth_image(FRAME_NS - 33_000_000))
    start = time.monotonic()
    error, returned = match_in_thread(buffer, 0.3)
    assert returned and time.monotonic() - start >= 0.3
    assert isinstance(error, DepthError) and "within depth_max_offset_ms=10" in error.problem.detail
