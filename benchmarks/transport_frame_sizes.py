"""Which raw frame sizes reach a subscriber through the shipped Fast DDS profile.

A publisher and a subscriber, two processes with the profile the node applies, exchange
best-effort rgb8 frames of growing size (REP 2003 sensor-data QoS, as camera drivers
publish); the subscriber counts what arrives. Frames that do not arrive never reach the node,
so it cannot count them: this is how to know the limit on a given machine.

    source env.bash
    python benchmarks/transport_frame_sizes.py --interval 0.033 --count 30 \
        --json benchmarks/results/transport_frame_sizes_30hz.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from bisenet_ros.ros.transport import apply_default_profile

SIZES = ["1920x1080", "3840x2160", "4096x2730", "4096x4096", "5792x5792", "8000x8000"]
TOPIC = "/transport_frame_sizes"


def subscribe(seconds: float) -> None:
    """The subscriber process: prints one JSON line {"WxH": count} when done."""
    node = rclpy.create_node("frame_size_subscriber")
    got: dict[str, int] = {}

    def keep(msg: Image) -> None:
        key = f"{msg.width}x{msg.height}"
        got[key] = got.get(key, 0) + 1

    node.create_subscription(Image, TOPIC, keep, qos_profile_sensor_data)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps(got), flush=True)


def publish(sizes: list[str], count: int, interval: float) -> None:
    node = rclpy.create_node("frame_size_publisher")
    pub = node.create_publisher(Image, TOPIC, qos_profile_sensor_data)
    while pub.get_subscription_count() == 0:
        rclpy.spin_once(node, timeout_sec=0.1)
    time.sleep(1.0)  # the subscriber's side of discovery
    for size in sizes:
        width, height = map(int, size.split("x"))
        msg = Image(width=width, height=height, encoding="rgb8", step=3 * width)
        msg.data = np.zeros(3 * width * height, np.uint8).tobytes()
        for _ in range(count):
            pub.publish(msg)
            time.sleep(interval)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=SIZES, help="WxH rgb8 frames")
    parser.add_argument("--count", type=int, default=5, help="frames of each size")
    parser.add_argument("--interval", type=float, default=0.3, help="seconds between frames")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--subscriber", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    note = apply_default_profile()  # before rclpy creates the DDS participant
    rclpy.init()
    if args.subscriber:
        subscribe(args.subscriber)
        return 0
    print(note)
    seconds = 10.0 + len(args.sizes) * args.count * (args.interval + 0.5)
    listener = subprocess.Popen(
        [sys.executable, __file__, "--subscriber", str(seconds)], stdout=subprocess.PIPE, text=True
    )
    publish(args.sizes, args.count, args.interval)
    got = json.loads(listener.communicate()[0].strip().splitlines()[-1])
    rows = []
    print(f"{'frame (rgb8)':>14} {'MiB':>8} {'arrived':>8}")
    for size in args.sizes:
        width, height = map(int, size.split("x"))
        mib = 3 * width * height / 2**20
        rows.append({"size": size, "mib": round(mib, 2), "sent": args.count,
                     "arrived": got.get(size, 0)})  # fmt: skip
        print(f"{size:>14} {mib:8.1f} {got.get(size, 0):>5}/{args.count}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"interval_s": args.interval, "profile": note, "frames": rows}, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
