"""TensorRT: what can be checked anywhere (engine keys, cache location, calibration batches,
the ONNX graph the builder consumes, backend choice) and, where TensorRT and a GPU exist,
real engine builds."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from conftest import CAMVID_PATH as CAMVID
from conftest import RUGD_PATH

from bisenet_ros.export.cache import cache_dir, exported_onnx
from bisenet_ros.export.tensorrt import (
    CalibrationBatches,
    EngineSpec,
    calibration_cache_path,
    engine_path,
)
from bisenet_ros.inference import Segmenter
from bisenet_ros.inference.backends import tensorrt_available
from bisenet_ros.manifest import Manifest
from bisenet_ros.preprocess import preprocess

RUGD_WEIGHTS = RUGD_PATH / "bisenetv2_rugd25_coincheung_fp16.pth"
HAS_TRT = tensorrt_available()
TRT_REASON = (
    "TensorRT is not installed here"
    if importlib.util.find_spec("tensorrt") is None
    else "TensorRT is installed but no CUDA GPU is visible"
)
# ONNX operators the TensorRT 10 ONNX parser supports that this network may use.
TRT_OPS = {
    "Add", "ArgMax", "AveragePool", "BatchNormalization", "Cast", "Concat", "Constant",
    "Conv", "Exp", "Gather", "GlobalAveragePool", "MaxPool", "Mul", "ReduceMax", "ReduceMean",
    "ReduceSum", "Reciprocal", "Relu", "Resize", "Round", "Shape", "Sigmoid", "Slice",
    "Softmax", "Sub", "Unsqueeze",
}  # fmt: skip

SPEC = EngineSpec(
    onnx_sha256="ab" * 32,
    tensorrt_version="10.3.0",
    gpu_name="NVIDIA H100 80GB HBM3",
    compute_capability="9.0",
    precision="fp16",
    input_shape=(3, 512, 1024),
    max_batch=4,
)


def test_engine_key_changes_with_every_dependency():
    assert SPEC.key() == replace(SPEC).key()  # stable for equal specs
    changed = {
        "onnx_sha256": "cd" * 32,
        "tensorrt_version": "10.4.0",
        "gpu_name": "Orin",
        "compute_capability": "8.7",
        "precision": "int8",
        "input_shape": (3, 1024, 2048),
        "max_batch": 1,
        "calibration": "x.calib",
    }
    keys = {replace(SPEC, **{field: value}).key() for field, value in changed.items()}
    assert len(keys) == len(changed) and SPEC.key() not in keys


def test_engine_cache_lives_in_the_home_cache_not_tmp(tmp_path, monkeypatch):
    monkeypatch.delenv("BISENET_ROS_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = engine_path(SPEC, "bisenetv2")
    assert path.parent == tmp_path / "home" / ".cache" / "bisenet_ros" / "tensorrt"
    assert path.name.startswith("bisenetv2-fp16-b4-") and path.suffix == ".engine"
    assert (
        engine_path(SPEC, "bisenetv2", cache=tmp_path / "c").parent == tmp_path / "c" / "tensorrt"
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "bisenet_ros"


def real_frames(count: int) -> list[Path]:
    if not CAMVID.is_dir():
        pytest.skip(f"real data not present: {CAMVID}")
    return sorted((CAMVID / "val" / "images").glob("*.jpg"))[:count]


def test_calibration_batches_are_inference_preprocessing():
    files = real_frames(7)
    manifest = Manifest.default("bisenetv2", 19)
    manifest.input_size = (96, 128)
    batches = CalibrationBatches(files, manifest, batch_size=3)
    produced = list(batches)
    assert len(batches) == len(produced) == 2  # the seventh frame does not fill a batch
    for i, batch in enumerate(produced):
        assert batch.shape == (3, 3, 96, 128) and batch.dtype == np.float32
        assert batch.flags["C_CONTIGUOUS"]
        images = [cv2.imread(str(f)) for f in files[3 * i : 3 * i + 3]]
        expected, _ = preprocess(images, manifest, "bgr", "stretch")
        assert np.array_equal(batch, expected)
    with pytest.raises(ValueError, match="calibration images"):
        CalibrationBatches(files[:2], manifest, batch_size=3)


def test_calibration_cache_key(tmp_path):
    files = real_frames(4)
    a = calibration_cache_path("ab" * 32, files, "entropy", cache=tmp_path)
    assert a == calibration_cache_path("ab" * 32, list(files), "entropy", cache=tmp_path)
    assert a != calibration_cache_path("ab" * 32, files, "minmax", cache=tmp_path)
    assert a != calibration_cache_path("ab" * 32, files[:3], "entropy", cache=tmp_path)
    assert a != calibration_cache_path("cd" * 32, files, "entropy", cache=tmp_path)


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> Path:
    """The ONNX graph the engine builder consumes, exported from the real RUGD weights."""
    if not RUGD_WEIGHTS.is_file():
        pytest.skip(f"real weights not present: {RUGD_WEIGHTS}")
    return exported_onnx(RUGD_WEIGHTS, (128, 192), tmp_path_factory.mktemp("cache"))


def test_graph_for_tensorrt(graph):
    model = onnx.load(str(graph))
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    (inp,) = model.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "input" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 128, 192]
    outputs = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    assert outputs == {"ids": onnx.TensorProto.UINT8, "confidence": onnx.TensorProto.UINT8}
    unsupported = {n.op_type for n in model.graph.node} - TRT_OPS
    assert not unsupported, f"operators the TensorRT ONNX parser lacks: {unsupported}"
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)  # no custom plugins


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is present: the backend loads instead")
def test_tensorrt_backend_explains_what_is_missing(graph, tmp_path):
    with pytest.raises(ImportError, match="TensorRT 10"):
        Segmenter.from_file(graph, backend="tensorrt")
    with pytest.raises(ImportError, match="TensorRT 10"):
        Segmenter.from_file(RUGD_WEIGHTS, backend="tensorrt", cache_dir=tmp_path)
    assert not list(tmp_path.rglob("*.onnx"))  # nothing exported for a backend that cannot run


@pytest.mark.skipif(not HAS_TRT, reason=TRT_REASON)
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_matches_onnxruntime(graph, tmp_path, precision):
    frames = [cv2.imread(str(f)) for f in real_frames(4)]
    reference = Segmenter.from_file(graph, backend="onnxruntime")
    engine = Segmenter.from_file(graph, backend="tensorrt", precision=precision, cache_dir=tmp_path)
    assert (engine.backend, engine.precision) == ("tensorrt", precision)
    a = reference.segment(frames, "bgr", confidence=True)
    b = engine.segment(frames, "bgr", confidence=True)
    agree = np.mean([(x.ids == y.ids).mean() for x, y in zip(a, b, strict=True)])
    assert agree > (0.9999 if precision == "fp32" else 0.995)
    (built,) = (tmp_path / "tensorrt").glob("*.engine")
    stamp = built.stat().st_mtime_ns
    again = Segmenter.from_file(built, backend="auto")  # the engine file itself, manifest beside
    assert again.manifest == engine.manifest and built.stat().st_mtime_ns == stamp
    assert np.array_equal(again.segment(frames[0], "bgr")[0].ids, b[0].ids)


@pytest.mark.skipif(not HAS_TRT, reason=TRT_REASON)
@pytest.mark.parametrize("method", ["entropy", "minmax"])
def test_int8_engine_writes_and_reuses_calibration_cache(graph, tmp_path, method):
    from bisenet_ros.export.tensorrt import build_engine

    calibration = CAMVID / "val" / "images"
    first = build_engine(graph, "int8", calibration, method, calibration_count=8, cache=tmp_path)
    (calib,) = (tmp_path / "tensorrt").glob(f"*-{method}-*.calib")
    assert calib.stat().st_size > 0
    first.unlink()
    stamp = calib.stat().st_mtime_ns
    second = build_engine(graph, "int8", calibration, method, calibration_count=8, cache=tmp_path)
    assert second == first and calib.stat().st_mtime_ns == stamp  # cache read, not rewritten
