"""``bisenet demo``: real CamVid frames through a real segment_node, measured end to end.

A camera is played from the CamVid test split at 30 Hz as ``/camera/image_raw`` (rgb8,
best effort, like a driver); ``segment_node`` runs in its own process on the bundled model
with the fastest backend present; this process records what the node publishes into a
rosbag2, writes an overlay video and a sample frame, and prints fps, latency and drops.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np

from ..bundled import model_file
from .node_launch import LABELS_TOPIC
from .package_files import package_file

NODE = "/segment_node"
OUTPUTS = {  # topic -> what is recorded into the bag
    LABELS_TOPIC: "sensor_msgs/msg/Image",
    f"{NODE}/drivable_mask": "sensor_msgs/msg/Image",
    f"{NODE}/info": "bisenet_ros/msg/SegmentationInfo",
}


def camvid_frames(camvid: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` CamVid test frames, RGB, in sequence order."""
    paths = sorted((camvid / "test" / "images").glob("*.jpg"))
    if not paths:
        raise SystemExit(
            f"bisenet demo: no CamVid test frames under {camvid / 'test' / 'images'}; "
            "pass --camvid DIR (the folder with test/images/*.jpg)"
        )
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths[:count]]


class BagRecorder:
    """rosbag2 (sqlite3) of the node's outputs, written with ``rosbags`` from raw CDR."""

    def __init__(self, path: Path) -> None:
        from rosbags.rosbag2 import Writer
        from rosbags.typesys import Stores, get_types_from_msg, get_typestore

        typestore = get_typestore(Stores.ROS2_KILTED)
        definition = package_file("msg", "SegmentationInfo.msg").read_text()
        typestore.register(get_types_from_msg(definition, OUTPUTS[f"{NODE}/info"]))
        if path.exists():
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
        self.writer = Writer(path, version=9)
        self.writer.open()
        self.connections = {
            topic: self.writer.add_connection(topic, msgtype, typestore=typestore)
            for topic, msgtype in OUTPUTS.items()
        }

    def write(self, topic: str, msg) -> None:
        from rclpy.serialization import serialize_message

        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.writer.write(self.connections[topic], stamp, serialize_message(msg))

    def close(self) -> None:
        self.writer.close()


def play(probe, frames: list[np.ndarray], rate: float, camera, stamps: dict) -> float:
    """Publish the frames at ``rate`` Hz, serving callbacks between them; returns seconds."""
    period = 1.0 / rate
    start = time.monotonic()
    for i, frame in enumerate(frames):
        msg = probe.frame(frame, "rgb8", frame_id="camera")
        stamps[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = (i, time.monotonic())
        camera.publish(msg)
        next_time = start + (i + 1) * period
        probe.spin_until(lambda t=next_time: time.monotonic() >= t, period * 2)
    return time.monotonic() - start


def run(args) -> int:
    """The demo; returns the exit code."""
    from .transport import apply_default_profile

    output_dir = Path(args.output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    camvid = Path(args.camvid).resolve()
    frames = camvid_frames(camvid, args.frames)
    weights, which = model_file(args.model)
    note = f"{weights} ({'--model' if args.model else which})"
    print(f"weights: {note}", flush=True)
    transport_note = apply_default_profile()  # this process and the node's (inherited)
    summary = _run_with_node(args, frames, weights, output_dir)
    summary |= {"weights": note, "transport": transport_note, "camvid": str(camvid)}
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    _print_summary(summary, output_dir)
    return 0 if summary["frames_segmented"] > 0 else 1


def _run_with_node(args, frames, weights: Path, output_dir: Path) -> dict:
    import rclpy
    from sensor_msgs.msg import Image

    from bisenet_ros.msg import SegmentationInfo

    from .harness import NodeProcess, Probe

    params = {"model_path": str(weights), "backend": args.backend}
    node = NodeProcess(
        params,
        output_dir / "node",
        base_params_file=package_file("config", "segment.yaml"),
        ros_args=(
            "-r", "image:=/camera/image_raw",
            "-r", "camera_info:=/camera/camera_info",
            "-r", f"~/labels:={LABELS_TOPIC}",
        ),
    ).start()  # fmt: skip
    rclpy.init()
    probe = Probe("demo_camera")
    try:
        camera = probe.camera("/camera/image_raw", Image)
        probe.record(LABELS_TOPIC)
        probe.record(f"{NODE}/overlay")
        probe.record(f"{NODE}/drivable_mask")
        probe.record(f"{NODE}/info", SegmentationInfo)
        print("starting segment_node (model load, ONNX export on first use, warm-up)...")
        ready = probe.spin_until(
            lambda: (
                not node.alive()
                or camera.get_subscription_count() > 0
                and probe.node.count_publishers(LABELS_TOPIC) > 0
            ),
            args.startup_timeout,
        )
        if not ready or not node.alive():
            raise SystemExit(f"segment_node did not come up; its log:\n{node.log()[-4000:]}")
        probe.spin_until(lambda: False, 1.0)  # let the node's outputs discover us
        stamps: dict = {}
        print(f"playing {len(frames)} CamVid frames at {args.rate:g} Hz ...", flush=True)
        duration = play(probe, frames, args.rate, camera, stamps)
        probe.spin_until(lambda: False, 2.0)  # the last frames in flight
        return _collect(probe, frames, stamps, duration, output_dir, args.rate) | {
            "node_log": str(node.log_file)
        }
    finally:
        probe.close()
        rclpy.try_shutdown()
        node.stop()


def _key(msg) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def _collect(probe, frames, stamps: dict, duration: float, output_dir: Path, rate) -> dict:
    """Match outputs to inputs by stamp; write bag, video, sample frame; measure."""
    from .harness import image_of

    arrivals = dict(zip(map(_key, probe.received[LABELS_TOPIC]),
                        probe.arrival[LABELS_TOPIC], strict=True))  # fmt: skip
    latencies = [1e3 * (arrivals[k] - stamps[k][1]) for k in arrivals if k in stamps]
    overlays = [m for m in probe.received[f"{NODE}/overlay"] if _key(m) in stamps]
    infos = probe.received[f"{NODE}/info"]
    bag = BagRecorder(output_dir / "outputs_bag")
    for topic in OUTPUTS:
        for msg in probe.received[topic]:
            bag.write(topic, msg)
    bag.close()
    video = output_dir / "overlay.mp4"
    fps = len(overlays) / duration if duration else 0.0
    writer = cv2.VideoWriter(
        str(video), cv2.VideoWriter_fourcc(*"mp4v"), max(round(fps), 1),
        (frames[0].shape[1] * 2, frames[0].shape[0]),
    )  # fmt: skip
    for msg in overlays:
        index = stamps[_key(msg)][0]
        pair = np.hstack([frames[index], image_of(msg)])
        writer.write(cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
    writer.release()
    sample = output_dir / "sample_frame.png"
    if overlays:
        msg = overlays[len(overlays) // 2]
        pair = np.hstack([frames[stamps[_key(msg)][0]], image_of(msg)])
        cv2.imwrite(str(sample), cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
    last = infos[-1] if infos else None
    stage = {k: float(np.mean([getattr(i, k) for i in infos])) if infos else 0.0
             for k in ("preprocess_ms", "inference_ms", "postprocess_ms")}  # fmt: skip
    return {
        "frames_sent": len(stamps),
        "rate_hz": rate,
        "play_seconds": round(duration, 2),
        "frames_segmented": len(latencies),
        "end_to_end_fps": round(len(latencies) / duration, 2) if duration else 0.0,
        "latency_ms_mean": round(float(np.mean(latencies)), 1) if latencies else None,
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
        "latency_ms_p95": round(float(np.percentile(latencies, 95)), 1) if latencies else None,
        "node_frames_dropped": int(last.frames_dropped) if last else 0,
        "node_frames_rejected": int(last.frames_rejected) if last else 0,
        "frames_not_seen_by_node": len(stamps)
        - (int(last.frames_processed) if last else 0)
        - (int(last.frames_dropped + last.frames_rejected) if last else 0),
        "backend": last.backend if last else "",
        "precision": last.precision if last else "",
        "model_input": f"{last.input_width}x{last.input_height}" if last else "",
        "node_stage_ms_mean": {k: round(v, 1) for k, v in stage.items()},
        "video": str(video),
        "sample_frame": str(sample),
        "bag": str(output_dir / "outputs_bag"),
    }


def _print_summary(s: dict, output_dir: Path) -> None:
    stage_ms = s["node_stage_ms_mean"].items()
    stages = ", ".join(f"{k.removesuffix('_ms')} {v} ms" for k, v in stage_ms)
    print(
        f"\n=== bisenet demo: {s['frames_sent']} CamVid test frames at {s['rate_hz']:g} Hz "
        f"({s['play_seconds']} s) ===\n"
        f"weights:    {s['weights']}\n"
        f"backend:    {s['backend']} {s['precision']}, model input {s['model_input']}\n"
        f"segmented:  {s['frames_segmented']} frames -> {s['end_to_end_fps']} fps end to end\n"
        f"latency:    camera publish -> labels received: mean {s['latency_ms_mean']} ms, "
        f"p50 {s['latency_ms_p50']} ms, p95 {s['latency_ms_p95']} ms\n"
        f"node:       {stages}\n"
        f"drops:      {s['node_frames_dropped']} superseded/too old in the node (newest-frame "
        f"policy: it segments the latest frame, never a queue), {s['node_frames_rejected']} "
        f"rejected, {s['frames_not_seen_by_node']} never reached the node's callback (best "
        "effort, depth 1: replaced in the DDS reader queue while the node was busy, or lost)\n"
        f"transport:  {s['transport']}\n"
        f"wrote:      {s['video']} (camera | overlay), {s['sample_frame']}, {s['bag']} "
        f"(rosbag2 of {LABELS_TOPIC}, drivable_mask, info), {output_dir / 'summary.json'}"
    )
