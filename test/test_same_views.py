"""The node and `bisenet infer` make the same views of the same frame, byte for byte:
both go through inference.views with the same settings."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy")


def test_node_and_infer_views_are_identical(
    ros_env, model_file, model_backend, street_frames, tmp_path
):
    from conftest import probe_node

    from bisenet_ros.ros.harness import NodeProcess, image_of
    from bisenet_ros.ros.outputs import IMAGE_TOPICS as TOPIC_FILES  # topic -> view (file)

    rgb = street_frames[1]
    cv2.imwrite(str(tmp_path / "frame.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    infer = [sys.executable, "-m", "bisenet_ros.cli", "infer", str(model_file), "frame.png",
             "-o", "out", "--backend", model_backend, "--threads", "1",
             "--save", *TOPIC_FILES.values()]  # fmt: skip
    run = subprocess.run(infer, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]

    params = {"model_path": str(model_file), "backend": model_backend, "threads": 1,
              "warmup_iterations": 1, "max_input_age_ms": 0.0}  # fmt: skip
    node = NodeProcess(params, tmp_path / "node").start()
    try:
        with probe_node() as probe:
            for topic in TOPIC_FILES:
                probe.record(f"/segment_node/{topic}")
            camera = probe.camera("/image")
            assert probe.wait_for_subscribers(camera, timeout=60), node.log()[-3000:]
            for topic in TOPIC_FILES:  # every view has its subscriber before the frame
                assert probe.wait_for_publishers(f"/segment_node/{topic}"), topic
            sent = probe.publish_until_answered(
                camera, lambda: probe.frame(rgb), "/segment_node/drivable_mask"
            )
            assert sent is not None, node.log()[-3000:]
            for topic, name in TOPIC_FILES.items():
                published = image_of(probe.wait_for(f"/segment_node/{topic}", sent.header.stamp))
                written = cv2.imread(str(tmp_path / "out" / f"frame_{name}.png"), -1)
                if written.ndim == 3:
                    written = cv2.cvtColor(written, cv2.COLOR_BGR2RGB)
                assert published.shape == written.shape, topic
                assert np.array_equal(published, written), f"{topic}: views differ"
    finally:
        assert node.stop() == 0, node.log()[-3000:]
