"""Drive a real ``segment_node`` process over DDS: the demo and the benchmarks.

``NodeProcess`` starts the node exactly as a user would (its entry point with a YAML
parameter file); ``Probe`` is an ordinary rclpy node that publishes camera frames and
records what the segmentation node publishes. The tests extend it (test/probe.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rclpy
import yaml
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image

from .diagnostics import OVERHEAD_KEY
from .image_conversion import array_to_image
from .qos import reliability_qos


class NodeProcess:
    """``segment_node`` in its own process, configured by a parameter file like a user's."""

    def __init__(
        self,
        params: dict,
        workdir: Path,
        namespace: str = "/",
        base_params_file: Path | None = None,
        ros_args: tuple[str, ...] = (),
        env: dict | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.params_file = self.workdir / "segment_node_params.yaml"
        self.params_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
        self.log_file = self.workdir / "segment_node.log"
        self.name = f"{namespace.rstrip('/')}/segment_node"
        self.command = [
            sys.executable,
            "-m",
            "bisenet_ros.ros.segment_node",
            "--ros-args",
            *(("--params-file", str(base_params_file)) if base_params_file else ()),
            "--params-file",
            str(self.params_file),
            "-r",
            f"__ns:={namespace}",
            *ros_args,
        ]
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self) -> NodeProcess:
        with open(self.log_file, "w") as log:
            # cwd: not the source tree, whose bisenet_ros lacks the generated messages
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGINT (a clean shutdown), then SIGKILL if it hangs; returns the exit code."""
        if self.process is None:
            return None
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""


class Probe:
    """A plain rclpy node that plays camera frames and records the segmentation outputs."""

    def __init__(self, name: str = "probe", context: Context | None = None) -> None:
        self.node = rclpy.create_node(name, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.received: dict[str, list] = {}
        self.arrival: dict[str, list[float]] = {}

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()

    # --- waiting ------------------------------------------------------------------------

    def spin_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Process callbacks until ``done()`` or ``timeout`` seconds; returns ``done()``."""
        end = time.monotonic() + timeout
        while not done() and time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.02)
        return done()

    def wait_for_subscribers(self, publisher, count: int = 1, timeout: float = 20.0) -> bool:
        return self.spin_until(lambda: publisher.get_subscription_count() >= count, timeout)

    # --- camera side --------------------------------------------------------------------

    def camera(self, topic: str, msg_type=Image, qos: QoSProfile = qos_profile_sensor_data):
        """A publisher like a camera driver's: best effort, depth 1 by default."""
        return self.node.create_publisher(msg_type, topic, qos)

    def frame(self, image: np.ndarray, encoding: str = "rgb8", frame_id: str = "camera") -> Image:
        msg = array_to_image(image, encoding, None)
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = frame_id
        return msg

    # --- recording outputs --------------------------------------------------------------

    def record(self, topic: str, msg_type=Image, reliability: str = "reliable"):
        """Keep every message on ``topic`` (and its arrival time) in ``received[topic]``."""
        self.received.setdefault(topic, [])
        self.arrival.setdefault(topic, [])

        def keep(msg) -> None:
            self.received[topic].append(msg)
            self.arrival[topic].append(time.monotonic())

        return self.node.create_subscription(
            msg_type, topic, keep, reliability_qos(reliability, 10)
        )

    def node_overhead_ms(self, timeout: float) -> float | None:
        """The node's own mean over its last 20 frames (received -> outputs published, minus
        segment()), from the next /diagnostics message; None if none comes in ``timeout`` s.

        Needs ``record("/diagnostics", DiagnosticArray)`` first."""
        received = self.received["/diagnostics"]
        count = len(received)
        if not self.spin_until(lambda: len(received) > count, timeout):
            return None
        for status in received[-1].status:
            for kv in status.values:
                if kv.key == OVERHEAD_KEY:
                    return float(kv.value)
        return None


def image_of(msg: Image) -> np.ndarray:
    """An output Image as a numpy array (copy-free view)."""
    channels = msg.step // msg.width
    data = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
    return data.reshape(msg.height, msg.width, channels) if channels > 1 else data
