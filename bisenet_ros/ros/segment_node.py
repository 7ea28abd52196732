"""``segment_node``: a managed node that segments camera images with one shared model.

configure loads and warms up the model and creates the publishers, activate subscribes and
starts the worker, deactivate unsubscribes, cleanup releases the model. With ``autostart``
(the default) it configures and activates itself like a plain node. Frames go through the
``intake`` (checks, newest frame per camera, counting), one worker segments every waiting
frame in one batch and publishes the ``outputs``; ``diagnostics`` reports once a second.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
import time
import traceback
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from bisenet_ros.bundled import model_file
from bisenet_ros.image_decoding import ImageError
from bisenet_ros.inference import Segmentation, Segmenter
from bisenet_ros.inference.points import record_array
from bisenet_ros.inference.views import output_size, render

from . import diagnostics, label_info, outputs, process
from . import params as P
from .camera import Camera, Frame
from .camera_stats import Problem
from .compat import RCLError, SubscriptionEventCallbacks, parameter_overrides
from .depth import DepthBuffer, DepthError, depth_array, stamp_ns
from .image_cdr import parse_image
from .intake import Intake
from .package_files import package_file
from .qos import reliability_qos
from .reason_log import ReasonLog
from .transport import apply_default_profile, incompatible_qos_hint


def _logs_failures(callback):
    """rclpy turns an exception in a transition callback into ERROR without a word (its
    lifecycle code: "TODO: log sth here"); say what failed, with the traceback."""

    @functools.wraps(callback)
    def logged(node: SegmentNode, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            return callback(node, state)
        except Exception:
            node.get_logger().error(f"{callback.__name__} failed:\n{traceback.format_exc()}")
            raise

    return logged


class SegmentNode(LifecycleNode):
    """Semantic segmentation of one or more cameras, published as labels, views and areas."""

    def __init__(self, **kwargs) -> None:
        super().__init__("segment_node", **kwargs)
        for name, spec in P.SPECS.items():
            self.declare_parameter(name, spec.default, P.descriptor(name, spec))
        # rclpy ignores a set name the node does not declare without a word, so a typo in a
        # parameter file would silently keep the default.
        for name in sorted(n for n in parameter_overrides(self) if not self.has_parameter(n)):
            self.get_logger().warning(P.unknown_parameter(name))
        # the worker reads parameters every frame: a dict lookup, not get_parameter()
        self._params = {name: self.get_parameter(name).value for name in P.SPECS}
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._cameras: list[Camera] = []
        self._segmenter = None
        self._model_path = ""
        self._worker: threading.Thread | None = None
        self._reporter = diagnostics.Reporter(self)
        self._configured = False
        self._intake = Intake(self, self._value)
        self._points_log = ReasonLog(self.get_logger(), period_s=5.0)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # steady time: with use_sim_time and no /clock, a ROS-time timer would never fire
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(diagnostics.PERIOD_S, self._publish_diagnostics, clock=steady)

    # --- parameters ---------------------------------------------------------------------

    def _value(self, name: str):
        return self._params[name]

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Dynamic parameters always apply; the rest only while unconfigured.

        Accepted values are copied into ``_params`` here: our only on-set callback, and Humble
        has no post-set callback to do it afterwards.
        """
        manifest = self._segmenter.manifest if self._configured else None
        for param in parameters:
            refusal = P.refusal(param.name, param.value, manifest)
            if refusal:
                return SetParametersResult(successful=False, reason=refusal)
        for param in parameters:
            self._params[param.name] = param.value
        if self._configured and any(p.name == "confidence_threshold" for p in parameters):
            self._publish_label_info()  # the threshold is part of the class table
        return SetParametersResult(successful=True)

    # --- lifecycle ----------------------------------------------------------------------

    @_logs_failures
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the settings, load and warm up the model, create the cameras' publishers."""
        names = self._value("cameras")
        cameras = [self._camera(name, len(names) > 1) for name in names]
        leaves = [*outputs.TYPES, "points", "label_info"]
        topic_problems = (camera.topic_problem(leaves) for camera in cameras)
        problem = next(filter(None, (P.first_problem(self._params), *topic_problems)), None)
        if problem:
            self.get_logger().error(problem)
            return TransitionCallbackReturn.FAILURE
        try:
            self._load_model()
        except Exception as error:  # any loader failure must leave the node unconfigured
            self.get_logger().error(f"cannot load the model: {error}")
            return TransitionCallbackReturn.FAILURE
        manifest = self._segmenter.manifest
        problem = P.drivable_ids_problem(self._value("drivable_class_ids"), manifest)
        if problem:
            self.get_logger().error(problem)
            self._release()
            return TransitionCallbackReturn.FAILURE
        for camera in cameras:
            self._create_publishers(camera)
        self._cameras = cameras
        self._configured = True
        self._publish_label_info()
        return super().on_configure(state)

    @_logs_failures
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the cameras and start the worker."""
        for camera in self._cameras:
            self._subscribe(camera)
        self._intake.open()
        self._worker = threading.Thread(target=self._work, name="segment_worker", daemon=True)
        self._worker.start()
        return super().on_activate(state)

    @_logs_failures
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop the worker; the model stays loaded."""
        self._stop()
        return super().on_deactivate(state)

    @_logs_failures
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the publishers and the model."""
        self._release()
        return super().on_cleanup(state)

    @_logs_failures
    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop and release whatever is held, from any state."""
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def close(self) -> None:
        """Unsubscribe, stop the worker and release the model (idempotent)."""
        self._stop()
        self._release()

    def _load_model(self) -> None:
        path, which = model_file(self._value("model_path"))
        self._segmenter = Segmenter.from_file(
            path,
            backend=self._value("backend"),
            precision=self._value("precision"),
            resize_mode=self._value("resize_mode"),
            threads=self._value("threads") or None,
        )
        self._model_path = str(path)
        self._segmenter.warm_up(self._value("warmup_iterations"))
        self.get_logger().info(f"weights: {path} ({which}); {self._segmenter}")

    def _camera(self, namespace: str, grouped: bool) -> Camera:
        compressed = self._value("input_transport") == "compressed"
        topic = self._value("image_topic") + ("/compressed" if compressed else "")
        camera = Camera(namespace, topic, compressed, namespace.strip("/") if grouped else "")
        if self._value("depth_topic"):
            camera.depth = DepthBuffer(camera.input(self._value("depth_topic")))
        return camera

    def _create_publishers(self, camera: Camera) -> None:
        qos = reliability_qos(self._value("output_reliability"), 1)
        types = {**outputs.TYPES, **({"points": outputs.POINTS} if camera.depth else {})}
        for topic, msg_type in types.items():
            camera.publishers[topic] = self.create_lifecycle_publisher(
                msg_type, camera.output(topic), qos
            )
        if label_info.LabelInfo is None:
            self.get_logger().warning(label_info.MISSING, once=True)
        else:  # a plain publisher: the table is there from configure on, for late joiners
            camera.label_info = self.create_publisher(
                label_info.LabelInfo, camera.output("label_info"), label_info.QOS
            )

    def _publish_label_info(self) -> None:
        threshold = self._value("confidence_threshold")
        for camera in self._cameras:
            if camera.label_info is not None:
                header = Header(stamp=self.get_clock().now().to_msg())
                msg = label_info.label_info(self._segmenter.manifest, threshold, header)
                camera.label_info.publish(msg)

    def _subscribe(self, camera: Camera) -> None:
        qos = reliability_qos(self._value("input_reliability"), self._value("input_depth"))
        msg_type = CompressedImage if camera.compressed else Image
        events = SubscriptionEventCallbacks(
            incompatible_qos=lambda event: self._on_incompatible_qos(camera, event)
        )
        camera.subscriptions.append(
            self.create_subscription(
                msg_type,
                camera.input_topic,
                lambda msg: self._intake.receive(camera, msg),
                qos,
                event_callbacks=events,
                raw=not camera.compressed,  # raw images arrive as CDR bytes (see image_cdr)
            )
        )
        if self._value("subscribe_camera_info"):  # best effort accepts every publisher
            camera.subscriptions.append(
                self.create_subscription(
                    CameraInfo,
                    camera.info_topic,
                    lambda msg: self._on_info(camera, msg),
                    reliability_qos("best_effort", 1),
                )
            )
        if camera.depth is not None:  # sensor data, a few kept: pairing looks back a little
            camera.subscriptions.append(
                self.create_subscription(
                    Image,
                    camera.depth.topic,
                    lambda msg: self._on_depth(camera, msg),
                    reliability_qos(self._value("input_reliability"), 5),
                    raw=True,
                )
            )
        camera.stats.subscribed(time.monotonic())
        self.get_logger().info(f"subscribed to {self.resolve_topic_name(camera.input_topic)}")

    def _stop(self) -> None:
        for camera in self._cameras:
            for sub in camera.subscriptions:
                self.destroy_subscription(sub)
            camera.subscriptions.clear()
            if camera.depth is not None:
                camera.depth.clear()
        self._intake.close(self._cameras)
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    def _release(self) -> None:
        for camera in self._cameras:
            for pub in camera.publishers.values():
                self.destroy_lifecycle_publisher(pub)
            if camera.label_info is not None:
                self.destroy_publisher(camera.label_info)
        self._cameras = []
        self._segmenter = None
        self._configured = False

    # --- callbacks ----------------------------------------------------------------------

    def _on_info(self, camera: Camera, msg: CameraInfo) -> None:
        camera.camera_info = msg

    def _on_depth(self, camera: Camera, msg: bytes) -> None:
        try:
            camera.depth.add(parse_image(msg))
        except ImageError as error:  # bytes that are not an Image: no depth to pair
            self._skip_points(camera, Problem("depth_malformed", error.detail))

    def _on_incompatible_qos(self, camera: Camera, event) -> None:
        """A publisher whose QoS cannot reach us, typically best effort vs reliable."""
        topic = self.resolve_topic_name(camera.input_topic)
        reliability, policy = self._value("input_reliability"), event.last_policy_kind.name
        hint = incompatible_qos_hint(topic, reliability, policy)
        self.get_logger().warning(hint, throttle_duration_sec=30.0)

    # --- worker -------------------------------------------------------------------------

    def _work(self) -> None:
        """Take every waiting frame, segment them together, publish; never raise."""
        while (batch := self._intake.take(self._cameras)) is not None:
            try:
                frames = [f for f in map(self._intake.decode, batch) if f is not None]
                if frames:
                    self._segment_and_publish(frames)
            except Exception as error:  # a bug must not kill the worker; say so loudly
                self._intake.report_bug(error)

    def _segment_and_publish(self, frames: list[Frame]) -> None:
        """One segment() call for every camera's frame, whatever their channel orders."""
        wants_confidence = any(self._wants_confidence(f.camera) for f in frames)
        try:
            results = self._segmenter.segment(
                [f.image for f in frames], [f.order for f in frames], wants_confidence
            )
        except ValueError as error:
            if len(frames) > 1:  # find the culprit, keep the others
                for frame in frames:
                    self._segment_and_publish([frame])
                return
            camera = frames[0].camera
            self._intake.count(camera, Problem("segmenter", str(error)), rejected=True)
            return
        self._reporter.timings.add_batch(len(frames))
        for frame, result in zip(frames, results, strict=True):
            self._publish(frame, result)

    def _wants(self, camera: Camera, topic: str) -> bool:
        """An output is made only when enabled and somebody listens."""
        publisher = camera.publishers.get(topic)  # ~/points only with a depth_topic
        subscribed = publisher is not None and publisher.get_subscription_count() > 0
        return self._value(outputs.TOGGLE[topic]) and subscribed

    def _wants_confidence(self, camera: Camera) -> bool:
        """For ~/confidence, for the points' confidence field and for the threshold."""
        wanted = (
            self._wants(camera, "confidence")
            or self._wants(camera, "points")
            or self._value("confidence_threshold") > 0
        )
        if wanted and not self._segmenter.has_confidence:
            self.get_logger().warning(
                f"{self._model_path} has no confidence output: ~/confidence is not published, "
                "~/points has no confidence field and confidence_threshold is ignored; "
                "re-export the model with "
                "`bisenet export onnx --confidence` to get them",
                once=True,
            )
            return False
        return wanted

    # --- outputs ------------------------------------------------------------------------

    def _publish(self, frame: Frame, result: Segmentation) -> None:
        camera, header = frame.camera, frame.msg.header
        topics = {t for t in outputs.TOGGLE if self._wants(camera, t)}
        if camera.camera_info is None:
            if "points" in topics:
                self._skip_points(camera, NO_CAMERA_INFO)
            topics -= {"drivable_grid", "camera_info", "points"}
        depth = self._depth_for(frame) if "points" in topics else None
        if depth is None:
            topics.discard("points")
        manifest = self._segmenter.manifest
        settings = P.view_settings(self._params, manifest)
        wanted = outputs.views_for(topics)
        views = render(result, frame.image, frame.order, manifest.palette, settings, wanted)
        size = output_size(settings, result.ids.shape)
        ground = P.ground_grid(self._params)
        messages = outputs.camera_messages(
            topics, views, header, camera.camera_info, size, ground, self._value("grid_frame_id")
        )
        if depth is not None:
            camera.point_records = record_array(size[1], size[0], camera.point_records)
            messages["points"] = outputs.points_message(
                views, header, camera.camera_info, size, depth, self._value("depth_max_m"),
                camera.point_records,
            )  # fmt: skip
        for topic, msg in messages.items():
            camera.publishers[topic].publish(msg)
        self._account(frame, result, size, settings.drivable.class_ids, tuple(messages))

    def _depth_for(self, frame: Frame) -> tuple | None:
        """The depth (values, encoding) taken with ``frame``, or None after counting why
        there is none it can use."""
        camera = frame.camera
        try:
            image = camera.depth.match(stamp_ns(frame.msg), self._value("depth_max_offset_ms"))
            height, width = frame.image.shape[:2]
            return depth_array(image, (width, height))
        except DepthError as error:
            self._skip_points(camera, error.problem)
            return None

    def _skip_points(self, camera: Camera, problem: Problem) -> None:
        """Count and log a frame answered without ~/points (never a dropped frame)."""
        camera.stats.points_skipped(problem.reason)
        topic = self.resolve_topic_name(camera.output("points"))
        message = f"no {topic} for a frame ({problem.reason}): {problem.detail}"
        self._points_log.report((camera.name, problem.reason), message)

    def _account(
        self, frame: Frame, result: Segmentation, size, drivable_ids: list[int], views: tuple
    ) -> None:
        """Count the frame, keep its timing for diagnostics and publish ~/info."""
        now = time.monotonic()
        camera = frame.camera
        counts = camera.stats.answered(now, views)
        node_ms = (now - frame.received) * 1e3
        age = self._intake.age_ms(frame.msg)
        timing = {**result.timing, "total_latency_ms": node_ms if age is None else age}
        self._reporter.timings.add_frame(
            result.timing["inference_ms"], node_ms, sum(result.timing.values())
        )
        runtime = (self._segmenter.backend, self._segmenter.precision)
        info = outputs.segmentation_info(
            frame.msg.header, self._segmenter.manifest, Path(self._model_path).stem, runtime,
            drivable_ids, size, timing, counts,
        )  # fmt: skip
        camera.publishers["info"].publish(info)

    # --- diagnostics --------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        """The timer's callback: a failure is logged and the node goes on (rclpy would
        raise it out of spin and end the node)."""
        segmenter = self._segmenter
        model = {
            "backend": segmenter.backend if segmenter else "",
            "precision": segmenter.precision if segmenter else "",
            "model": self._model_path,
        }
        try:
            report = self._reporter.report(list(self._cameras), self._params, model)
        except Exception:  # a bug must not stop the node; say so loudly
            self.get_logger().error(
                f"diagnostics report failed; the node goes on:\n{traceback.format_exc()}",
                throttle_duration_sec=60.0,
            )
            return
        self._diagnostics.publish(report)


NO_CAMERA_INFO = Problem(
    "no_camera_info",
    "no camera_info has arrived, so depth cannot be back-projected: publish the colour "
    "camera's camera_info beside its images (and keep subscribe_camera_info: true)",
)


def _autostart(node: SegmentNode) -> bool:
    """Configure and activate, as a plain node would start; False if either fails."""
    success = TransitionCallbackReturn.SUCCESS
    return node.trigger_configure() == success and node.trigger_activate() == success


def _usage_error(error: Exception) -> int:
    """A mistake on the command line or in a parameter file: one line, not a traceback."""
    what = re.sub(r", at \S+:\d+", "", " ".join(str(error).split()))  # rcl's source lines
    defaults = package_file("config", "segment.yaml")
    print(f"segment_node: error: {what} (parameters and types: {defaults})", file=sys.stderr)
    return 2


def main(args: list[str] | None = None) -> int:
    """Entry point: ``segment_node --ros-args --params-file config/segment.yaml``."""
    transport_note = apply_default_profile()  # before rclpy creates the DDS participant
    try:
        rclpy.init(
            args=args if args is not None else sys.argv,
            signal_handler_options=SignalHandlerOptions.NO,  # see process.py
        )
    except RCLError as error:  # malformed --ros-args, unreadable parameter file
        return _usage_error(error)
    stop = process.stop_on_signals()
    try:
        node = SegmentNode()
    except (InvalidParameterTypeException, InvalidParameterValueException) as error:
        rclpy.try_shutdown()
        return _usage_error(error)
    node.get_logger().info(transport_note)
    if node.get_parameter("autostart").value and not _autostart(node):
        node.get_logger().fatal("autostart failed (see above); exiting")
        node.destroy_node()
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while not stop.is_set():
            executor.spin_once(timeout_sec=process.POLL_S)
    except ExternalShutdownException:
        pass
    finally:
        executor.shutdown()  # before the context, or Executor.__del__ prints a traceback
        node.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
