"""`bisenet demo` end to end (short): CamVid frames -> segment_node -> video, bag, figures."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

pytest.importorskip("rclpy")


def demo(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bisenet_ros.cli", "demo", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_demo_writes_video_bag_and_measurements(
    ros_env, camvid_dir, model_file, model_backend, tmp_path
):
    out = tmp_path / "demo_output"
    run = demo(
        "--camvid", str(camvid_dir), "--model", str(model_file), "--backend", model_backend,
        "--frames", "45", "--output-dir", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "fps end to end" in run.stdout and str(model_file) in run.stdout

    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_sent"] == 45
    assert 0 < summary["frames_segmented"] <= 45
    assert summary["latency_ms_mean"] > 0 and summary["backend"] == model_backend
    accounted = summary["frames_segmented"] + summary["node_frames_dropped"]
    assert accounted + summary["frames_not_seen_by_node"] >= 44  # the last may be in flight

    video = cv2.VideoCapture(summary["video"])
    count = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = video.read()
    assert ok and frame.shape == (360, 960, 3) and count == summary["frames_segmented"]
    sample = cv2.imread(summary["sample_frame"])
    assert sample.shape == (360, 960, 3)

    from rosbags.rosbag2 import Reader

    with Reader(summary["bag"]) as bag:
        topics = {c.topic: c.msgcount for c in bag.connections}
    assert topics["/segmentation"] == summary["frames_segmented"]
    assert topics["/segment_node/info"] >= summary["frames_segmented"]


def test_demo_without_camvid_says_where_it_looked(ros_env, tmp_path):
    run = demo("--camvid", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert run.returncode != 0
    assert "no CamVid test frames" in run.stderr and "--camvid" in run.stderr
