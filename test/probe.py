"""The tests' probe: the harness ``Probe`` plus waiting for a given frame's answer and the
node's lifecycle and parameter services."""

from __future__ import annotations

from collections.abc import Callable

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image

from bisenet_ros.ros.harness import Probe

TRANSITIONS = {
    "configure": Transition.TRANSITION_CONFIGURE,
    "activate": Transition.TRANSITION_ACTIVATE,
    "deactivate": Transition.TRANSITION_DEACTIVATE,
    "cleanup": Transition.TRANSITION_CLEANUP,
}


class TestProbe(Probe):
    """A Probe that also waits for answers and calls the node's services."""

    __test__ = False  # not a test class for pytest

    def wait_for_publishers(self, topic: str, count: int = 1, timeout: float = 20.0) -> bool:
        return self.spin_until(lambda: self.node.count_publishers(topic) >= count, timeout)

    def compressed_frame(self, jpeg: bytes, frame_id: str = "camera") -> CompressedImage:
        msg = CompressedImage(format="jpeg", data=jpeg)
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = frame_id
        return msg

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

    def publish_until_answered(
        self, camera, make_frame: Callable[[], Image], topic: str, *also: str
    ):
        """Publish fresh frames until ``topic`` answers one of them (best effort may lose a
        frame while discovery settles, and a busy node answers late), and every topic of
        ``also`` answers that same frame; the answer on ``topic``, or None after 30 frames,
        each waited for longer than the last (up to 5 s)."""
        stamps = []

        def answered(msg) -> bool:
            stamp = msg.header.stamp
            return stamp in stamps and all(self.find(t, stamp) is not None for t in also)

        def answer():
            return next(filter(answered, self.received.get(topic, [])), None)

        for attempt in range(30):
            msg = make_frame()
            camera.publish(msg)
            stamps.append(msg.header.stamp)
            if self.spin_until(lambda: answer() is not None, min(1.0 + 0.5 * attempt, 5.0)):
                return answer()
        return None

    def status(self, match: Callable[[object], bool] = lambda s: True, timeout: float = 30.0,
               name: str = "segment_node"):  # fmt: skip
        """The first /diagnostics status of a camera (its name contains ``name``) made from
        now on for which ``match(status)`` holds; None after ``timeout`` seconds."""
        from diagnostic_msgs.msg import DiagnosticArray

        if "/diagnostics" not in self.received:
            self.record("/diagnostics", DiagnosticArray)
        reports = self.received["/diagnostics"]
        reports.clear()

        def found():
            return next((s for a in reports for s in a.status if name in s.name and match(s)),
                        None)  # fmt: skip

        self.spin_until(lambda: found() is not None, timeout)
        return found()

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

    def get_parameters(self, node: str, names: list[str], timeout: float = 20.0) -> list:
        """The values of ``names`` on ``node``, as Python values."""
        request = GetParameters.Request(names=names)
        values = self._call(GetParameters, f"{node}/get_parameters", request, timeout).values
        return [Parameter.from_parameter_msg(ParameterMsg(name=n, value=v)).value
                for n, v in zip(names, values, strict=True)]  # fmt: skip

    def change_state(self, node: str, transition: str, timeout: float = 60.0) -> bool:
        request = ChangeState.Request()
        request.transition.id = TRANSITIONS[transition]
        return self._call(ChangeState, f"{node}/change_state", request, timeout).success

    def get_state(self, node: str, timeout: float = 20.0) -> str:
        return self._call(
            GetState, f"{node}/get_state", GetState.Request(), timeout
        ).current_state.label
