"""segment_node over real DDS: a process started from a parameter file, real CamVid frames.

One node process serves the whole module (start-up costs seconds); this test process
publishes frames like a camera driver and subscribes to the outputs. The model is a small
random-weight model saved by the test (conftest's ``model_file``); the reference output
comes from the same Segmenter call the node makes (same backend, one thread each, so results
are bitwise comparable).
"""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy")

NODE = "/segment_node"
SIZE = (240, 320)  # (height, width) of the frames sent


@pytest.fixture(scope="module")
def node(ros_env, node_params, tmp_path_factory):
    from bisenet_ros.ros.harness import NodeProcess

    process = NodeProcess(
        node_params, tmp_path_factory.mktemp("node"), ros_args=("-r", "~/labels:=/segmentation")
    ).start()
    yield process
    code = process.stop()
    assert code == 0, f"segment_node exited with {code}:\n{process.log()[-3000:]}"


@pytest.fixture(scope="module")
def probe(node):
    from bisenet_ros.msg import SegmentationInfo
    from conftest import probe_node
    from sensor_msgs.msg import CameraInfo

    with probe_node() as probe:
        probe.record("/segmentation")
        for view in ("labels_color", "overlay", "confidence", "drivable_mask"):
            probe.record(f"{NODE}/{view}")
        probe.record(f"{NODE}/info", SegmentationInfo)
        probe.record(f"{NODE}/camera_info", CameraInfo)
        probe.image = probe.camera("/image")
        probe.info = probe.camera("/camera_info", CameraInfo)
        assert probe.wait_for_subscribers(probe.image, timeout=60), node.log()[-3000:]
        assert probe.wait_for_publishers("/segmentation", timeout=30), node.log()[-3000:]
        yield probe


def send(probe, msg, topic: str = "/segmentation"):
    """Publish ``msg``, stamped afresh each time, until the node answers it on ``topic``."""

    def restamped():
        msg.header.stamp = probe.node.get_clock().now().to_msg()
        return msg

    out = probe.publish_until_answered(probe.image, restamped, topic)
    assert out is not None, f"no answer on {topic}"
    msg.header.stamp = out.header.stamp  # the copy that was answered
    return out


@pytest.fixture(autouse=True)
def default_parameters(probe):
    """Every test starts from the node's defaults, whatever an earlier test changed."""
    from bisenet_ros.ros import params as P

    values = {name: P.SPECS[name].default for name in sorted(P.DYNAMIC)}
    values["max_input_age_ms"] = 0.0  # as started: a loaded CI machine must not drop frames
    results = probe.set_parameters(NODE, values)
    assert all(r.successful for r in results), results


def camera_info():
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(width=SIZE[1], height=SIZE[0], distortion_model="plumb_bob")
    info.k = [200.0, 0.0, 160.0, 0.0, 200.0, 120.0, 0.0, 0.0, 1.0]
    return info


def with_camera_info(probe, frame: np.ndarray, frame_id: str):
    """Publish camera_info until the node has it (best effort), then the answer to a frame
    sent after that: the frame's labels."""
    assert probe.wait_for_subscribers(probe.info)
    for _ in range(20):
        probe.info.publish(camera_info())
        msg = send(probe, probe.frame(frame, frame_id=frame_id))
        if probe.wait_for(f"{NODE}/camera_info", msg.header.stamp, timeout=1.0) is not None:
            return msg
    raise AssertionError("the node never had camera_info")


def labels(msg) -> np.ndarray:
    from bisenet_ros.ros.harness import image_of

    assert msg.encoding == "mono8"
    return image_of(msg)


def test_labels_equal_segmenter_and_header_is_kept(probe, tiny_segmenter, street_frames):
    for i, frame in enumerate(street_frames):
        msg = probe.frame(frame, "rgb8", frame_id=f"cam_{i}")
        out = send(probe, msg)
        assert out.header.frame_id == f"cam_{i}"
        assert out.header.stamp == msg.header.stamp
        assert (out.width, out.height) == (SIZE[1], SIZE[0])
        expected = tiny_segmenter.segment(frame, channel_order="rgb")[0].ids
        np.testing.assert_array_equal(labels(out), expected)


def test_views_info_and_scaled_camera_info(probe, tiny_segmenter, model_backend, street_frames):
    from bisenet_ros.inference.drivable import DrivableConfig, drivable_mask
    from bisenet_ros.inference.views import colorize
    from bisenet_ros.ros.harness import image_of

    msg = with_camera_info(probe, street_frames[0], "views")
    stamp = msg.header.stamp
    ids = tiny_segmenter.segment(street_frames[0])[0].ids
    color = probe.wait_for(f"{NODE}/labels_color", stamp)
    np.testing.assert_array_equal(image_of(color), colorize(ids, tiny_segmenter.manifest.palette))
    overlay = image_of(probe.wait_for(f"{NODE}/overlay", stamp))
    assert overlay.shape == (*SIZE, 3) and not np.array_equal(overlay, image_of(color))
    confidence = probe.wait_for(f"{NODE}/confidence", stamp)
    assert confidence.encoding == "mono8" and confidence.header.frame_id == "views"
    mask = image_of(probe.wait_for(f"{NODE}/drivable_mask", stamp))
    defaults = DrivableConfig(tiny_segmenter.manifest.drivable_ids)  # the node's defaults
    np.testing.assert_array_equal(mask, drivable_mask(ids, defaults))
    seg_info = probe.wait_for(f"{NODE}/info", stamp)
    assert seg_info.backend == model_backend and seg_info.architecture == "bisenetv2"
    assert list(seg_info.class_names) == tiny_segmenter.manifest.class_names
    assert len(seg_info.palette) == 3 * len(seg_info.class_names)
    assert seg_info.frames_processed >= 1 and seg_info.inference_ms > 0
    assert (seg_info.input_height, seg_info.input_width) == (96, 128)
    scaled = probe.wait_for(f"{NODE}/camera_info", stamp)
    assert scaled is not None and scaled.header.frame_id == "views"
    assert list(scaled.k) == list(camera_info().k)  # output size == input size


def test_drivable_grid_on_request(probe, street_frames):
    """Off by default; switched on at run time it projects the mask with camera_info."""
    from nav_msgs.msg import OccupancyGrid

    probe.record(f"{NODE}/drivable_grid", OccupancyGrid)
    assert probe.set_parameters(NODE, {"publish_drivable_grid": True})[0].successful
    assert probe.wait_for_publishers(f"{NODE}/drivable_grid")
    with_camera_info(probe, street_frames[0], "grid")
    for _ in range(10):  # the grid subscription may still be discovering
        msg = send(probe, probe.frame(street_frames[0], frame_id="grid"))
        grid = probe.wait_for(f"{NODE}/drivable_grid", msg.header.stamp, timeout=1.0)
        if grid is not None:
            break
    assert grid is not None and grid.header.frame_id == "grid"
    assert (grid.info.height, grid.info.width) == (100, 200)  # 10 m x 20 m at 0.1 m
    assert grid.info.origin.position.y == pytest.approx(-5.0)
    assert set(grid.data) <= {-1, 0, 100} and -1 in set(grid.data)


ENCODINGS = [
    "rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16",
    "yuv422", "uyvy", "yuyv", "yuv422_yuy2",
    "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8",
]  # fmt: skip


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding(probe, tiny_segmenter, street_frames, encoding):
    """The node decodes each encoding as the conversion module does, then segments it."""
    from test_image_conversion import encode

    from bisenet_ros.image_decoding import image_to_array

    msg = encode(street_frames[1], encoding)
    msg.header.frame_id = encoding
    out = send(probe, msg)
    assert out.header.frame_id == encoding
    image, order = image_to_array(msg)
    expected = tiny_segmenter.segment(image, channel_order=order)[0].ids
    np.testing.assert_array_equal(labels(out), expected)


def test_runtime_parameters_apply_without_restart(probe, street_frames):
    from bisenet_ros.ros.harness import image_of

    results = probe.set_parameters(
        NODE, {"overlay_alpha": 1.0, "drivable_class_ids": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}
    )
    assert all(r.successful for r in results), results
    msg = probe.frame(street_frames[0])
    send(probe, msg)
    stamp = msg.header.stamp
    overlay = image_of(probe.wait_for(f"{NODE}/overlay", stamp))
    np.testing.assert_array_equal(overlay, image_of(probe.wait_for(f"{NODE}/labels_color", stamp)))
    mask = image_of(probe.wait_for(f"{NODE}/drivable_mask", stamp))
    assert mask.min() == 255  # every class drivable: one region covering the image

    # confidence threshold 1.0: only fully certain pixels keep a label
    assert probe.set_parameters(NODE, {"confidence_threshold": 1.0})[0].successful
    out = labels(send(probe, probe.frame(street_frames[0])))
    assert (out == 255).mean() > 0.5
    assert probe.set_parameters(NODE, {"confidence_threshold": 0.0})[0].successful

    # output toggle: labels stop, info keeps coming; a later frame's labels, once back on,
    # arrive after any the node would have published for the first
    assert probe.set_parameters(NODE, {"publish_labels": False})[0].successful
    msg = probe.frame(street_frames[0])
    send(probe, msg, f"{NODE}/info")
    assert probe.set_parameters(NODE, {"publish_labels": True})[0].successful
    send(probe, probe.frame(street_frames[0]))
    assert probe.find("/segmentation", msg.header.stamp) is None

    static = probe.set_parameters(NODE, {"backend": "onnxruntime"})[0]
    assert not static.successful and "read at configure" in static.reason
    out_of_range = probe.set_parameters(NODE, {"overlay_alpha": 1.5})[0]
    assert not out_of_range.successful
    for ids in ([11], [300], [-5], [-1, 3]):  # the model has classes 0 to 10
        refused = probe.set_parameters(NODE, {"drivable_class_ids": ids})[0]
        assert not refused.successful and "0 to 10" in refused.reason, (ids, refused.reason)


def test_diagnostics(probe, model_backend, street_frames):
    from diagnostic_msgs.msg import DiagnosticArray

    probe.record("/diagnostics", DiagnosticArray)
    send(probe, probe.frame(street_frames[0]))
    status = probe.status()  # a report made after that frame was answered describes it
    assert status is not None, "no /diagnostics"
    values = {kv.key: kv.value for kv in status.values}
    assert values["backend"] == model_backend
    assert int(values["frames_processed"]) > 0
    assert "input_rate_hz" in values and "inference_ms_mean" in values
    assert {"labels", "overlay", "labels_color", "drivable_mask"} <= set(
        values["views_published"].split(", ")
    )


def test_too_old_frames_are_dropped_and_counted(probe, street_frames):
    from builtin_interfaces.msg import Time

    assert probe.set_parameters(NODE, {"max_input_age_ms": 200.0})[0].successful
    before = send(probe, probe.frame(street_frames[0]), f"{NODE}/info").frames_dropped

    def stamp_in_past(status) -> int:
        values = {kv.key: kv.value for kv in status.values}
        found = re.search(r"stamp_in_past=(\d+)", values["dropped_by_reason"])
        return int(found.group(1)) if found else 0

    already = stamp_in_past(probe.status())

    def counted(status) -> bool:
        return stamp_in_past(status) > already

    old = []
    for _ in range(30):  # best effort, depth 1: sent until the node has counted one
        old.append(probe.frame(street_frames[0], frame_id="old"))
        now = probe.node.get_clock().now().to_msg()
        old[-1].header.stamp = Time(sec=now.sec - 10, nanosec=now.nanosec)
        probe.image.publish(old[-1])
        if probe.status(counted, timeout=3.0) is not None:
            break
    after = send(probe, probe.frame(street_frames[0]), f"{NODE}/info").frames_dropped
    assert after >= before + 1
    for msg in old:  # checked once a later frame was answered
        assert probe.find("/segmentation", msg.header.stamp) is None


def test_diagnostics_warn_below_expected_rate(probe, street_frames):
    from diagnostic_msgs.msg import DiagnosticStatus

    assert probe.set_parameters(NODE, {"expected_rate_hz": 500.0})[0].successful
    send(probe, probe.frame(street_frames[0]))
    status = probe.status(
        lambda s: s.level == DiagnosticStatus.WARN and "below expected 500.0 Hz" in s.message
    )
    assert status is not None


def test_lifecycle_transitions(probe, street_frames):
    assert probe.get_state(NODE) == "active"
    assert probe.change_state(NODE, "deactivate")
    assert probe.get_state(NODE) == "inactive"
    inactive = probe.frame(street_frames[0])
    probe.image.publish(inactive)
    assert probe.change_state(NODE, "cleanup")
    assert probe.get_state(NODE) == "unconfigured"
    try:
        # read-at-configure parameters are accepted while unconfigured
        results = probe.set_parameters(NODE, {"output_width": 160, "output_height": 120})
        assert all(r.successful for r in results), results
        assert probe.change_state(NODE, "configure")
        assert probe.change_state(NODE, "activate")
        assert probe.wait_for_subscribers(probe.image)
        out = with_camera_info(probe, street_frames[0], "lifecycle")
        assert (out.width, out.height) == (160, 120)
        assert probe.find("/segmentation", inactive.header.stamp) is None
        scaled = probe.wait_for(f"{NODE}/camera_info", out.header.stamp)
        assert scaled.width == 160 and scaled.k[0] == pytest.approx(100.0)
    finally:  # back to the module's configuration for the tests that follow
        for transition in ("deactivate", "cleanup"):
            probe.change_state(NODE, transition)
        probe.set_parameters(NODE, {"output_width": 0, "output_height": 0})
        assert probe.change_state(NODE, "configure") and probe.change_state(NODE, "activate")
        assert probe.wait_for_subscribers(probe.image)


def test_a_camera_replaced_between_two_reports_is_a_new_camera(probe, node, street_frames):
    """A driver restarted within one report period leaves the number of publishers as it
    was; its silence is still that of a new camera (check its transport), not "stopped"."""

    settings = {"no_input_warning_s": 1.0, "expected_rate_hz": 0.0}
    assert all(r.successful for r in probe.set_parameters(NODE, settings))
    old = probe.camera("/image")
    assert probe.wait_for_subscribers(old)
    for _ in range(6):  # a camera that was sending steadily
        assert probe.publish_until_answered(old, lambda: probe.frame(street_frames[0]),
                                            "/segmentation")  # fmt: skip
    # its frames are older than a report period once the node calls it stopped
    assert wait_until_silent(probe), node.log()[-1000:]
    probe.node.destroy_publisher(old)
    restarted = probe.camera("/image")  # the restarted driver, sending nothing (yet)
    try:
        status = probe.status(lambda s: "but no frame for" in s.message)
        assert status is not None, node.log()[-1000:]
    finally:
        probe.node.destroy_publisher(restarted)


def wait_until_silent(probe) -> bool:
    """Wait until /diagnostics says no frame came for no_input_warning_s (stopped, or never
    from a publisher): the frames sent so far are older than a report period."""
    silent = ("frames stopped arriving", "but no frame for")
    return probe.status(lambda s: any(w in s.message for w in silent)) is not None


SILENT_CAMERA = """
import sys, time, rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
rclpy.init()
node = rclpy.create_node("default_transport_camera")
pub = node.create_publisher(Image, "/image", qos_profile_sensor_data)
time.sleep(float(sys.argv[1]))
"""


def test_a_camera_whose_frames_never_arrive_is_diagnosed(probe, node, street_frames):
    """A matched camera whose frames never arrive gets the warning that names the Fast DDS
    profile, its usual cause.

    Without the profile Fast DDS drops most large best-effort frames (ros2/rmw_fastrtps#739),
    but not all: both generations deliver some on a busy machine, which made a camera that
    really sends them a coin toss. What the node sees is a matched publisher and no frames,
    so the camera here sends none.
    """
    import os
    import subprocess
    import sys

    from diagnostic_msgs.msg import DiagnosticStatus

    from bisenet_ros.ros.transport import USER_SETTINGS, profile_variables

    # with the profile on both sides a large frame arrives
    big = cv2.resize(street_frames[0], (1024, 1024))
    assert send(probe, probe.frame(big, frame_id="big")).header.frame_id == "big"

    settings = {"no_input_warning_s": 1.0, "expected_rate_hz": 0.0}  # no other warning first
    assert all(r.successful for r in probe.set_parameters(NODE, settings))
    env = {k: v for k, v in os.environ.items() if k not in USER_SETTINGS}
    (variable,) = profile_variables()  # the one this Fast DDS generation reads
    # this probe's frames must be older than the new camera, or they count as its own
    assert wait_until_silent(probe), node.log()[-1000:]
    camera = subprocess.Popen([sys.executable, "-c", SILENT_CAMERA, "120"], env=env)
    try:
        status = probe.status(
            lambda s: s.level == DiagnosticStatus.WARN and variable in s.message, timeout=100.0
        )
        assert status is not None, f"no diagnostics warning:\n{node.log()[-1000:]}"
        logged = probe.spin_until(lambda: variable in node.log(), timeout=30.0)
        assert logged and "no frame for" in node.log(), node.log()[-1000:]
    finally:
        camera.kill()
        camera.wait()
    assert "no frame for" in node.log() and variable in node.log()
