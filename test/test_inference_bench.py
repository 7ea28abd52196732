"""``bisenet bench`` and ``bisenet export int8/fp16`` end to end at a tiny size on real frames."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from conftest import CAMVID_PATH as CAMVID
from conftest import RUGD_PATH

from bisenet_ros.cli import main
from bisenet_ros.inference import Segmenter
from bisenet_ros.inference.backends.cpu_int8 import cpuinfo_fields, int8_dot_product
from bisenet_ros.onnx_metadata import stored_precision

RUGD_WEIGHTS = RUGD_PATH / "bisenetv2_rugd25_coincheung_fp16.pth"


@pytest.fixture(scope="module")
def data() -> tuple[Path, Path]:
    for path in (CAMVID, RUGD_WEIGHTS):
        if not path.exists():
            pytest.skip(f"real data not present: {path}")
    pytest.importorskip("torch")  # a checkpoint, benched on torch and exported
    return RUGD_WEIGHTS, CAMVID / "test" / "images"


def test_bench_writes_table_and_json(data, tmp_path, capsys):
    weights, frames = data
    out = tmp_path / "bench.json"
    code = main([
        "bench", str(weights), "--frames", str(frames), "--backends", "torch", "onnxruntime",
        "--precisions", "fp32", "fp16", "--sizes", "64x96", "--batches", "1", "2",
        "--iterations", "3", "--warmup", "1", "--json", str(out), "--cache-dir", str(tmp_path),
    ])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "onnxruntime fp32" in printed and "vs torch" in printed
    report = json.loads(out.read_text())
    assert report["machine_before"]["cpus"] >= 1 and "load_average" in report["machine_after"]
    assert report["machine_before"]["int8_dot_product"] == int8_dot_product()
    family = cpuinfo_fields().get("cpu family")
    assert family is None or f"cpu family {family}" in report["machine_before"]["cpu_family_model"]
    results = report["results"]
    assert len(results) == 2 * 2 * 2  # backends x precisions x batches
    ran = [r for r in results if not r["skipped"]]
    skipped = [r for r in results if r["skipped"]]
    assert {(r["backend"], r["precision"], r["batch"]) for r in ran} >= {
        ("torch", "fp32", 1), ("onnxruntime", "fp32", 1), ("torch", "fp32", 2),
        ("onnxruntime", "fp16", 1),  # the fp16 graph
    }  # fmt: skip
    assert all("fp16" in r["skipped"] for r in skipped)  # no GPU here, or no fp16 provider
    for r in ran:
        assert r["size"] == [64, 96] and r["iterations"] == 3
        for stage in ("preprocess_ms", "inference_ms", "postprocess_ms", "total_ms"):
            lat = r["latency_ms"][stage]
            assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"]
        total = r["latency_ms"]["total_ms"]["mean"]
        assert r["throughput_fps"] == pytest.approx(r["batch"] * 1000 / total)
        assert r["latency_ms"]["inference_ms"]["p50"] <= r["latency_ms"]["total_ms"]["p99"]


def test_export_int8_command(data, tmp_path, monkeypatch):
    monkeypatch.setenv("BISENET_ROS_CACHE", str(tmp_path / "cache"))  # the exported fp32 graph
    weights, frames = data
    output = tmp_path / "model.int8.onnx"
    code = main([
        "export", "int8", str(weights), "--size", "64", "96", "--calibration", str(frames),
        "--images", "4", "-o", str(output),
    ])  # fmt: skip
    assert code == 0 and stored_precision(output) == "int8"
    seg = Segmenter.from_file(output, backend="onnxruntime", precision="int8")
    assert seg.manifest.input_size == (64, 96) and seg.precision == "int8"


def test_export_fp16_command(data, tmp_path, monkeypatch):
    monkeypatch.setenv("BISENET_ROS_CACHE", str(tmp_path / "cache"))
    weights, frames = data
    output = tmp_path / "model.fp16.onnx"
    code = main(["export", "fp16", str(weights), "--size", "64", "96", "-o", str(output)])
    assert code == 0 and stored_precision(output) == "fp16"
    seg = Segmenter.from_file(output, backend="onnxruntime", precision="fp16")
    assert seg.manifest.input_size == (64, 96) and seg.precision == "fp16"
    (image,) = sorted(frames.glob("*.jpg"))[:1]
    frame = cv2.imread(str(image))
    assert seg.segment(frame, "bgr")[0].ids.shape == frame.shape[:2]
