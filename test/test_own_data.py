"""docs/training.md#your-own-data, run as written: from a CVAT export and from LabelMe files
(CamVid frames written in those layouts) to a node that answers with the new classes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torch")  # training; the jazzy-py310 leg runs without PyTorch

from annotation_exports import THREE_CLASSES, camvid_pairs, write_cvat, write_labelme

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "training.md"
NODE = "/segment_node"


def walkthrough() -> str:
    """The shell block of the doc's 'Your own data' section that starts with check-dataset."""
    section = DOC.read_text().split("## Your own data", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return next(b for b in blocks if b.startswith("bisenet check-dataset"))


@pytest.fixture(scope="module", params=["cvat", "labelme"])
def trained(request, camvid_dir, tmp_path_factory) -> tuple[str, Path, str]:
    """(format, run folder, walkthrough output) after the doc's commands ran on an export of
    8 CamVid training frames in that format."""
    fmt, base = request.param, tmp_path_factory.mktemp(request.param)
    pairs = camvid_pairs(camvid_dir, "train", 8)
    if fmt == "cvat":
        export, split = write_cvat(base / "export", pairs, "default"), "default"
    else:
        export, split = base / "export", "train"
        write_labelme(export / split, pairs)
    classes = base / "classes.yaml"
    classes.write_text(yaml.safe_dump(THREE_CLASSES))
    env = {**os.environ, "FORMAT": fmt, "EXPORT": str(export), "SPLIT": split,
           "CLASSES": str(classes), "RUN": str(base / "run"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough()],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return fmt, base / "run", output


def test_the_walkthrough_checks_trains_evaluates_and_exports(trained):
    fmt, run, output = trained
    assert "8 pairs" in output and "no problems found" in output
    assert re.search(r"mIoU \d+\.\d+ .*\(8 images", output), output[-2000:]
    for name in ("drivable", "obstacle", "background"):
        assert re.search(rf"^\s+{name}\s+\d", output, re.M), f"no IoU line for {name}"
    from bisenet_ros.manifest import Manifest, sidecar_path

    manifest = Manifest.load(sidecar_path(run / "own.onnx"))
    assert manifest.class_names == ["drivable", "obstacle", "background"]
    assert manifest.drivable_ids == [0]


def test_the_node_answers_with_the_new_classes(trained, street_frames, tmp_path):
    pytest.importorskip("rclpy")
    from bisenet_ros.msg import SegmentationInfo
    from conftest import probe_node

    from bisenet_ros.ros.harness import NodeProcess

    _, run, _ = trained
    params = {"model_path": str(run / "own.onnx"), "backend": "onnxruntime", "threads": 1,
              "warmup_iterations": 1, "max_input_age_ms": 0.0}  # fmt: skip
    node = NodeProcess(params, tmp_path).start()
    try:
        with probe_node() as probe:
            probe.record(f"{NODE}/info", SegmentationInfo)
            camera = probe.camera("/image")
            assert probe.wait_for_subscribers(camera, timeout=60), node.log()[-3000:]
            info = probe.publish_until_answered(
                camera, lambda: probe.frame(street_frames[0]), f"{NODE}/info"
            )
            assert info is not None, node.log()[-3000:]
            assert list(info.class_names) == ["drivable", "obstacle", "background"]
            assert list(info.drivable_class_ids) == [0]
            label_info = _label_info(probe)
            if label_info is not None:
                assert [c.class_name for c in label_info.class_map] == list(info.class_names)
    finally:
        assert node.stop() == 0, node.log()[-3000:]


def _label_info(probe):
    """The node's ~/label_info as a late subscriber gets it; None where vision_msgs is not
    built (the node then runs without it, as test_node_points checks)."""
    try:
        from vision_msgs.msg import LabelInfo
    except ImportError:
        return None
    from bisenet_ros.ros.label_info import QOS

    received = []
    probe.node.create_subscription(LabelInfo, f"{NODE}/label_info", received.append, QOS)
    assert probe.spin_until(lambda: received, 30)
    return received[-1]
