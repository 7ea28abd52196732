"""Planning stacks consume the node as it is: ~/label_info and ~/points over real DDS.

One node serves two cameras, each with its own aligned depth topic. Real CamVid frames are
paired with a synthetic 16UC1 depth image of a flat ground plane seen by a level camera of
known height and intrinsics, so every point with depth must lie on that plane. The checks
Nav2's semantic_segmentation_layer makes before it uses a frame are made here too, against
the parameter block docs/nav2.md gives for the bundled model's classes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy")
pytest.importorskip("vision_msgs", reason="vision_msgs is not built here (make test builds it)")

NODE = "/segment_node"
CAMERAS = ("front", "rear", "side")  # side never gets a camera_info
SIZE = (240, 320)  # (height, width) of the frames
FX = FY = 200.0
CX, CY = 160.0, 120.0
HEIGHT_M = 1.5  # the camera above the ground plane, looking level
NAV2_DOC = Path(__file__).resolve().parents[1] / "docs" / "nav2.md"


@pytest.fixture(scope="module")
def node(ros_env, node_params, tmp_path_factory):
    from bisenet_ros.ros.harness import NodeProcess

    # max_input_age_ms 0 (node_params): the frames carry made-up stamps, one second apart
    params = {**node_params, "cameras": list(CAMERAS), "depth_topic": "depth", "input_depth": 5}
    process = NodeProcess(params, tmp_path_factory.mktemp("points")).start()
    yield process
    assert process.stop() == 0, process.log()[-3000:]


class Rig:
    """A camera driver per camera: colour, aligned depth and camera_info on one stamp."""

    def __init__(self, probe) -> None:
        from sensor_msgs.msg import CameraInfo, PointCloud2

        self.probe = probe
        self.seconds = 1000
        self.publishers = {}
        for camera in CAMERAS:
            self.publishers[camera] = {
                "image": probe.camera(f"/{camera}/image"),
                "depth": probe.camera(f"/{camera}/depth"),
                "info": probe.camera(f"/{camera}/camera_info", CameraInfo),
            }
            probe.record(f"{NODE}/{camera}/labels")
            probe.record(f"{NODE}/{camera}/points", PointCloud2)
        probe.record(f"{NODE}/front/confidence")  # rear's points carry it unasked

    def stamp(self):
        from builtin_interfaces.msg import Time

        self.seconds += 1
        return Time(sec=self.seconds, nanosec=0)

    def frame(self, camera: str, image, depth=None, depth_offset_s: int = 0):
        """A new frame of ``camera``, its camera_info (not for side) and depth published
        first on the same stamp; the frame is for the caller to publish."""
        pubs = self.publishers[camera]
        msg = self.probe.frame(image, "rgb8", f"{camera}_optical_frame")
        msg.header.stamp = self.stamp()
        if camera != "side":
            pubs["info"].publish(camera_info(msg.header))
        if depth is not None:
            depth.header.stamp.sec = msg.header.stamp.sec + depth_offset_s
            depth.header.frame_id = msg.header.frame_id
            pubs["depth"].publish(depth)
        return msg

    def answered(self, camera: str, topic: str, image, depth=None, depth_offset_s: int = 0):
        """Send frames until ``topic`` answers one; (frame sent, answer)."""
        sent = []

        def frame():
            sent.append(self.frame(camera, image, depth, depth_offset_s))
            return sent[-1]

        image_pub = self.publishers[camera]["image"]
        answer = self.probe.publish_until_answered(image_pub, frame, f"{NODE}/{camera}/{topic}")
        assert answer is not None, f"no answer on {topic} for {camera}"
        return next(m for m in sent if m.header.stamp == answer.header.stamp), answer


def camera_info(header):
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(width=SIZE[1], height=SIZE[0], distortion_model="plumb_bob")
    info.header = header
    info.k = [FX, 0.0, CX, 0.0, FY, CY, 0.0, 0.0, 1.0]
    info.p = [FX, 0.0, CX, 0.0, 0.0, FY, CY, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def ground_depth(encoding: str = "16UC1", size=SIZE):
    """The depth a level camera HEIGHT_M above flat ground sees: Z = h * fy / (v - cy)
    below the horizon, nothing (0) above it."""
    from sensor_msgs.msg import Image

    height, width = size
    rows = np.arange(height, dtype=np.float64)[:, None] - CY * height / SIZE[0]
    with np.errstate(divide="ignore"):
        z = np.where(rows > 0, HEIGHT_M * FY * height / SIZE[0] / rows, 0.0)
    z = np.broadcast_to(z, (height, width))
    if encoding == "16UC1":
        data = np.round(np.minimum(z, 65.0) * 1000).astype("<u2")
    else:
        data = z.astype("<f4")
    return Image(height=height, width=width, encoding=encoding, step=width * data.itemsize,
                 data=data.tobytes())  # fmt: skip


@pytest.fixture(scope="module")
def rig(node):
    from conftest import probe_node

    with probe_node("points_probe") as probe:
        rig = Rig(probe)
        for camera in CAMERAS:
            pubs = rig.publishers[camera]
            for publisher in pubs.values():
                assert probe.wait_for_subscribers(publisher, timeout=60), node.log()[-3000:]
            assert probe.wait_for_publishers(f"{NODE}/{camera}/points", timeout=30)
        yield rig


def cloud_points(cloud) -> np.ndarray:
    from bisenet_ros.inference.points import point_dtype

    names = [f.name for f in cloud.fields]
    dtype = point_dtype("confidence" in names)
    return np.frombuffer(bytes(cloud.data), dtype).reshape(cloud.height, cloud.width)


def label_info_messages(probe, topic: str) -> list:
    """A subscriber that joins now, as the Nav2 layer does (reliable, transient local)."""
    from vision_msgs.msg import LabelInfo

    from bisenet_ros.ros.label_info import QOS

    received = []
    probe.node.create_subscription(LabelInfo, topic, received.append, QOS)
    return received


def nav2_class_names() -> set[str]:
    """Every class name the parameter block of docs/nav2.md configures."""
    block = re.search(r"```yaml\n(.*?)```", NAV2_DOC.read_text(), re.S).group(1)
    camera = yaml.safe_load(block)["local_costmap"]["local_costmap"]["ros__parameters"]
    camera = camera["semantic_segmentation_layer"]["camera"]
    return {name for kind in camera["class_types"] for name in camera[kind]["classes"]}


def test_a_late_subscriber_gets_every_class_and_a_threshold_change(rig, node, tiny_segmenter):
    probe = rig.probe
    manifest = tiny_segmenter.manifest
    for camera in CAMERAS:
        received = label_info_messages(probe, f"{NODE}/{camera}/label_info")
        assert probe.spin_until(lambda r=received: r, 30), node.log()[-2000:]
        table = [(c.class_id, c.class_name) for c in received[-1].class_map]
        assert table == list(enumerate(manifest.class_names))
        assert received[-1].threshold == 0.0
    received = label_info_messages(probe, f"{NODE}/front/label_info")
    assert probe.spin_until(lambda: received, 30)
    try:
        assert probe.set_parameters(NODE, {"confidence_threshold": 0.25})[0].successful
        assert probe.spin_until(lambda: received[-1].threshold == pytest.approx(0.25), 30)
    finally:
        assert probe.set_parameters(NODE, {"confidence_threshold": 0.0})[0].successful


def test_points_of_a_flat_ground_plane_meet_the_nav2_layers_rules(
    rig, street_frames, tiny_segmenter
):
    """front's ~/confidence has a subscriber, rear's has none: both clouds carry it."""
    probe = rig.probe
    for camera, image in zip(CAMERAS[:2], street_frames, strict=False):
        sent, cloud = rig.answered(camera, "points", image, ground_depth())
        labels = probe.wait_for(f"{NODE}/{camera}/labels", sent.header.stamp)
        # the layer's rules: equal sizes, enough mask data, one stamp, an exact match
        assert cloud.width * cloud.height == labels.width * labels.height
        assert (cloud.height, cloud.width) == SIZE and len(labels.data) >= SIZE[0] * SIZE[1]
        assert cloud.header == labels.header == sent.header
        assert {f.name: f.datatype for f in cloud.fields} == {
            "x": 7, "y": 7, "z": 7, "label": 2, "confidence": 2,
        }  # fmt: skip
        assert not cloud.is_dense and cloud.point_step * cloud.width == cloud.row_step
        points = cloud_points(cloud)
        valid = ~np.isnan(points["z"])
        rows = np.arange(SIZE[0])
        # depth beyond depth_max_m (20 m) and above the horizon is NaN; the rest is valid
        expected_rows = rows >= CY + HEIGHT_M * FY / 20.0
        np.testing.assert_array_equal(valid.all(axis=1), expected_rows)
        np.testing.assert_array_equal(valid.any(axis=1), expected_rows)
        assert np.abs(points["y"][valid] - HEIGHT_M).max() < 0.02  # on the ground plane
        u = np.broadcast_to(np.arange(SIZE[1]), SIZE)
        x = (u - CX) * points["z"] / FX
        assert np.abs(points["x"][valid] - x[valid]).max() < 1e-3
        np.testing.assert_array_equal(points["label"], np.frombuffer(bytes(labels.data), np.uint8)
                                      .reshape(SIZE))  # fmt: skip
        if camera == "front":
            confidence = probe.wait_for(f"{NODE}/front/confidence", sent.header.stamp)
            assert confidence.header == sent.header
            expected = np.frombuffer(bytes(confidence.data), np.uint8).reshape(SIZE)
            np.testing.assert_array_equal(points["confidence"], expected)
        else:  # the node may have run it in a batch with another camera's frame: +-1
            expected = tiny_segmenter.segment(image, confidence=True)[0].confidence
            assert np.abs(points["confidence"].astype(int) - expected).max() <= 1


def test_the_nav2_recipe_names_only_classes_the_node_publishes(rig):
    from bisenet_ros.bundled import BUNDLED_MODEL
    from bisenet_ros.manifest import Manifest

    bundled = Manifest.load(BUNDLED_MODEL.with_name("bisenetv2_camvid.manifest.yaml"))
    assert nav2_class_names() == set(bundled.class_names)  # every class, none invented
    received = label_info_messages(rig.probe, f"{NODE}/front/label_info")
    assert rig.probe.spin_until(lambda: received, 30)
    # the node publishes the loaded model's table: the test model has CamVid's classes too
    assert {c.class_name for c in received[-1].class_map} == set(bundled.class_names)


def test_the_nav2_layers_best_effort_subscribers_get_mask_confidence_and_cloud(
    rig, node, street_frames
):
    """The layer reads the three per-frame topics with the sensor-data QoS (best effort) and
    pairs them by stamp. A 1.2 MB cloud is over Fast DDS's default 0.5 MB shared-memory
    segment, which loses most larger best-effort samples: one frame's three must arrive."""
    from conftest import probe_node
    from sensor_msgs.msg import Image, PointCloud2

    labels, confidence, points = (
        f"{NODE}/front/{name}" for name in ("labels", "confidence", "points")
    )
    with probe_node("nav2_layer_probe") as layer:
        for topic, kind in [(labels, Image), (confidence, Image), (points, PointCloud2)]:
            layer.record(topic, kind, "best_effort")
        make_frame = lambda: rig.frame("front", street_frames[0], ground_depth())  # noqa: E731
        image = rig.publishers["front"]["image"]
        cloud = layer.publish_until_answered(image, make_frame, points, labels, confidence)
        assert cloud is not None, node.log()[-2000:]
        mask = layer.find(labels, cloud.header.stamp)
    assert cloud.width * cloud.height == mask.width * mask.height
    assert len(cloud.data) == cloud.row_step * cloud.height > 1_000_000
    np.testing.assert_array_equal(
        cloud_points(cloud)["label"], np.frombuffer(bytes(mask.data), np.uint8).reshape(SIZE)
    )


BAD_DEPTH = [  # reason, the depth sent, its stamp's offset from the frame's
    ("depth_encoding", "32FC1_as_rgb8", 0),
    ("depth_size", "half_size", 0),
    ("depth_data_length", "short", 0),
    ("depth_unmatched", "good", -1),
]


def bad_depth(kind: str):
    if kind == "good":
        return ground_depth()
    if kind == "half_size":
        return ground_depth(size=(SIZE[0] // 2, SIZE[1] // 2))
    depth = ground_depth("32FC1")
    if kind == "32FC1_as_rgb8":
        depth.encoding = "rgb8"
    elif kind == "short":
        depth.data = bytes(depth.data)[:-100]
    return depth


def skipped_points_counted(probe, camera: str, reason: str) -> bool:
    def counted(status) -> bool:
        values = {kv.key: kv.value for kv in status.values}
        return f"{reason}=" in values.get("points_skipped_by_reason", "")

    return probe.status(counted, name=camera) is not None


@pytest.mark.parametrize("reason, depth, offset_s", BAD_DEPTH, ids=[b[0] for b in BAD_DEPTH])
def test_bad_depth_is_counted_and_logged_and_the_next_good_pair_has_points(
    rig, node, street_frames, reason, depth, offset_s
):
    """Every frame is still segmented; a good pair afterwards gets its points."""
    rig.answered("rear", "labels", street_frames[1], bad_depth(depth), offset_s)
    assert skipped_points_counted(rig.probe, "rear", reason), node.log()[-2000:]
    assert f"({reason}):" in node.log(), node.log()[-2000:]
    sent, cloud = rig.answered("rear", "points", street_frames[1], ground_depth())
    assert cloud.header == sent.header
    assert node.alive() and "Traceback" not in node.log()


def test_a_camera_without_camera_info_is_segmented_without_points(rig, node, street_frames):
    rig.answered("side", "labels", street_frames[2], ground_depth())
    assert skipped_points_counted(rig.probe, "side", "no_camera_info"), node.log()[-2000:]
    assert "(no_camera_info):" in node.log()
    assert not rig.probe.received[f"{NODE}/side/points"]


def test_without_vision_msgs_the_node_segments_and_says_what_is_missing(
    ros_env, node_params, street_frames, tmp_path
):
    from conftest import probe_node

    from bisenet_ros.ros.harness import NodeProcess

    params = {**node_params, "warmup_iterations": 0}
    node = NodeProcess(params, tmp_path, env={"BISENET_TEST_NO_VISION_MSGS": "1"}).start()
    try:
        with probe_node("no_vision_msgs_probe") as probe:
            probe.record(f"{NODE}/labels")
            camera = probe.camera("/image")
            assert probe.wait_for_subscribers(camera, timeout=60), node.log()[-3000:]
            frame = lambda: probe.frame(street_frames[0])  # noqa: E731
            assert probe.publish_until_answered(camera, frame, f"{NODE}/labels")
            assert probe.node.count_publishers(f"{NODE}/label_info") == 0
    finally:
        assert node.stop() == 0, node.log()[-3000:]
    assert node.log().count("vision_msgs is not installed") == 1, node.log()[-3000:]
    assert "apt install ros-$ROS_DISTRO-vision-msgs" in node.log()
