"""Soak: segment_node fed a 30 Hz camera for N minutes; memory slope and latency drift.

    source .venv/bin/activate && source install/setup.bash   # (the Makefile's ROSENV)
    python benchmarks/node_soak.py --minutes 5 --json benchmarks/results/node_soak.json

The node (bundled model unless --model, its own process, the shipped Fast DDS profile) gets
real CamVid test frames (rgb8, 360x480, stamped at publish) at --rate Hz, far more than a
CPU segments: the newest-frame policy drops the rest, as it would with a real camera. Every
10 s the node's resident memory (/proc) and the latency of the frames answered in that
window (publish -> ~/info received) are sampled. Reported: the memory slope (least squares,
MB per minute, the first minute left out as warm-up) and the latency drift (median of the
last minute minus median of the first). With --huge-frame, one 8000x8000 rgb8 frame is sent
at the end and the memory measured again after a minute of ordinary frames.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from bisenet_ros.msg import SegmentationInfo
from rclpy.qos import QoSProfile

from bisenet_ros.bundled import BUNDLED_MODEL
from bisenet_ros.ros.harness import NodeProcess, Probe

REPO = Path(__file__).resolve().parents[1]
SAMPLE_S = 10.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=30.0, help="camera frames per second")
    parser.add_argument("--huge-frame", action="store_true", help="end with an 8000x8000 frame")
    parser.add_argument("--camvid", type=Path, default=REPO.parent / "shared/datasets/camvid")
    parser.add_argument("--json", type=Path)
    return parser.parse_args()


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def slope_per_minute(times: list[float], values: list[float]) -> float:
    if len(times) < 2:
        return float("nan")
    return float(np.polyfit(np.array(times) / 60.0, values, 1)[0])


class Camera:
    """Publishes frames at a fixed rate and measures publish -> ~/info latency."""

    def __init__(self, probe: Probe, frames: list[np.ndarray], rate: float) -> None:
        self.probe, self.frames, self.period = probe, frames, 1.0 / rate
        self.publisher = probe.camera("/image")
        self.sent: dict[tuple[int, int], float] = {}
        self.latencies: list[float] = []
        self.index = 0
        probe.node.create_subscription(
            SegmentationInfo, "/segment_node/info", self._answered, QoSProfile(depth=10)
        )

    def _answered(self, info: SegmentationInfo) -> None:
        sent = self.sent.pop((info.header.stamp.sec, info.header.stamp.nanosec), None)
        if sent is not None:
            self.latencies.append((time.monotonic() - sent) * 1e3)

    def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        next_frame = time.monotonic()
        while time.monotonic() < end:
            msg = self.probe.frame(self.frames[self.index % len(self.frames)])
            self.index += 1
            self.sent[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = time.monotonic()
            self.publisher.publish(msg)
            next_frame += self.period
            self.probe.spin_until(lambda due=next_frame: time.monotonic() >= due, self.period)
        if len(self.sent) > 1000:  # frames the node dropped: never answered
            self.sent = dict(list(self.sent.items())[-100:])


def main() -> int:
    args = parse_args()
    paths = sorted((args.camvid / "test" / "images").glob("*.jpg"))[:50]
    if not paths:
        sys.exit(f"error: no CamVid test frames under {args.camvid}")
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]
    params = {"model_path": str(args.model), "max_input_age_ms": 0.0}
    node = NodeProcess(params, Path(tempfile.mkdtemp(prefix="soak-"))).start()
    import rclpy

    rclpy.init()
    probe = Probe("soak_camera")
    samples = []
    try:
        camera = Camera(probe, frames, args.rate)
        if not probe.wait_for_subscribers(camera.publisher, timeout=120):
            sys.exit(f"error: segment_node did not subscribe; its log:\n{node.log()[-3000:]}")
        start = time.monotonic()
        while time.monotonic() - start < args.minutes * 60:
            camera.latencies.clear()
            camera.run(SAMPLE_S)
            sample = {
                "t_s": round(time.monotonic() - start, 1),
                "rss_mb": round(resident_mb(node.process.pid), 1),
                "answered": len(camera.latencies),
                "latency_ms_median": round(statistics.median(camera.latencies), 1)
                if camera.latencies
                else None,
            }
            samples.append(sample)
            print(json.dumps(sample), flush=True)
        huge = None
        if args.huge_frame:
            before = resident_mb(node.process.pid)
            big = probe.frame(cv2.resize(frames[0], (8000, 8000)))
            camera.publisher.publish(big)
            camera.run(60.0)
            huge = {"rss_before_mb": round(before, 1),
                    "rss_after_mb": round(resident_mb(node.process.pid), 1)}  # fmt: skip
            print(json.dumps({"huge_frame": huge}), flush=True)
    finally:
        probe.close()
        rclpy.try_shutdown()
        node.stop()
    steady = [s for s in samples if s["t_s"] > 60.0] or samples
    first = [s["latency_ms_median"] for s in samples if s["t_s"] <= 60 and s["latency_ms_median"]]
    last = [
        s["latency_ms_median"]
        for s in samples
        if s["t_s"] > samples[-1]["t_s"] - 60 and s["latency_ms_median"]
    ]
    report = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.machine()}, {platform.node()}",
        "minutes": args.minutes,
        "rate_hz": args.rate,
        "answered_per_s": round(sum(s["answered"] for s in samples) / samples[-1]["t_s"], 2),
        "rss_mb_first": samples[0]["rss_mb"],
        "rss_mb_last": samples[-1]["rss_mb"],
        "rss_slope_mb_per_min": round(
            slope_per_minute([s["t_s"] for s in steady], [s["rss_mb"] for s in steady]), 3
        ),
        "latency_ms_first_minute": statistics.median(first) if first else None,
        "latency_ms_last_minute": statistics.median(last) if last else None,
        "huge_frame": huge,
        "samples": samples,
    }
    print(
        f"memory {report['rss_mb_first']} -> {report['rss_mb_last']} MB, slope "
        f"{report['rss_slope_mb_per_min']} MB/min after the first minute; latency median "
        f"{report['latency_ms_first_minute']} ms (first minute) -> "
        f"{report['latency_ms_last_minute']} ms (last minute); "
        f"{report['answered_per_s']} frames/s answered of {args.rate} sent"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
