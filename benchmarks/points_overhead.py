"""What ``~/points`` adds to the node's time per frame, measured on the real node.

``segment_node`` runs in its own process with a ``depth_topic``, as a user starts it. This
process is the camera driver (a CamVid frame, an aligned 16UC1 depth image and camera_info,
all on one stamp; the next frame once the previous one is answered) and the consumer of
``/segment_node/labels``. The figure is the node's own: frame received -> every output
published, minus its segment() call (``node_overhead_ms_mean_last20`` in /diagnostics). It
is read after windows without and with a subscriber on ``~/points`` (the node builds points
only when somebody listens); the windows alternate so that load from other processes hits
both. The points subscriber is what Nav2's semantic segmentation layer has: the sensor-data
QoS (best effort, depth 5), taking the serialized bytes as a C++ consumer does; the clouds it
received are counted, so a lost cloud shows.

    source env.bash
    python benchmarks/points_overhead.py --json benchmarks/results/points_overhead.json
    python benchmarks/points_overhead.py --sizes 1280x720 --output-size 640x360
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
NODE = "/segment_node"
# The node reports the mean over its last 20 frames; the first frames of a window may still
# see the subscriber set of the window before.
FRAMES_PER_WINDOW = 26


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"], help="WxH")
    parser.add_argument("--output-size", default="", help="WxH of labels and points")
    parser.add_argument("--rounds", type=int, default=2, help="alternating off/on windows")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--camvid", default=str(REPO.parent / "shared" / "datasets" / "camvid"))
    parser.add_argument("--json", default="", help="also write the results here")
    return parser.parse_args()


class Rig:
    """Camera driver and consumer: publishes a frame with its depth and camera_info, and
    waits for its labels."""

    def __init__(self, probe) -> None:
        from sensor_msgs.msg import CameraInfo, Image

        from bisenet_ros.ros.image_cdr import parse_image
        from bisenet_ros.ros.qos import reliability_qos

        self.probe = probe
        self.image = probe.camera("/image")
        self.depth = probe.camera("/depth")
        self.info = probe.camera("/camera_info", CameraInfo)
        self.answered: set[int] = set()
        self.points = 0
        self.second = 0
        probe.node.create_subscription(
            Image,
            f"{NODE}/labels",
            lambda data: self.answered.add(parse_image(data).header.stamp.sec),
            reliability_qos("reliable", 10),
            raw=True,
        )

    def subscribe_points(self):
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import PointCloud2

        return self.probe.node.create_subscription(
            PointCloud2, f"{NODE}/points", self._count, qos_profile_sensor_data, raw=True
        )

    def _count(self, _data: bytes) -> None:
        self.points += 1

    def first_points(self, frame: np.ndarray, depth: bytes) -> None:
        """Frames until one brings a cloud: the node has seen the new subscriber."""
        before = self.points
        for _ in range(20):
            if self.send(frame, depth) and self.probe.spin_until(lambda: self.points > before, 5):
                return
        raise SystemExit("segment_node published no ~/points for 20 frames")

    def send(self, frame: np.ndarray, depth: bytes) -> bool:
        """One frame, stamped a second after the last; True once its labels arrive."""
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import Header

        from bisenet_ros.ros.image_cdr import serialize_image

        height, width = frame.shape[:2]
        self.second += 1
        header = Header(frame_id="camera_optical_frame")
        header.stamp.sec = self.second
        info = CameraInfo(header=header, width=width, height=height)
        info.k = [0.8 * width, 0.0, width / 2, 0.0, 0.8 * width, height / 2, 0.0, 0.0, 1.0]
        self.info.publish(info)
        self.depth.publish(
            Image(header=header, width=width, height=height, encoding="16UC1",
                  step=2 * width, data=depth)
        )  # fmt: skip
        self.image.publish(serialize_image(frame, "rgb8", header))
        return self.probe.spin_until(lambda: self.second in self.answered, 60.0)


def window(rig: Rig, frame: np.ndarray, depth: bytes) -> float:
    for _ in range(FRAMES_PER_WINDOW):
        if not rig.send(frame, depth):
            raise SystemExit("segment_node answered no frame within 60 s")
    overhead = rig.probe.node_overhead_ms(timeout=10.0)
    if overhead is None:
        raise SystemExit("segment_node reported no overhead on /diagnostics within 10 s")
    return overhead


def measure(rig: Rig, frame: np.ndarray, rounds: int) -> dict:
    """Alternating windows without and with a ~/points subscriber."""
    height, width = frame.shape[:2]
    depth = np.random.default_rng(0).integers(300, 15000, (height, width)).astype("<u2")
    depth = depth.tobytes()
    off, on, points = [], [], 0
    for _ in range(rounds):
        off.append(window(rig, frame, depth))
        subscription = rig.subscribe_points()
        before = rig.points
        rig.first_points(frame, depth)
        on.append(window(rig, frame, depth))
        points += rig.points - before
        rig.probe.node.destroy_subscription(subscription)
    return {
        "without_points_ms": round(float(np.mean(off)), 2),
        "with_points_ms": round(float(np.mean(on)), 2),
        "added_ms": round(float(np.mean(on) - np.mean(off)), 2),
        "clouds_received": points,
    }


def main() -> int:
    args = parse_args()
    from bisenet_ros.ros.transport import apply_default_profile

    transport = apply_default_profile()
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    from bisenet_ros.bundled import BUNDLED_ONNX
    from bisenet_ros.inference.bench import machine
    from bisenet_ros.ros.demo import camvid_frames
    from bisenet_ros.ros.harness import NodeProcess, Probe

    output = [int(v) for v in args.output_size.split("x")] if args.output_size else [0, 0]
    params = {
        "model_path": str(BUNDLED_ONNX), "backend": "onnxruntime", "threads": args.threads,
        "max_input_age_ms": 0.0, "depth_topic": "depth",
        "output_width": output[0], "output_height": output[1],
    }  # fmt: skip
    node = NodeProcess(params, Path(tempfile.mkdtemp(prefix="points_bench_"))).start()
    source = camvid_frames(Path(args.camvid), 1)[0]
    rclpy.init()
    probe = Probe("points_bench")
    results = []
    try:
        rig = Rig(probe)
        probe.record("/diagnostics", DiagnosticArray)
        if not probe.spin_until(lambda: probe.node.count_publishers(f"{NODE}/points"), 300):
            raise SystemExit(f"segment_node did not start:\n{node.log()[-3000:]}")
        for size in args.sizes:
            width, height = map(int, size.split("x"))
            frame = cv2.resize(source, (width, height), interpolation=cv2.INTER_AREA)
            start = time.monotonic()
            row = {"camera": size, "points": args.output_size or size}
            row |= measure(rig, frame, args.rounds)
            results.append(row)
            print(f"{row} ({time.monotonic() - start:.0f} s)", flush=True)
    finally:
        probe.close()
        rclpy.try_shutdown()
        node.stop()
    report = {"command": "python benchmarks/points_overhead.py " + " ".join(sys.argv[1:]),
              "machine": machine(), "threads": args.threads, "transport": transport,
              "results": results}  # fmt: skip
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
