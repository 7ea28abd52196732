"""What the ROS node costs on top of the bare Segmenter, measured in one run.

    source .venv/bin/activate && source install/setup.bash   # (the Makefile's ROSENV)
    python benchmarks/node_throughput.py [--model M] [--backend B] [--sizes 1024x2048 512x1024]

For each camera resolution (a real CamVid frame resized to it, rgb8):
  bare      Segmenter.segment(frame) in a loop in this process: frames/s and ms per frame;
  node      segment_node in its own process, this process as camera and subscriber over
            Fast DDS (shipped profile): throughput with the camera 5 % faster than the bare
            rate (newest-frame policy), and latency frame by frame (publish -> labels
            received). Like a camera driver, the camera publishes serialized frames; the
            subscriber reads only the stamps of the labels it receives.
Bare and node windows alternate (--rounds) so that load from other processes hits both.
Reported: throughput ratio node/bare (goal >= 0.95); added latency end to end (round trip
minus bare, including DDS transport of the frame and the labels; on a shared CPU this also
carries the run-to-run noise of inference) and inside the node (its own received ->
published time minus its segment() call, from /diagnostics; goal <= 5 ms at 1024x2048).
Only ~/labels is subscribed (what a planner consumes), so views nobody watches are not
computed, exactly as in deployment.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from bisenet_ros.ros.image_cdr import parse_image, serialize_image
from bisenet_ros.ros.node_launch import LABELS_TOPIC
from bisenet_ros.ros.qos import reliability_qos

REPO = Path(__file__).resolve().parents[1]
# The camera publishes 5 % faster than the bare Segmenter's rate in the same round: the node
# must keep up with a camera the Segmenter alone could just follow, and every frame it does
# not take is a superseded one (received and dropped, costing the transport only).
CAMERA_RATE = 1.05


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="default: the bundled model")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="0: runtime default")
    parser.add_argument("--sizes", nargs="+", default=["1024x2048", "512x1024"], help="HxW")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved bare/node rounds")
    parser.add_argument("--seconds", type=float, default=6.0, help="throughput window per round")
    parser.add_argument("--camvid", default=str(REPO.parent / "shared" / "datasets" / "camvid"))
    parser.add_argument("--json", default="", help="also write the results here")
    return parser.parse_args()


def bare_window(segmenter, frame: np.ndarray, seconds: float) -> tuple[int, float]:
    """(frames, seconds) of back-to-back segment() calls for about ``seconds``."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        segmenter.segment(frame)
        count += 1
    return count, time.perf_counter() - start


class LabelArrivals:
    """When each /segmentation message arrived, by the stamp of the frame it answers.

    Subscribed raw: the stamp is read from the serialized bytes, so this process does not
    spend the CPU the node needs on converting every label image to a Python message.
    """

    def __init__(self, probe) -> None:
        self.times: dict[tuple[int, int], float] = {}
        probe.node.create_subscription(
            Image, LABELS_TOPIC, self._keep, reliability_qos("reliable", 10), raw=True
        )

    def _keep(self, data: bytes) -> None:
        self.times[_key(parse_image(data).header.stamp)] = time.monotonic()


def camera_frame(probe, frame: np.ndarray) -> tuple[bytes, tuple[int, int]]:
    """A serialized rgb8 frame stamped now, as a camera driver publishes it, and its key."""
    header = Header(stamp=probe.node.get_clock().now().to_msg(), frame_id="camera")
    return serialize_image(frame, "rgb8", header), _key(header.stamp)


def node_window(probe, camera, labels, frame, seconds: float, rate: float) -> tuple[int, float]:
    """(outputs, seconds) while the camera publishes a little faster than the Segmenter alone."""
    sent = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        data, key = camera_frame(probe, frame)
        sent.append(key)
        camera.publish(data)
        next_frame = start + len(sent) / rate
        probe.spin_until(lambda t=next_frame: time.monotonic() >= t, 1.0)
    probe.spin_until(lambda: False, 1.0)  # outputs still in flight
    arrivals = sorted(labels.times[k] for k in sent if k in labels.times)
    if len(arrivals) < 2:
        return 0, 1.0
    return len(arrivals) - 1, arrivals[-1] - arrivals[0]


def paired_latency(probe, camera, labels, segmenter, frame, count: int) -> tuple[list, list]:
    """Alternating one bare segment() and one node round trip: (bare ms, node ms) lists."""
    bare_ms, node_ms = [], []
    while len(node_ms) < count:
        start = time.perf_counter()
        segmenter.segment(frame)
        bare_ms.append(1e3 * (time.perf_counter() - start))
        data, key = camera_frame(probe, frame)
        start = time.monotonic()
        camera.publish(data)
        if probe.spin_until(lambda k=key: k in labels.times, 30.0):
            node_ms.append(1e3 * (labels.times[key] - start))
    return bare_ms, node_ms


def measure(probe, camera, labels, segmenter, frame, args) -> dict:
    """Interleaved rounds, so that load from other processes hits both sides alike."""
    bare_frames = bare_time = node_frames = node_time = 0.0
    bare_ms, node_ms, internal = [], [], []
    paired_latency(probe, camera, labels, segmenter, frame, 2)  # warm both paths
    for _ in range(args.rounds):
        count, seconds = bare_window(segmenter, frame, args.seconds)
        bare_frames, bare_time = bare_frames + count, bare_time + seconds
        rate = CAMERA_RATE * count / seconds
        count, seconds = node_window(probe, camera, labels, frame, args.seconds, rate)
        node_frames, node_time = node_frames + count, node_time + seconds
        b, n = paired_latency(probe, camera, labels, segmenter, frame, 20)
        bare_ms += b
        node_ms += n
        overhead = probe.node_overhead_ms(timeout=3.0)
        internal.append(float("nan") if overhead is None else overhead)
    bare_fps, node_fps = bare_frames / bare_time, node_frames / node_time
    bare_median, node_median = float(np.median(bare_ms)), float(np.median(node_ms))
    return {
        "bare_fps": round(bare_fps, 2),
        "node_fps": round(node_fps, 2),
        "throughput_ratio": round(node_fps / bare_fps, 3),
        "bare_ms": round(bare_median, 1),
        "node_ms": round(node_median, 1),
        "added_latency_ms": round(node_median - bare_median, 1),
        "added_in_node_ms": round(float(np.mean(internal)), 2),
    }


def _key(stamp) -> tuple[int, int]:
    return stamp.sec, stamp.nanosec


def main() -> int:
    args = parse_args()
    from bisenet_ros.ros.transport import apply_default_profile

    transport = apply_default_profile()
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    from bisenet_ros.bundled import model_file
    from bisenet_ros.inference import Segmenter
    from bisenet_ros.ros.demo import camvid_frames
    from bisenet_ros.ros.harness import NodeProcess, Probe

    workdir = Path(tempfile.mkdtemp(prefix="node_bench_"))
    weights, which = model_file(args.model)
    source = camvid_frames(Path(args.camvid), 1)[0]
    segmenter = Segmenter.from_file(weights, backend=args.backend, threads=args.threads or None)
    node = NodeProcess(
        {"model_path": str(weights), "backend": args.backend, "threads": args.threads,
         "max_input_age_ms": 0.0},
        workdir,
        ros_args=("-r", f"~/labels:={LABELS_TOPIC}"),
    ).start()  # fmt: skip
    rclpy.init()
    probe = Probe("bench_camera")
    results = []
    try:
        camera = probe.camera("/image", Image)
        labels = LabelArrivals(probe)
        probe.record("/diagnostics", DiagnosticArray)
        if not probe.spin_until(
            lambda: camera.get_subscription_count() and probe.node.count_publishers(LABELS_TOPIC),
            300,
        ):
            raise SystemExit(f"segment_node did not start:\n{node.log()[-3000:]}")
        for size in args.sizes:
            height, width = map(int, size.split("x"))
            frame = cv2.resize(source, (width, height), interpolation=cv2.INTER_LINEAR)
            results.append({"size": size} | measure(probe, camera, labels, segmenter, frame, args))
            print(results[-1], flush=True)
    finally:
        probe.close()
        rclpy.try_shutdown()
        node.stop()
    report(results, f"{weights} ({which})", segmenter, transport, args)
    return 0


def report(results: list[dict], weights: str, segmenter, transport: str, args) -> None:
    height, width = segmenter.manifest.input_size
    print(
        f"\ncommand: python benchmarks/node_throughput.py {' '.join(sys.argv[1:])}\n"
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"backend {segmenter.backend} {segmenter.precision}, network input {width}x{height}\n"
        f"weights: {weights}\ntransport: {transport}\n\n"
        "| camera frame | bare Segmenter | node end to end | ratio (goal >= 0.95) "
        "| bare ms/frame (median) | node round trip (median) | added end to end "
        "| added inside the node (goal <= 5 ms) |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for r in results:
        print(
            f"| {r['size']} rgb8 | {r['bare_fps']} fps | {r['node_fps']} fps "
            f"| {r['throughput_ratio']} | {r['bare_ms']} ms | {r['node_ms']} ms "
            f"| {r['added_latency_ms']} ms | {r['added_in_node_ms']} ms |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "weights": weights}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
