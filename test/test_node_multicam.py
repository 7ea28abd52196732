"""Two cameras, JPEG input, one segment_node process and one model, over real DDS."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy")


NODE = "/segment_node"
CAMERAS = ("front", "rear")


@pytest.fixture(scope="module")
def node(ros_env, node_params, tmp_path_factory):
    from bisenet_ros.ros.harness import NodeProcess

    params = {
        **node_params,
        "cameras": list(CAMERAS),
        "input_transport": "compressed",
        "input_reliability": "reliable",  # QoS is a setting: this node wants reliable input
    }
    process = NodeProcess(params, tmp_path_factory.mktemp("multicam")).start()
    yield process
    assert process.stop() == 0, process.log()[-3000:]


@pytest.fixture(scope="module")
def probe(node):
    from bisenet_ros.msg import SegmentationInfo
    from conftest import probe_node
    from sensor_msgs.msg import CompressedImage

    from bisenet_ros.ros.qos import reliability_qos

    with probe_node("multicam_probe") as probe:
        probe.cameras = {}
        for camera in CAMERAS:
            probe.record(f"{NODE}/{camera}/labels")
            probe.record(f"{NODE}/{camera}/info", SegmentationInfo)
            probe.cameras[camera] = probe.camera(
                f"/{camera}/image/compressed", CompressedImage, reliability_qos("reliable", 1)
            )
        for camera, publisher in probe.cameras.items():
            assert probe.wait_for_subscribers(publisher, timeout=60), node.log()[-3000:]
            assert probe.wait_for_publishers(f"{NODE}/{camera}/labels", timeout=30)
        yield probe


def jpeg(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def send_pair(probe, images: dict, timeout: float = 20.0) -> dict:
    """Publish one JPEG per camera back to back until both answers arrive."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        msgs = {c: probe.compressed_frame(jpeg(images[c]), frame_id=c) for c in CAMERAS}
        for camera, msg in msgs.items():
            probe.cameras[camera].publish(msg)
        outs = {
            c: probe.wait_for(f"{NODE}/{c}/labels", m.header.stamp, timeout=2.0)
            for c, m in msgs.items()
        }
        if all(outs.values()):
            return {c: (msgs[c], outs[c]) for c in CAMERAS}
    raise AssertionError("no answer for both cameras")


def test_two_cameras_one_model_labels_and_headers(probe, tiny_segmenter, street_frames):
    from bisenet_ros.ros.harness import image_of

    images = {"front": street_frames[0], "rear": street_frames[1]}
    for camera, (msg, out) in send_pair(probe, images).items():
        assert out.header.frame_id == camera and out.header.stamp == msg.header.stamp
        decoded = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
        expected = tiny_segmenter.segment(decoded, channel_order="bgr")[0].ids
        # the node may have run both cameras as one batch of two; a batched convolution may
        # round differently in the last bit, so allow a handful of flipped pixels
        agreement = (image_of(out) == expected).mean()
        assert agreement > 0.999, f"{camera}: {agreement:.4f} of pixels agree"


def test_frames_available_together_run_as_one_batch(probe, street_frames):
    """Pairs sent faster than the node segments them: sooner or later both cameras' frames
    wait together and run as one batch of two (how soon depends on the machine's load)."""
    from diagnostic_msgs.msg import DiagnosticArray

    probe.record("/diagnostics", DiagnosticArray)

    def batch_max() -> int:
        values = [
            int(kv.value)
            for array in probe.received["/diagnostics"]
            for status in array.status
            for kv in status.values
            if kv.key == "batch_size_max"
        ]
        return max(values, default=0)

    data = jpeg(street_frames[2])
    for _ in range(3000):
        for camera in CAMERAS:
            probe.cameras[camera].publish(probe.compressed_frame(data, camera))
        if probe.spin_until(lambda: batch_max() == 2, 0.02):
            break
    assert batch_max() == 2


def test_corrupt_jpeg_is_rejected_and_node_keeps_answering(probe, node, street_frames):
    from sensor_msgs.msg import CompressedImage

    def rejected() -> int:
        status = probe.status(name="front")
        assert status is not None, "no /diagnostics"
        return int(next(kv.value for kv in status.values if kv.key == "frames_rejected"))

    good = jpeg(street_frames[0])
    bad = [good[: len(good) // 3], b"\xff\xd8garbage", b""]
    before = rejected()
    for data in bad:
        msg = CompressedImage(format="jpeg", data=data)
        msg.header.stamp = probe.node.get_clock().now().to_msg()
        probe.cameras["front"].publish(msg)
        # the worker finds a truncated JPEG only when it decodes it: let it before the next
        before += 1
        reports = (rejected() for _ in range(60))  # a report a second
        assert next((n for n in reports if n >= before), None) == before
    msgs = send_pair(probe, {"front": street_frames[0], "rear": street_frames[0]})
    info = probe.wait_for(f"{NODE}/front/info", msgs["front"][0].header.stamp)
    assert info.frames_rejected == before
    assert node.alive()


def test_best_effort_camera_against_reliable_input_is_named(probe, node):
    """The classic mismatch: the node says which setting to change instead of staying silent."""
    from sensor_msgs.msg import CompressedImage

    publisher = probe.camera("/front/image/compressed", CompressedImage)  # best effort
    assert probe.spin_until(lambda: "incompatible" in node.log(), 15.0), node.log()[-2000:]
    assert "input_reliability:=best_effort" in node.log()
    probe.node.destroy_publisher(publisher)


def test_views_nobody_subscribes_to_are_not_computed(probe, street_frames):
    """This probe listens to labels only: colour, overlay, confidence, masks are skipped."""

    send_pair(probe, {"front": street_frames[0], "rear": street_frames[1]})
    status = probe.status(name="front")
    values = {kv.key: kv.value for kv in status.values}
    assert values["views_published"] == "labels"
