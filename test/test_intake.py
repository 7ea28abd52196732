"""The node's frame intake and per-camera statistics, in this process, on a real rclpy node
and real serialized Images: what deactivation does to waiting frames, what a stalled /clock
is called, and that statistics stay whole while the worker and the executor both use them."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("rclpy")


@pytest.fixture
def node(ros_context):
    import rclpy

    node = rclpy.create_node("intake_test", context=ros_context)
    yield node
    node.destroy_node()


def intake_for(node, **values):
    from bisenet_ros.ros import params as P
    from bisenet_ros.ros.intake import Intake

    settings = {name: spec.default for name, spec in P.SPECS.items()} | values
    return Intake(node, settings.__getitem__)


def serialized_frame(node, ahead_s: float = 0.0) -> bytes:
    from rclpy.duration import Duration
    from rclpy.serialization import serialize_message

    from bisenet_ros.ros.image_conversion import array_to_image

    msg = array_to_image(np.zeros((64, 64, 3), np.uint8), "rgb8", None)
    msg.header.stamp = (node.get_clock().now() + Duration(seconds=ahead_s)).to_msg()
    return serialize_message(msg)


def test_deactivation_drops_the_waiting_frame_under_its_own_reason(node):
    """A frame received before deactivate is never answered after activate."""
    from bisenet_ros.ros.camera import Camera

    camera = Camera("", "image")
    intake = intake_for(node, max_input_age_ms=0.0)
    intake.open()
    intake.receive(camera, serialized_frame(node))
    assert camera.pending is not None
    assert camera.stats.snapshot(0.0).unanswered_since > 0
    intake.close([camera])
    snap = camera.stats.snapshot(0.0)
    assert camera.pending is None
    assert snap.dropped == {"deactivated": 1} and snap.unanswered_since == 0.0
    intake.open()  # activated again: nothing from before is waiting
    intake.receive(camera, serialized_frame(node))
    (taken,) = intake.take([camera])
    assert taken[0] is camera and camera.stats.snapshot(0.0).received == 2


def test_a_stalled_clock_is_named_not_the_cameras_clock(node):
    """use_sim_time with /clock stopped while frames keep coming: frames are ahead of the
    clock because it stopped, not because the camera stamps with its own clock."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.time import Time
    from rosgraph_msgs.msg import Clock

    from bisenet_ros.ros.camera import Camera

    node.set_parameters([Parameter("use_sim_time", value=True)])
    clock = node.create_publisher(Clock, "/clock", 10)
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    start = 1_000_000_000_000

    def clock_set() -> bool:
        clock.publish(Clock(clock=Time(nanoseconds=start).to_msg()))
        executor.spin_once(timeout_sec=0.05)
        return node.get_clock().now().nanoseconds == start

    try:
        assert any(clock_set() for _ in range(200)), "the /clock message never arrived"
        camera = Camera("", "image")
        intake = intake_for(node, max_input_age_ms=20.0)
        intake.open()
        # the clock stays where it is; frames keep coming, stamped later and later
        for step in range(1, 2000):
            intake.receive(camera, serialized_frame(node, ahead_s=0.1 * step))
            if "clock_stalled" in camera.stats.snapshot(0.0).dropped:
                break
            executor.spin_once(timeout_sec=0.01)  # time passes, the clock does not move
    finally:
        executor.shutdown()
    snap = camera.stats.snapshot(0.0)
    assert snap.dropped.get("clock_stalled", 0) >= 1, snap.dropped
    assert set(snap.dropped) <= {"stamp_in_future", "clock_stalled"}, snap.dropped
    (stalled,) = [p for p in snap.recent_problems if p.reason == "clock_stalled"]
    assert "/clock" in stalled.detail and "has not moved" in stalled.detail
    assert "own clock" not in stalled.detail  # not the camera-clock advice


def test_statistics_stay_whole_under_concurrent_use():
    """The worker counts answers while the executor counts arrivals and diagnostics take
    snapshots: no exception, and every count arrives."""
    from bisenet_ros.ros.camera_stats import CameraStats, Problem

    stats = CameraStats()
    n = 20_000
    errors: list[BaseException] = []

    def guarded(work):
        def run():
            try:
                work()
            except BaseException as error:  # noqa: BLE001 - reported by the test
                errors.append(error)

        return threading.Thread(target=run)

    def arrivals():
        for i in range(n):
            stats.received(float(i))
            stats.unanswered(i % 2 == 0, Problem(f"reason_{i % 7}", "detail"), float(i), True)

    def answers():
        for i in range(n):
            stats.answered(float(i), ("labels",))

    def reports():
        for i in range(n):
            snap = stats.snapshot(float(i))
            assert snap.processed <= n and snap.unanswered <= n

    threads = [guarded(arrivals), guarded(answers), guarded(reports)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    snap = stats.snapshot(float(n))
    assert (snap.received, snap.processed, snap.unanswered) == (n, n, n)
