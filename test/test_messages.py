"""The package's own message, built by colcon: import, install layout, DDS round trip."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import pytest

# Every field of msg/SegmentationInfo.msg and its ROS type: the test fails when the message
# changes without this contract (and the node, and its users) changing with it.
SEGMENTATION_INFO_FIELDS = {
    "header": "std_msgs/Header",
    "model_name": "string",
    "architecture": "string",
    "backend": "string",
    "precision": "string",
    "class_names": "sequence<string>",
    "palette": "sequence<uint8>",
    "drivable_class_ids": "sequence<uint8>",
    "input_width": "uint32",
    "input_height": "uint32",
    "output_width": "uint32",
    "output_height": "uint32",
    "preprocess_ms": "float",
    "inference_ms": "float",
    "postprocess_ms": "float",
    "total_latency_ms": "float",
    "frames_processed": "uint64",
    "frames_dropped": "uint64",
    "frames_rejected": "uint64",
}


def sample_info():
    from bisenet_ros.msg import SegmentationInfo

    msg = SegmentationInfo()
    msg.header.stamp.sec = 1_700_000_123
    msg.header.stamp.nanosec = 987_654_321
    msg.header.frame_id = "front_camera_optical"
    msg.model_name = "bisenetv2_camvid_960x720"
    msg.architecture = "bisenetv2"
    msg.backend = "onnxruntime"
    msg.precision = "fp16"
    msg.class_names = ["sky", "building", "road", "sidewalk", "terrain", "végétation ü"]
    msg.palette = [128, 128, 128, 128, 0, 0, 128, 64, 128, 0, 0, 192, 255, 255, 0, 0, 255, 1]
    msg.drivable_class_ids = [2, 4]
    msg.input_width, msg.input_height = 1024, 512
    msg.output_width, msg.output_height = 4_294_967_295, 720  # uint32 max survives
    # float32-exact values, so equality is exact after the trip.
    msg.preprocess_ms, msg.inference_ms = 1.25, 12.5
    msg.postprocess_ms, msg.total_latency_ms = 0.75, 31.0078125
    msg.frames_processed = 2**64 - 1  # uint64 max survives
    msg.frames_dropped = 2**40 + 3
    msg.frames_rejected = 7
    return msg


def assert_same_info(received, sent) -> None:
    for field in SEGMENTATION_INFO_FIELDS:
        got, want = getattr(received, field), getattr(sent, field)
        if field == "header":
            assert (got.stamp.sec, got.stamp.nanosec, got.frame_id) == (
                want.stamp.sec,
                want.stamp.nanosec,
                want.frame_id,
            ), field
        elif field in ("palette", "drivable_class_ids"):
            assert bytes(got) == bytes(want), field
        elif field == "class_names":
            assert list(got) == list(want), field
        else:
            assert got == want, field
    assert received == sent


def test_message_has_exactly_the_documented_fields(ros_env):
    from bisenet_ros.msg import SegmentationInfo

    assert SegmentationInfo.get_fields_and_field_types() == SEGMENTATION_INFO_FIELDS
    # Index i of the flattened palette triplets is class i.
    msg = sample_info()
    assert len(msg.palette) == 3 * len(msg.class_names)


def test_messages_and_code_live_in_one_installed_package(ros_env):
    """`bisenet_ros.msg` (generated) and `bisenet_ros.models` (ours) resolve side by side."""
    msg = importlib.util.find_spec("bisenet_ros.msg")
    models = importlib.util.find_spec("bisenet_ros.models")
    package = importlib.util.find_spec("bisenet_ros")
    assert msg and models and package
    root = Path(package.origin).parent
    assert Path(msg.origin).parent.parent == root
    assert Path(models.origin).parent.parent == root
    # Source edits reach the installed package without a rebuild (colcon --symlink-install),
    # or the installed file is at least the same as the source one.
    repo_init = Path(__file__).resolve().parents[1] / "bisenet_ros" / "__init__.py"
    assert Path(package.origin).read_bytes() == repo_init.read_bytes()


def test_install_provides_launcher_launch_and_config(ros_env):
    from ament_index_python.packages import get_package_prefix, get_package_share_directory

    prefix = Path(get_package_prefix("bisenet_ros"))
    launcher = prefix / "lib" / "bisenet_ros" / "segment_node"
    assert launcher.is_file() and os.access(launcher, os.X_OK)
    assert "bisenet_ros.ros.segment_node import main" in launcher.read_text()
    share = Path(get_package_share_directory("bisenet_ros"))
    assert (share / "package.xml").is_file()
    assert (share / "msg" / "SegmentationInfo.msg").is_file()
    repo = Path(__file__).resolve().parents[1]
    for folder in ("launch", "config"):
        for source in (repo / folder).glob("*"):
            if source.is_file():
                assert (share / folder / source.name).is_file(), f"{folder}/{source.name}"


def _spin_until(executor, condition, timeout_s: float, step=None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        if step:
            step()
        executor.spin_once(timeout_sec=0.05)
    return condition()


@pytest.mark.parametrize("durability", ["volatile", "transient_local"])
def test_segmentation_info_round_trips_over_dds(ros_context, durability):
    import rclpy
    from bisenet_ros.msg import SegmentationInfo
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    qos = QoSProfile(
        depth=5,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=getattr(DurabilityPolicy, durability.upper()),
    )
    topic = f"/bisenet_test/info_{durability}"
    pub_node = rclpy.create_node("info_publisher", context=ros_context)
    sub_node = rclpy.create_node("info_subscriber", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    try:
        received = []
        publisher = pub_node.create_publisher(SegmentationInfo, topic, qos)
        sub_node.create_subscription(SegmentationInfo, topic, received.append, qos)
        for node in (pub_node, sub_node):
            executor.add_node(node)

        matched = _spin_until(
            executor,
            lambda: publisher.get_subscription_count() > 0 and sub_node.count_publishers(topic) > 0,
            timeout_s=15.0,
        )
        assert matched, "publisher and subscriber never discovered each other"

        sent = sample_info()
        publisher.publish(sent)
        assert _spin_until(executor, lambda: received, timeout_s=10.0), "nothing received"
        assert len(received) == 1
        assert isinstance(received[0], SegmentationInfo)
        assert received[0] is not sent
        assert_same_info(received[0], sent)
    finally:
        executor.shutdown()
        pub_node.destroy_node()
        sub_node.destroy_node()
