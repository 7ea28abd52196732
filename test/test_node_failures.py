"""segment_node tells the truth about frames it does not answer: over real DDS, real frames.

Each test starts its own node process. Bad inputs go through a reliable, deep queue so that
none is lost on the way; each is followed by a good frame, whose ``~/info`` must show exactly
one more unanswered frame, and the node's counters and log must name each reason.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy")

NODE = "/segment_node"
SIZE = (240, 320)  # (height, width) of the good frame


@pytest.fixture(scope="module")
def good_rgb(street_frames) -> np.ndarray:
    return street_frames[0]


def start_node(model_file, model_backend, workdir, **params):
    from bisenet_ros.ros.harness import NodeProcess

    base = {"model_path": str(model_file), "backend": model_backend, "threads": 1}
    return NodeProcess(base | {"warmup_iterations": 1} | params, workdir).start()


def stop_node(node) -> None:
    code = node.stop()
    assert code == 0, f"segment_node exited with {code}:\n{node.log()[-3000:]}"


def diagnostics_values(probe, timeout: float = 5.0) -> tuple[object, dict]:
    """The node's next camera status and its values (a report made from now on)."""
    from diagnostic_msgs.msg import DiagnosticArray

    if "/diagnostics" not in probe.received:
        probe.record("/diagnostics", DiagnosticArray)
    probe.received["/diagnostics"].clear()
    statuses = lambda: [  # noqa: E731
        s for a in probe.received["/diagnostics"] for s in a.status if "camera" in s.name
    ]
    assert probe.spin_until(lambda: statuses(), timeout), "no /diagnostics"
    status = statuses()[-1]
    return status, {kv.key: kv.value for kv in status.values}


def status_while_publishing(probe, camera, make_frame, timeout: float = 10.0):
    """The node's first camera status made while frames keep arriving, as from a working
    camera (a report made more than ``no_input_warning_s`` after a last frame says the
    camera stopped, which on a loaded machine can happen between frames sent one by one)."""
    diagnostics_values(probe, timeout)  # records /diagnostics
    reports = probe.received["/diagnostics"]
    reports.clear()
    deadline = time.monotonic() + timeout
    while not reports and time.monotonic() < deadline:
        camera.publish(make_frame())
        probe.spin_until(lambda: bool(reports), 0.2)
    statuses = [s for a in reports for s in a.status if "camera" in s.name]
    assert statuses, "no /diagnostics"
    return statuses[-1]


def by_reason(text: str) -> Counter:
    return Counter({k: int(v) for k, v in (p.split("=") for p in text.split(", ") if p)})


# --- the fuzz test -----------------------------------------------------------------------


def raw_bad_inputs(good_rgb) -> list[tuple[str, str, object]]:
    """(name, expected reason, message or serialized bytes): raw Image inputs."""
    from builtin_interfaces.msg import Time
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    def image(width, height, encoding, step, data, **fields):
        return Image(width=width, height=height, encoding=encoding, step=step, data=data, **fields)

    rgb = image(320, 240, "rgb8", 960, good_rgb.tobytes())
    cdr = serialize_message(rgb)
    wrong_order = b"\x00\x00" + cdr[2:]  # big-endian header over little-endian fields
    huge_length = cdr[:12] + b"\xff\xff\xff\x7f" + cdr[16:]  # frame_id length field
    data_length_at = len(cdr) - len(good_rgb.tobytes()) - 4
    overlong = cdr[:data_length_at] + (10**8).to_bytes(4, "little") + cdr[data_length_at + 4 :]

    def stamped(sec: int, nanosec: int = 0):
        msg = image(320, 240, "rgb8", 960, good_rgb.tobytes())
        msg.header.stamp = Time(sec=sec, nanosec=nanosec)
        return msg

    now = time.time()  # stamps ahead stay ahead while a loaded machine runs the test
    return [
        ("float encoding", "encoding", image(4, 4, "32FC1", 16, bytes(64))),
        ("depth encoding", "encoding", image(4, 4, "16UC1", 8, bytes(32))),
        ("empty encoding", "encoding", image(4, 4, "", 12, bytes(48))),
        ("rgb16", "encoding", image(4, 4, "rgb16", 24, bytes(96))),
        ("nv12", "encoding", image(4, 4, "nv12", 4, bytes(24))),
        ("bayer 16", "encoding", image(4, 4, "bayer_rggb16", 8, bytes(32))),
        ("padded name", "encoding", image(4, 4, "rgb8 ", 12, bytes(48))),
        ("data short", "data_length", image(320, 240, "rgb8", 960, bytes(100))),
        ("data long", "data_length", image(32, 32, "rgb8", 96, bytes(96 * 33))),
        ("step below row", "data_length", image(320, 240, "rgb8", 100, bytes(24000))),
        ("step huge", "data_length", image(32, 32, "mono8", 2**32 - 1, bytes(1024))),
        ("rgba as rgb step", "data_length", image(32, 32, "rgba8", 96, bytes(96 * 32))),
        ("mono16 odd step", "data_length", image(32, 32, "mono16", 63, bytes(63 * 32))),
        ("bayer short", "data_length", image(32, 32, "bayer_rggb8", 32, bytes(1000))),
        ("one byte short", "data_length", image(32, 32, "mono8", 32, bytes(1023))),
        ("width 0", "empty", image(0, 32, "mono8", 0, b"")),
        ("height 0", "empty", image(32, 0, "mono8", 32, b"")),
        ("0x0", "empty", image(0, 0, "rgb8", 0, b"")),
        ("200000 squared", "too_large", image(200_000, 200_000, "mono8", 200_000, bytes(16))),
        ("wide strip", "too_large", image(2**31 - 1, 8, "mono8", 2**31 - 1, bytes(16))),
        ("10000 squared", "too_large", image(10_000, 10_000, "mono8", 10_000, bytes(16))),
        ("yuv422 odd width", "odd_width", image(33, 32, "yuv422", 66, bytes(66 * 32))),
        ("yuyv odd width", "odd_width", image(33, 32, "yuyv", 66, bytes(66 * 32))),
        ("1x1", "too_small", image(1, 1, "mono8", 1, bytes(1))),
        ("7x7", "too_small", image(7, 7, "rgb8", 21, bytes(21 * 7))),
        ("one row", "too_small", image(4000, 1, "mono8", 4000, bytes(4000))),
        ("truncated CDR", "malformed", cdr[:5000]),
        ("three bytes", "malformed", b"\x00\x01\x00"),
        ("unknown encapsulation", "malformed", b"\x00\x09\x00\x00" + cdr[4:]),
        ("byte order flipped", "malformed", wrong_order),
        ("string length huge", "malformed", huge_length),
        ("data length past end", "malformed", overlong),
        ("10 s old", "stamp_in_past", stamped(int(now) - 10)),
        ("an hour old", "stamp_in_past", stamped(int(now) - 3600)),
        ("near the epoch", "stamp_in_past", stamped(0, 1)),
        ("negative seconds", "stamp_in_past", stamped(-5)),
        ("an hour ahead", "stamp_in_future", stamped(int(now) + 3600)),
        ("year 2038", "stamp_in_future", stamped(2**31 - 1)),
        ("nanosec overflow", "stamp_in_future", stamped(int(now) + 7200, 4_000_000_000)),
        ("a day ahead", "stamp_in_future", stamped(int(now) + 86400)),
    ]


def compressed_bad_inputs(good_rgb) -> list[tuple[str, str, object]]:
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import CompressedImage

    jpeg = cv2.imencode(".jpg", good_rgb[..., ::-1])[1].tobytes()
    png = cv2.imencode(".png", good_rgb[..., ::-1])[1].tobytes()
    scan = jpeg.index(b"\xff\xda")
    middle = (scan + len(jpeg)) // 2
    zeroed = jpeg[:middle] + bytes(len(jpeg) - 2 - middle) + b"\xff\xd9"
    sof = jpeg.index(b"\xff\xc0")
    bomb = jpeg[: sof + 5] + (60000).to_bytes(2, "big") * 2 + jpeg[sof + 9 :]
    png_bomb = png[:16] + (60000).to_bytes(4, "big") * 2 + png[24:]

    def compressed(data: bytes, fmt: str = "jpeg", sec: int | None = None):
        msg = CompressedImage(format=fmt, data=data)
        if sec is not None:
            msg.header.stamp = Time(sec=sec)
        return msg

    return [
        ("empty", "empty", compressed(b"")),
        ("not an image", "decode", compressed(b"hello, world")),
        ("jpeg cut, no EOI", "corrupt", compressed(jpeg[: len(jpeg) // 3])),
        ("jpeg cut, EOI kept", "corrupt", compressed(jpeg[: len(jpeg) // 2] + b"\xff\xd9")),
        ("jpeg scan zeroed", "corrupt", compressed(zeroed)),
        ("jpeg header only", "corrupt", compressed(jpeg[:scan])),
        ("jpeg garbage", "corrupt", compressed(b"\xff\xd8garbage")),
        ("png cut", "corrupt", compressed(png[: len(png) // 2], "png")),
        ("png bytes zeroed", "corrupt", compressed(png[:100] + bytes(200) + png[300:], "png")),
        ("jpeg labelled png", "format", compressed(jpeg, "png")),
        ("png labelled jpeg", "format", compressed(png, "jpeg")),
        ("compressedDepth", "format", compressed(png, "16UC1; compressedDepth png")),
        ("h264", "format", compressed(jpeg, "h264")),
        ("jpeg bomb header", "too_large", compressed(bomb)),
        ("png bomb header", "too_large", compressed(png_bomb, "png")),
        ("old stamp", "stamp_in_past", compressed(jpeg, sec=int(time.time()) - 60)),
        ("future stamp", "stamp_in_future", compressed(jpeg, sec=int(time.time()) + 3600)),
    ]


@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_fuzz_every_bad_input_is_counted_logged_and_survived(
    ros_env, model_file, model_backend, tmp_path, good_rgb, transport
):
    from bisenet_ros.msg import SegmentationInfo
    from conftest import probe_node
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import CompressedImage, Image

    if transport == "raw":
        inputs, topic, msg_type = raw_bad_inputs(good_rgb), "/image", Image
    else:
        inputs, topic, msg_type = compressed_bad_inputs(good_rgb), "/image/compressed", None
        msg_type = CompressedImage
    assert len({name for name, _, _ in inputs}) == len(inputs)
    # reliable and deep: no bad frame may be lost or overtaken on the way
    node = start_node(
        model_file,
        model_backend,
        tmp_path,
        input_transport=transport,
        input_reliability="reliable",
        input_depth=100,
        max_input_age_ms=2000.0,  # a loaded CI machine must not drop the good frames
    )
    jpeg = cv2.imencode(".jpg", good_rgb[..., ::-1])[1].tobytes()
    try:
        with probe_node() as probe:
            probe.record(f"{NODE}/info", SegmentationInfo)
            camera = probe.camera(topic, msg_type, QoSProfile(depth=100))
            assert probe.wait_for_subscribers(camera, timeout=60), node.log()[-3000:]

            def good():
                if transport == "raw":
                    return probe.frame(good_rgb)
                return probe.compressed_frame(jpeg)

            def unanswered() -> int:
                info = probe.publish_until_answered(camera, good, f"{NODE}/info")
                assert info is not None, node.log()[-3000:]
                return info.frames_rejected + info.frames_dropped

            def counted_by_node() -> int:
                status = probe.status()
                assert status is not None, "no /diagnostics"
                values = {kv.key: kv.value for kv in status.values}
                return int(values["frames_rejected"]) + int(values["frames_dropped"])

            before = unanswered()
            for name, _, bad in inputs:
                camera.publish(bad)
                if transport == "compressed":  # corrupt data shows only when decoded, so the
                    # worker must take it before the good frame that would supersede it
                    reports = (counted_by_node() for _ in range(60))  # a report a second
                    assert next((n for n in reports if n > before), None) == before + 1, name
                after = unanswered()  # the node still answers a good frame
                assert after == before + 1, f"{name}: {after - before} frames counted"
                before = after
            assert node.alive()
            _, values = diagnostics_values(probe)
    finally:
        stop_node(node)
    counted = by_reason(values["rejected_by_reason"]) + by_reason(values["dropped_by_reason"])
    assert counted == Counter(reason for _, reason, _ in inputs)
    log = node.log()
    for reason in counted:  # every reason logged at least once, with its name
        assert f"({reason}):" in log, reason
    assert "Traceback" not in log


# --- time: bags and cameras with their own clocks -------------------------------------------


def test_bag_replay_needs_use_sim_time_and_says_so(
    ros_env, model_file, model_backend, tmp_path, good_rgb
):
    """Frames stamped in 2001 (a bag) with the node on wall time: nothing is published,
    the log and /diagnostics name use_sim_time within 5 s; with use_sim_time but no /clock
    the node says that; once /clock runs, the same frames are segmented."""
    from builtin_interfaces.msg import Time
    from conftest import probe_node
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from rclpy.qos import QoSProfile
    from rosgraph_msgs.msg import Clock

    node = start_node(model_file, model_backend, tmp_path)  # max_input_age_ms: the default
    bag_ns = [1_000_000_000 * 10**9]  # 2001 in the bag's time, 0.1 s per frame

    try:
        with probe_node() as probe:
            camera = probe.camera("/image")
            clock = probe.node.create_publisher(Clock, "/clock", QoSProfile(depth=10))
            probe.record("/segment_node/labels")
            assert probe.wait_for_subscribers(camera, timeout=60), node.log()[-3000:]

            def bag_frame():
                bag_ns[0] += 100_000_000
                msg = probe.frame(good_rgb)
                msg.header.stamp = Time(sec=bag_ns[0] // 10**9, nanosec=bag_ns[0] % 10**9)
                return msg

            def play(until, with_clock: bool) -> list:
                """Publish bag frames, each after the last was answered or a tenth of a
                second passed, until ``until()``; the messages sent."""
                sent = []
                for _ in range(600):
                    msg = bag_frame()
                    if with_clock:
                        clock.publish(Clock(clock=msg.header.stamp))
                    camera.publish(msg)
                    sent.append(msg)
                    probe.wait_for("/segment_node/labels", msg.header.stamp, timeout=0.1)
                    if until():
                        break
                return sent

            def answered(sent: list) -> int:
                return sum(probe.find("/segment_node/labels", m.header.stamp) is not None
                           for m in sent)  # fmt: skip

            def error_says(*words: str) -> Callable[[], bool]:
                """A report since the phase began is an ERROR that says ``words``."""
                probe.received["/diagnostics"].clear()
                return lambda: any(
                    s.level == DiagnosticStatus.ERROR
                    and all(w in s.message for w in ("nothing published", *words))
                    for a in probe.received["/diagnostics"] for s in a.status
                )  # fmt: skip

            probe.record("/segment_node/labels")
            probe.record("/diagnostics", DiagnosticArray)
            said = error_says("use_sim_time:=true")
            sent = play(lambda: "use_sim_time:=true" in node.log() and said(), with_clock=False)
            assert "use_sim_time:=true" in node.log() and said(), node.log()[-2000:]

            assert probe.set_parameters(NODE, {"use_sim_time": True})[0].successful
            said = error_says("--clock")
            sent += play(lambda: "no /clock" in node.log() and said(), with_clock=False)
            assert "no /clock" in node.log() and said(), node.log()[-2000:]

            # once /clock runs, the same frames are segmented; nothing sent before was
            segmented = play(lambda: probe.received["/segment_node/labels"], with_clock=True)
            assert answered(segmented) >= 1, node.log()[-2000:]
            assert answered(sent) == 0
    finally:
        stop_node(node)


def test_camera_with_its_own_clock(ros_env, model_file, model_backend, tmp_path, good_rgb):
    """Stamps a minute ahead: dropped and named, answered once max_input_age_ms is 0."""
    from builtin_interfaces.msg import Time
    from conftest import probe_node

    node = start_node(model_file, model_backend, tmp_path)
    try:
        with probe_node() as probe:
            camera = probe.camera("/image")
            probe.record("/segment_node/labels")
            assert probe.wait_for_subscribers(camera, timeout=60), node.log()[-3000:]

            def ahead():
                msg = probe.frame(good_rgb)
                msg.header.stamp = Time(sec=int(time.time()) + 60)
                msg.header.stamp.nanosec = time.monotonic_ns() % 1_000_000_000  # unique
                return msg

            early = []
            for _ in range(600):  # until the node says why it drops them
                early.append(ahead())
                camera.publish(early[-1])
                if probe.spin_until(lambda: "ahead of the node's clock" in node.log(), 0.1):
                    break
            assert "ahead of the node's clock" in node.log()
            assert "max_input_age_ms:=0" in node.log()
            assert probe.set_parameters(NODE, {"max_input_age_ms": 0.0})[0].successful
            out = probe.publish_until_answered(camera, ahead, "/segment_node/labels")
            assert out is not None
            answered = [probe.find("/segment_node/labels", m.header.stamp) for m in early]
            assert answered == [None] * len(early)  # checked after a later frame's answer
    finally:
        stop_node(node)


# --- settings that cannot work ----------------------------------------------------------------


def test_settings_that_cannot_work_fail_configure_and_can_be_fixed(
    ros_env, model_file, model_backend, tmp_path, good_rgb
):
    """Mistakes in the parameter file. Misspelt names (which rclpy ignores silently) are
    named with the right one at start; then each configure fails with one line naming the
    next mistake, no traceback; the node stays up, and once all are fixed it runs."""
    from conftest import probe_node

    params = {
        "thread": 1,
        "model_paht": str(model_file),
        "cameras": ["front cam", "front cam"],
        "output_width": 16384,
        "output_height": 16384,
        "grid_resolution_m": 0.01,
        "grid_width_m": 500.0,
        "drivable_class_ids": [3, 11],
        "autostart": False,
    }
    fixes = [  # (what the failed configure says, the fix)
        ("cameras lists a namespace twice", {"cameras": ["front cam"]}),
        ("output_width x output_height = 16384x16384 is over max_input_pixels",
         {"output_width": 0, "output_height": 0}),
        ("the drivable grid would be 50000 x 2000 cells", {"grid_resolution_m": 0.1}),
        ("'front cam/image' is not a valid topic name", {"cameras": ["front"]}),
        ("drivable_class_ids [3, 11] are not class ids of the model (0 to 10)",
         {"drivable_class_ids": [3]}),
    ]  # fmt: skip
    node = start_node(model_file, model_backend, tmp_path, **params)
    try:
        with probe_node() as probe:
            assert probe.get_state(NODE) == "unconfigured", node.log()[-3000:]
            for typo, name in (("model_paht", "model_path"), ("thread", "threads")):
                said = f"{typo} is not a segment_node parameter and is ignored; did you mean"
                assert f"{said} {name}?" in node.log(), node.log()
            for said, fix in fixes:
                assert not probe.change_state(NODE, "configure")
                assert probe.get_state(NODE) == "unconfigured"
                assert said in node.log(), node.log()
                assert probe.set_parameters(NODE, fix)[0].successful
            assert "Traceback" not in node.log(), node.log()
            assert probe.change_state(NODE, "configure"), node.log()[-3000:]
            assert probe.change_state(NODE, "activate"), node.log()[-3000:]
            camera = probe.camera("/front/image")
            probe.record("/segment_node/labels")
            assert probe.wait_for_subscribers(camera, timeout=60), node.log()[-3000:]
            frame = lambda: probe.frame(good_rgb)  # noqa: E731
            assert probe.publish_until_answered(camera, frame, "/segment_node/labels")
    finally:
        stop_node(node)


# --- warnings that are true ------------------------------------------------------------------


def test_a_paused_camera_is_not_a_transport_problem(
    ros_env, model_file, model_backend, tmp_path, good_rgb
):
    """A working camera that stops: 'frames stopped', no Fast DDS hint; then publishing
    again clears the warning."""
    from conftest import probe_node
    from diagnostic_msgs.msg import DiagnosticStatus

    node = start_node(model_file, model_backend, tmp_path, no_input_warning_s=1.0)
    try:
        with probe_node() as probe:
            camera = probe.camera("/image")
            probe.record("/segment_node/labels")
            assert probe.wait_for_subscribers(camera, timeout=60), node.log()[-3000:]
            frame = lambda: probe.frame(good_rgb)  # noqa: E731
            for _ in range(5):
                assert probe.publish_until_answered(camera, frame, "/segment_node/labels")
            status = status_while_publishing(probe, camera, frame)
            assert status.level == DiagnosticStatus.OK, status.message
            status = probe.status(lambda s: s.level != DiagnosticStatus.OK)  # camera pauses
            assert status.level == DiagnosticStatus.WARN
            assert "frames stopped arriving" in status.message, status.message
            assert "0.5 MB" not in status.message and "0.5 MB" not in node.log()  # no DDS hint
            assert probe.publish_until_answered(camera, frame, "/segment_node/labels")
            status = status_while_publishing(probe, camera, frame)
            assert status.level == DiagnosticStatus.OK, status.message
    finally:
        stop_node(node)


# --- model files never run code -------------------------------------------------------------


def test_a_planted_model_never_runs_in_the_node_or_infer(
    ros_env, foreign_classes, tmp_path, good_rgb
):
    """A .pt whose unpickling would create a file, given to the node (model_path) and to
    `bisenet infer`, with the attacker's class importable (the worst case): refused, said
    why, nothing created."""
    import os
    import subprocess
    import sys

    torch = pytest.importorskip("torch")  # to write the planted checkpoint

    from bisenet_ros.models import build_model

    marker = tmp_path / "payload_ran"
    weights = {"state_dict": build_model("bisenetv2", 11).state_dict()}
    weights["extra"] = foreign_classes.Planted(marker)
    torch.save(weights, tmp_path / "planted.pt")
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}

    from bisenet_ros.ros.harness import NodeProcess

    node = NodeProcess({"model_path": str(tmp_path / "planted.pt")}, tmp_path / "node", env=env)
    node.start()
    try:
        node.process.wait(60)  # autostart fails: the node exits
    finally:
        node.stop()
    assert node.process.returncode == 1
    assert "refused to load" in node.log() and "posix.system" in node.log(), node.log()

    cv2.imwrite(str(tmp_path / "frame.png"), good_rgb)
    infer = subprocess.run(
        [sys.executable, "-m", "bisenet_ros.cli", "infer", "planted.pt", "frame.png", "-o", "out"],
        cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert infer.returncode == 1
    (line,) = infer.stderr.strip().splitlines()
    assert line.startswith("bisenet infer: error: ") and "refused to load" in line, line
    assert not marker.exists(), "the payload ran"
    assert not (tmp_path / "out").exists()
