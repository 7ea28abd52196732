"""A Jetson without PyTorch: the node and `bisenet infer` run the bundled ONNX graph with
neither torch nor the onnx package, its fp16 and int8 graphs are made (onnx needed, torch
not) and run; the TensorRT path needs neither.

Processes started with ``BISENET_TEST_NO_TORCH=1`` cannot import torch, and with
``BISENET_TEST_NO_ONNX=1`` not onnx (``guards/``); any import of them on these paths fails
the process, and with it the test.
"""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy")

from bisenet_ros.bundled import BUNDLED_MODEL, BUNDLED_ONNX  # noqa: E402

NO_TORCH = {**os.environ, "BISENET_TEST_NO_TORCH": "1"}
RUNTIME_ONLY = {**NO_TORCH, "BISENET_TEST_NO_ONNX": "1"}  # numpy, OpenCV, PyYAML, onnxruntime


def test_the_guard_really_hides_torch():
    run = subprocess.run(
        [sys.executable, "-c", "import importlib.util; print(importlib.util.find_spec('torch'))"],
        env=NO_TORCH, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.stdout.strip() == "None", run.stderr


def test_the_onnx_reader_without_onnx_sees_what_onnx_sees(tmp_path):
    """Manifest, operators and weight types read from the wire format equal onnx's reading;
    a truncated copy is refused, not misread."""
    onnx = pytest.importorskip("onnx")
    from bisenet_ros.onnx_metadata import GraphSummary

    model = onnx.load(str(BUNDLED_ONNX))
    assert GraphSummary.of_file(BUNDLED_ONNX) == GraphSummary.of_model(model)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(BUNDLED_ONNX.read_bytes()[:-1000])
    with pytest.raises(ValueError, match="cut.onnx is not a readable ONNX model"):
        GraphSummary.of_file(cut)


def test_bundled_onnx_is_the_bundled_checkpoint(camvid_dir):
    """The shipped .onnx holds the shipped .pt's weights and manifest: same ids on a frame."""
    pytest.importorskip("torch")  # to run the .pt (the jazzy-py310 leg has none)
    from bisenet_ros.inference import Segmenter

    frame = cv2.imread(str(sorted((camvid_dir / "test" / "images").glob("*.jpg"))[7]))
    onnx = Segmenter.from_file(BUNDLED_ONNX, backend="onnxruntime", threads=2)
    torch = Segmenter.from_file(BUNDLED_MODEL, backend="torch", threads=2)
    assert onnx.manifest == torch.manifest and onnx.has_confidence
    (a,) = onnx.segment(frame, channel_order="bgr")
    (b,) = torch.segment(frame, channel_order="bgr")
    assert (a.ids == b.ids).mean() > 0.999


def test_bisenet_infer_without_torch_or_onnx(camvid_dir, tmp_path):
    frame = sorted((camvid_dir / "test" / "images").glob("*.jpg"))[0]
    run = subprocess.run(
        [sys.executable, "-m", "bisenet_ros.cli", "infer", str(BUNDLED_ONNX), str(frame),
         "-o", str(tmp_path / "out"), "--backend", "auto"],
        env=RUNTIME_ONLY, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    written = sorted(p.name for p in (tmp_path / "out").rglob("*.png"))
    assert written, run.stdout
    labels = cv2.imread(str(next((tmp_path / "out").rglob("*.png"))), cv2.IMREAD_UNCHANGED)
    assert labels is not None and labels.shape[:2] == (360, 480)


AGREEMENT = """
import sys

import cv2

from bisenet_ros.inference import Segmenter

reference, frames = sys.argv[1], [cv2.imread(p) for p in sys.argv[4:]]
fp32 = [r.ids for r in Segmenter.from_file(reference, backend="onnxruntime").segment(frames, "bgr")]
for path, precision in ((sys.argv[2], "fp16"), (sys.argv[3], "int8")):
    segmenter = Segmenter.from_file(path, backend="onnxruntime", precision=precision)
    ids = [r.ids for r in segmenter.segment(frames, "bgr")]
    print(precision, sum((a == b).mean() for a, b in zip(fp32, ids)) / len(ids))
"""


def test_fp16_and_int8_graphs_of_an_onnx_without_torch(camvid_dir, tmp_path):
    """`bisenet export fp16` and `int8` of an exported .onnx, and ONNX Runtime running both
    (int8 through its in-memory integer rewrite), need no PyTorch; ids close to fp32's."""
    calibration = camvid_dir / "val" / "images"
    graphs = {precision: tmp_path / f"bundled.{precision}.onnx" for precision in ("fp16", "int8")}
    for precision, extra in (
        ("fp16", []),
        ("int8", ["--calibration", str(calibration), "--images", "4"]),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "bisenet_ros.cli", "export", precision, str(BUNDLED_ONNX),
             "-o", str(graphs[precision]), *extra],
            env=NO_TORCH, capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
    frames = [str(p) for p in sorted((camvid_dir / "test" / "images").glob("*.jpg"))[::50]]
    run = subprocess.run(
        [sys.executable, "-c", AGREEMENT, str(BUNDLED_ONNX), *map(str, graphs.values()), *frames],
        env=NO_TORCH, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    agreement = {line.split()[0]: float(line.split()[1]) for line in run.stdout.splitlines()}
    assert agreement["fp16"] > 0.99 and agreement["int8"] > 0.95, agreement


def test_node_without_torch_or_onnx_runs_the_bundled_onnx(ros_env, camvid_dir, tmp_path):
    """Default model_path, no torch, no onnx: the node picks the bundled ONNX and answers."""
    from conftest import probe_node

    from bisenet_ros.ros.harness import NodeProcess

    node = NodeProcess(
        {"warmup_iterations": 1, "max_input_age_ms": 0.0}, tmp_path, namespace="/no_torch",
        env={"BISENET_TEST_NO_TORCH": "1", "BISENET_TEST_NO_ONNX": "1"},
    ).start()  # fmt: skip
    frame = cv2.cvtColor(
        cv2.imread(str(sorted((camvid_dir / "test" / "images").glob("*.jpg"))[0])),
        cv2.COLOR_BGR2RGB,
    )
    try:
        with probe_node("no_torch_probe") as probe:
            probe.record("/no_torch/segment_node/labels")
            camera = probe.camera("/no_torch/image")
            assert probe.wait_for_subscribers(camera, timeout=60), node.log()[-3000:]
            labels = probe.publish_until_answered(
                camera, lambda: probe.frame(frame), "/no_torch/segment_node/labels"
            )
            assert labels is not None, node.log()[-3000:]
            ids = np.frombuffer(labels.data, np.uint8)
            assert ids.size == 360 * 480 and ids.max() < 11
    finally:
        code = node.stop()
    log = node.log()
    assert code == 0, log[-3000:]
    assert f"weights: {BUNDLED_ONNX} (the bundled default model)" in log


AS_STORED = """
import sys

import cv2
import numpy as np

from bisenet_ros.inference import Segmenter

segmenter = Segmenter.from_file(sys.argv[1], backend="onnxruntime", precision=sys.argv[2])
results = segmenter.segment([cv2.imread(p) for p in sys.argv[4:]], "bgr", confidence=True)
np.savez(sys.argv[3], ids=[r.ids for r in results], confidence=[r.confidence for r in results])
"""


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_without_onnx_the_graph_runs_as_stored_with_the_same_answers(
    precision, camvid_dir, tmp_path
):
    """Without the onnx package ONNX Runtime gets the file unrewritten (no pruning, no cheap
    softmax, no integer-kernel form): fp32 ids identical and confidence within one step of
    255 of the rewritten graphs', int8 ids close (one rounding differs), and the log says
    what is lost and how to get it back."""
    from bisenet_ros.inference import Segmenter

    graph = BUNDLED_ONNX
    if precision == "int8":
        graph = tmp_path / "int8.onnx"
        run = subprocess.run(
            [sys.executable, "-m", "bisenet_ros.cli", "export", "int8", str(BUNDLED_ONNX),
             "-o", str(graph), "--calibration", str(camvid_dir / "val" / "images"),
             "--images", "4"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stdout == f"wrote {graph}\n", "onnxruntime's own prints leaked to stdout"
    frames = [str(p) for p in sorted((camvid_dir / "test" / "images").glob("*.jpg"))[::80]]
    run = subprocess.run(
        [sys.executable, "-c", "import logging; logging.basicConfig(level=logging.INFO)\n"
         + AS_STORED, str(graph), precision, str(tmp_path / "stored.npz"), *frames],
        env=RUNTIME_ONLY, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "the onnx package is not installed" in run.stderr and "pip install onnx" in run.stderr
    stored = np.load(tmp_path / "stored.npz")
    rewritten = Segmenter.from_file(graph, backend="onnxruntime", precision=precision).segment(
        [cv2.imread(p) for p in frames], "bgr", confidence=True
    )
    ids = np.stack([r.ids for r in rewritten])
    confidence = np.stack([r.confidence for r in rewritten]).astype(int)
    if precision == "fp32":
        assert (stored["ids"] == ids).all()
        assert np.abs(stored["confidence"].astype(int) - confidence).max() <= 1
    else:
        assert (stored["ids"] == ids).mean() > 0.97


@pytest.mark.parametrize("command", ["infer", "export"])
def test_the_tensorrt_path_needs_neither_torch_nor_onnx(command, camvid_dir, tmp_path):
    """A machine that only runs TensorRT engines has neither PyTorch nor ``onnx``: without
    TensorRT (or a GPU), `bisenet infer` on an engine and `bisenet export tensorrt` name that
    in one line, before any work, and nothing on the way imports torch or onnx."""
    from bisenet_ros.manifest import sidecar_path

    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    sidecar_path(engine).write_text(sidecar_path(BUNDLED_ONNX).read_text())
    frame = sorted((camvid_dir / "test" / "images").glob("*.jpg"))[0]
    argv = {
        "infer": ["infer", str(engine), str(frame), "-o", str(tmp_path / "out")],
        "export": ["export", "tensorrt", str(BUNDLED_ONNX), "--cache-dir", str(tmp_path)],
    }[command]
    run = subprocess.run(
        [sys.executable, "-m", "bisenet_ros.cli", *argv],
        env={**NO_TORCH, "BISENET_TEST_NO_ONNX": "1"},
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    if run.returncode == 0:
        pytest.fail(f"bisenet {command} ran without TensorRT")
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bisenet {command}: error: "), run.stderr
    assert "torch" not in lines[0].lower() and "onnx" not in lines[0].lower()
    assert "TensorRT 8.6, 10.x or 11.x" in lines[0] or "need a CUDA GPU" in lines[0]
    assert not list(tmp_path.rglob("*.onnx"))  # nothing exported or quantised first
