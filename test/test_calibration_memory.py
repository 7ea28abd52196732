"""int8 calibration fits a Jetson: at 512x1024 it peaks under 2 GiB on every onnxruntime.

The histogram calibrators keep each frame's activations (about 650 MB at 512x1024) until
they bin them; ``quantize_static`` before onnxruntime 1.19 gives them every frame at once
(the Jetson's 1.16 passed 8 GiB on 32 frames). The jazzy-py310 leg runs 1.16 without torch,
as a Jetson does, so the 512x1024 graph is the bundled one with a larger input.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from bisenet_ros.bundled import BUNDLED_ONNX

onnx = pytest.importorskip("onnx")

# peak resident memory of the command in argv, in KiB (Linux), printed last
PEAK_OF = """import resource, subprocess, sys
run = subprocess.run(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(run.returncode)
"""
LIMIT_GIB = 2.0


def bundled_at(height: int, width: int, path):
    """The bundled graph taking height x width frames (its resizes follow the input's shape),
    its manifest saying so."""
    from bisenet_ros.onnx_metadata import read_onnx_manifest, set_manifest_metadata

    model = onnx.load(str(BUNDLED_ONNX))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = height, width
    del model.graph.value_info[:]  # shapes of the old size
    manifest = read_onnx_manifest(BUNDLED_ONNX)
    set_manifest_metadata(model, dataclasses.replace(manifest, input_size=(height, width)))
    onnx.save(model, str(path))
    return path


def test_int8_calibration_at_512x1024_stays_under_2_gib(camvid_dir, tmp_path):
    from bisenet_ros.onnx_metadata import read_onnx_manifest

    graph = bundled_at(512, 1024, tmp_path / "bundled_512x1024.onnx")
    output = tmp_path / "int8.onnx"
    export = [sys.executable, "-m", "bisenet_ros.cli", "export", "int8", str(graph),
              "-o", str(output), "--calibration", str(camvid_dir / "train" / "images"),
              "--images", "8"]  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-c", PEAK_OF, *export],
        env={**os.environ, "BISENET_TEST_NO_TORCH": "1"}, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    peak_gib = int(run.stdout.split()[-1]) / 2**20
    assert peak_gib <= LIMIT_GIB, f"calibration peaked at {peak_gib:.2f} GiB"
    assert read_onnx_manifest(output).input_size == (512, 1024)
    quantized = onnx.load(str(output))
    assert sum(n.op_type == "QuantizeLinear" for n in quantized.graph.node) > 40
