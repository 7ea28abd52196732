"""What ``~/points`` adds to the node's work per frame: the depth image checked and read,
back-projected into an organized cloud with labels and confidence, serialized and published
to a subscriber in another process (as Nav2 would be).

It times the node's own functions (``depth.depth_array``, ``outputs.points_message``: the
build) and a real rclpy publisher with the shipped Fast DDS profile (the publish), on real
CamVid labels from the bundled model and a depth image of the same size. The subscriber takes
the serialized bytes, as a C++ consumer such as Nav2 does, so its Python conversion does not
compete for the cores.

    source env.bash
    python benchmarks/points_overhead.py --json benchmarks/results/points_overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from bisenet_ros.bundled import BUNDLED_ONNX
from bisenet_ros.inference import Segmenter
from bisenet_ros.ros.depth import depth_array
from bisenet_ros.ros.image_cdr import parse_image
from bisenet_ros.ros.outputs import points_message
from bisenet_ros.ros.transport import apply_default_profile

CAMVID = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "camvid"
TOPIC = "/points_overhead"


def listen(seconds: float) -> None:
    """The subscriber process: counts clouds, prints the count."""
    node = rclpy.create_node("points_listener")
    count = [0]
    node.create_subscription(
        PointCloud2, TOPIC, lambda _: count.__setitem__(0, count[0] + 1), 5, raw=True
    )
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(count[0], flush=True)


def inputs(width: int, height: int, frame: np.ndarray, segmenter: Segmenter):
    """Views (labels, confidence) of a real frame, a 16UC1 depth image as received, and
    camera_info, all at width x height."""
    rgb = cv2.resize(frame, (width, height))
    result = segmenter.segment(rgb, channel_order="rgb", confidence=True)[0]
    views = {"labels": result.ids, "confidence": result.confidence}
    depth = np.random.default_rng(0).integers(300, 15000, (height, width)).astype("<u2")
    msg = Image(width=width, height=height, encoding="16UC1", step=2 * width)
    msg.data = depth.tobytes()
    info = CameraInfo(width=width, height=height)
    info.k = [0.8 * width, 0.0, width / 2, 0.0, 0.8 * width, height / 2, 0.0, 0.0, 1.0]
    return views, serialize_message(msg), info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--json")
    parser.add_argument("--listen", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    note = apply_default_profile()
    rclpy.init()
    if args.listen:
        listen(args.listen)
        return 0
    listener = subprocess.Popen(
        [sys.executable, __file__, "--listen", str(15 + args.frames * len(args.sizes) * 0.1)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    node = rclpy.create_node("points_overhead")
    publisher = node.create_publisher(PointCloud2, TOPIC, 5)
    while publisher.get_subscription_count() == 0:
        rclpy.spin_once(node, timeout_sec=0.1)
    segmenter = Segmenter.from_file(BUNDLED_ONNX, backend="onnxruntime")
    frame_path = sorted((CAMVID / "test" / "images").glob("*.jpg"))[0]
    frame = cv2.cvtColor(cv2.imread(str(frame_path)), cv2.COLOR_BGR2RGB)
    rows = []
    for size in args.sizes:
        width, height = map(int, size.split("x"))
        views, depth_bytes, info = inputs(width, height, frame, segmenter)
        header = Header(stamp=Time(sec=1), frame_id="camera_optical_frame")
        times = []  # (build, publish) ms per frame
        for _ in range(args.frames):
            start = time.perf_counter()
            depth = depth_array(parse_image(depth_bytes), (width, height))
            cloud = points_message(views, header, info, (width, height), depth, 20.0)
            built = time.perf_counter()
            publisher.publish(cloud)
            times.append(((built - start) * 1e3, (time.perf_counter() - built) * 1e3))
            time.sleep(0.05)  # a camera's pace: the subscriber keeps up
        build, publish = np.array(times).T
        total = build + publish
        rows.append({"size": size, "ms_median": round(float(np.median(total)), 2),
                     "ms_p95": round(float(np.percentile(total, 95)), 2),
                     "build_ms_median": round(float(np.median(build)), 2),
                     "publish_ms_median": round(float(np.median(publish)), 2),
                     "cloud_mb": round(width * height * 16 / 1e6, 1)})  # fmt: skip
        row = rows[-1]
        print(f"{size:>10}: {row['ms_median']:.2f} ms median ({row['build_ms_median']:.2f} build "
              f"+ {row['publish_ms_median']:.2f} publish), {row['ms_p95']:.2f} ms p95 per frame "
              f"({row['cloud_mb']} MB cloud)")  # fmt: skip
    received = listener.communicate()[0].strip()  # it stops on its own
    machine = f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores"
    print(f"{note}\nsubscriber received {received or '?'} clouds; {machine}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "frames": args.frames,
                                               "results": rows}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
