"""What /diagnostics says about a camera, from real per-camera statistics at chosen moments:
every recent reason with its count, rates that agree with "nothing published", and a camera
nobody publishes named in the log once."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("rclpy")

from bisenet_ros.ros.camera_stats import CameraStats, Problem  # noqa: E402
from bisenet_ros.ros.diagnostics import ERROR, OK, WARN, assess  # noqa: E402

TOPIC = "/camera/image"
PUBLISHER = frozenset({(1, 2, 3)})


def working_camera(until: float, rate_hz: float = 8.0) -> CameraStats:
    """A camera answered at ``rate_hz`` from t=0 to ``until``, one publisher matched."""
    stats = CameraStats()
    stats.subscribed(0.0)
    stats.publishers_seen(PUBLISHER, 0.0)
    t = 0.0
    while t <= until:
        stats.received(t)
        stats.answered(t + 0.01, ("labels",))
        t += 1.0 / rate_hz
    return stats


def status(stats: CameraStats, now: float):
    return assess(stats.snapshot(now), now, TOPIC, True, 3.0, 0.0)


def test_a_burst_of_different_bad_frames_names_every_reason_with_its_count():
    stats = working_camera(until=10.0)
    reasons = ["encoding", "too_small", "data_length", "format", "corrupt"]
    t = 10.1
    for i, reason in enumerate(reasons):
        for _ in range(i + 1):  # 1 encoding ... 5 corrupt
            stats.received(t)
            stats.unanswered(True, Problem(reason, f"the {reason} fix"), t, noted=True)
            t += 0.05
    level, _, message = status(stats, t + 0.1)
    assert level == WARN
    for count, reason in enumerate(reasons, 1):
        frames = "frame" if count == 1 else "frames"
        assert f"{count} {frames} {reason} in 5 s (the {reason} fix)" in message, message
    assert message.index("corrupt") < message.index("encoding")  # most frequent first


def test_output_rate_agrees_with_nothing_published():
    """Frames rejected for 3 s after 8 Hz of answers: ERROR, and the output rate is the
    rate over the last 5 s, not the rate before the silence."""
    stats = working_camera(until=10.0)
    t = 10.0
    while t < 13.0:
        stats.received(t)
        stats.unanswered(True, Problem("encoding", "unsupported encoding 'x'"), t, noted=True)
        t += 0.125
    now = 13.0
    level, _, message = status(stats, now)
    assert level == ERROR and "nothing published for 3 s although frames arrive" in message
    snap = stats.snapshot(now)
    assert snap.output_rate_hz == pytest.approx(16 / 5, rel=0.1)  # 2 s of 8 Hz in 5 s
    assert stats.snapshot(15.1).output_rate_hz == 0.0


def test_no_frames_arriving_is_not_called_frames_arriving():
    """Bad frames, then nothing at all: the ERROR says no frame came, not that frames do."""
    stats = working_camera(until=10.0)
    stats.received(10.2)
    stats.unanswered(True, Problem("too_small", "8x8 image"), 10.2, noted=True)
    level, _, message = status(stats, 12.5)
    assert level == ERROR
    assert "although frames arrive" not in message and "(no frame for 2 s)" in message


def test_working_camera_is_ok():
    stats = working_camera(until=10.0)
    assert status(stats, 10.2).level == OK


def test_a_topic_nobody_publishes_is_logged_once_after_the_warning_time(ros_context, capfd):
    """No publisher: nothing in the log before no_input_warning_s, one warning after, no
    repeat while nothing changes."""
    import rclpy

    from bisenet_ros.ros.camera import Camera
    from bisenet_ros.ros.diagnostics import Reporter

    node = rclpy.create_node("nobody_test", context=ros_context)
    try:
        camera = Camera("/nobody", "image_raw")
        camera.subscriptions.append(object())  # active: as if subscribed
        params = {"no_input_warning_s": 3.0, "expected_rate_hz": 0.0}
        reporter = Reporter(node)
        camera.stats.subscribed(time.monotonic())
        reporter.report([camera], params, {})
        assert "no publisher" not in capfd.readouterr().err  # too early to say
        camera.stats.subscribed(time.monotonic() - 10.0)  # listening for 10 s
        for _ in range(3):
            (report,) = reporter.report([camera], params, {}).status
        assert report.level == WARN
        logged = capfd.readouterr().err
        assert logged.count("no publisher on /nobody/image_raw: nothing to segment") == 1
    finally:
        node.destroy_node()
