"""Drive a real ``segment_node`` process over DDS: the demo, the benchmark and the tests.

``NodeProcess`` starts the node exactly as a user would (its entry point with a YAML
parameter file); ``Probe`` is an ordinary rclpy node that publishes camera frames, records
what the segmentation node publishes and calls its lifecycle and parameter services.
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
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.srv import SetParameters
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from .image_conversion import array_to_image
from .params import reliability_qos

TRANSITIONS = {
    "configure": Transition.TRANSITION_CONFIGURE,
    "activate": Transition.TRANSITION_ACTIVATE,
    "deactivate": Transition.TRANSITION_DEACTIVATE,
    "cleanup": Transition.TRANSITION_CLEANUP,
}


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

    def wait_for_publishers(self, topic: str, count: int = 1, timeout: float = 20.0) -> bool:
        return self.spin_until(lambda: self.node.count_publishers(topic) >= count, timeout)

    # --- camera side --------------------------------------------------------------------

    def camera(self, topic: str, msg_type=Image, qos: QoSProfile = qos_profile_sensor_data):
        """A publisher like a camera driver's: best effort, depth 1 by default."""
        return self.node.create_publisher(msg_type, topic, qos)

    def frame(self, image: np.ndarray, encoding: str = "rgb8", frame_id: str = "camera") -> Image:
        msg = array_to_image(image, encoding, None)
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = frame_id
        return msg

    def compressed_frame(self, jpeg: bytes, frame_id: str = "camera") -> CompressedImage:
        msg = CompressedImage(format="jpeg", data=jpeg)
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

    def find(self, topic: str, stamp) -> object | None:
        """The message on ``topic`` whose header stamp equals ``stamp``."""
        for msg in self.received.get(topic, []):
            if msg.header.stamp == stamp:
                return msg
        return None

    def wait_for(self, topic: str, stamp, timeout: float = 20.0):
        """The output for the input stamped ``stamp``, waiting for it; None on timeout."""
        self.spin_until(lambda: self.find(topic, stamp) is not None, timeout)
        return self.find(topic, stamp)

    def publish_until_answered(self, camera, make_frame: Callable[[], Image], topic: str):
        """Publish fresh frames until ``topic`` answers one (best effort may lose a frame
        while discovery settles); the answer, or None after 20 tries of a second each."""
        for _ in range(20):
            msg = make_frame()
            camera.publish(msg)
            answer = self.wait_for(topic, msg.header.stamp, timeout=1.0)
            if answer is not None:
                return answer
        return None

    # --- services -----------------------------------------------------------------------

    def _call(self, srv_type, name: str, request, timeout: float):
        client = self.node.create_client(srv_type, name)
        try:
            if not self.spin_until(client.service_is_ready, timeout):
                raise TimeoutError(f"service {name} not available")
            future = client.call_async(request)
            if not self.spin_until(future.done, timeout):
                raise TimeoutError(f"service {name} did not answer")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def set_parameters(self, node: str, values: dict, timeout: float = 20.0) -> list:
        """SetParameters on ``node``: one SetParametersResult per value."""
        request = SetParameters.Request(
            parameters=[
                ParameterMsg(name=k, value=Parameter(k, value=v).get_parameter_value())
                for k, v in values.items()
            ]
        )
        return self._call(SetParameters, f"{node}/set_parameters", request, timeout).results

    def change_state(self, node: str, transition: str, timeout: float = 60.0) -> bool:
        request = ChangeState.Request()
        request.transition.id = TRANSITIONS[transition]
        return self._call(ChangeState, f"{node}/change_state", request, timeout).success

    def get_state(self, node: str, timeout: float = 20.0) -> str:
        return self._call(
            GetState, f"{node}/get_state", GetState.Request(), timeout
        ).current_state.label


def image_of(msg: Image) -> np.ndarray:
    """An output Image as a numpy array (copy-free view)."""
    channels = msg.step // msg.width
    data = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
    return data.reshape(msg.height, msg.width, channels) if channels > 1 else data
