"""TensorRT: what can be checked anywhere (engine keys, the cache and its lookup, every
exported graph against TensorRT's parser rules, backend choice) and, where TensorRT and a
GPU exist, real engine builds."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from dataclasses import asdict, replace
from importlib.machinery import ModuleSpec
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import CAMVID_PATH as CAMVID
from conftest import RUGD_PATH
from onnx import TensorProto, helper, numpy_helper

from bisenet_ros.bundled import BUNDLED_ONNX
from bisenet_ros.export.cache import cache_dir, exported_onnx, half_onnx, quantized_onnx
from bisenet_ros.export.fp16 import export_fp16
from bisenet_ros.export.graph import for_onnxruntime_int8
from bisenet_ros.export.tensorrt import EngineSpec, build_info_path, cached_engine, engine_path
from bisenet_ros.export.tensorrt_rules import problems
from bisenet_ros.inference import Segmenter, backends
from bisenet_ros.inference.backends import resolve_backend, tensorrt_available
from bisenet_ros.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
from bisenet_ros.onnx_metadata import read_onnx_manifest
from bisenet_ros.preprocess import preprocess

RUGD_WEIGHTS = RUGD_PATH / "bisenetv2_rugd25_coincheung_fp16.pth"
HAS_TRT = tensorrt_available()
TRT_REASON = (
    "TensorRT is not installed here"
    if importlib.util.find_spec("tensorrt") is None
    else "TensorRT is installed but no CUDA GPU is visible"
)

SPEC = EngineSpec(
    onnx_sha256="ab" * 32,
    tensorrt_version="10.3.0",
    gpu="NVIDIA H100 80GB HBM3, sm 9.0, 132 SMs, 81079 MiB",
    precision="fp16",
    input_shape=(3, 512, 1024),
    max_batch=4,
)


def test_engine_key_changes_with_every_dependency():
    assert SPEC.key() == replace(SPEC).key()  # stable for equal specs
    changed = {
        "onnx_sha256": "cd" * 32,
        "tensorrt_version": "10.4.0",
        "gpu": "Orin, sm 8.7, 16 SMs, 62841 MiB",  # AGX Orin 64 GB vs Orin NX: same name
        "precision": "int8",
        "input_shape": (3, 1024, 2048),
        "max_batch": 1,
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


def fake_engine(spec: EngineSpec, cache: Path, stem: str = "model") -> Path:
    """An engine file and its build record, as ``build_engine`` writes them."""
    engine = engine_path(spec, stem, cache)
    engine.parent.mkdir(parents=True, exist_ok=True)
    build_info_path(engine).write_text(json.dumps(asdict(spec)))
    engine.write_bytes(b"engine")
    return engine


def test_an_engine_built_for_larger_batches_is_found(tmp_path):
    """`bisenet export tensorrt --max-batch 8` ahead of time; the node asks for 4: no rebuild."""
    built = fake_engine(replace(SPEC, max_batch=8), tmp_path)
    assert cached_engine(SPEC, "model", tmp_path) == built
    assert cached_engine(replace(SPEC, max_batch=16), "model", tmp_path) is None
    assert (
        cached_engine(replace(SPEC, gpu="Orin, sm 8.7, 8 SMs, 15656 MiB"), "model", tmp_path)
        is None
    )
    assert cached_engine(replace(SPEC, input_shape=(3, 256, 512)), "model", tmp_path) is None
    exact = fake_engine(SPEC, tmp_path)
    assert cached_engine(SPEC, "model", tmp_path) == exact
    built.unlink()  # a build record without its engine (killed between them) is no engine
    assert cached_engine(replace(SPEC, max_batch=2), "model", tmp_path) == exact


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> Path:
    """The ONNX graph the engine builder consumes, exported from the real RUGD weights."""
    if not RUGD_WEIGHTS.is_file():
        pytest.skip(f"real weights not present: {RUGD_WEIGHTS}")
    pytest.importorskip("torch")  # to export them (the jazzy-py310 leg has none)
    return exported_onnx(RUGD_WEIGHTS, (128, 192), tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def graphs(graph, tmp_path_factory) -> dict[str, Path]:
    """Every graph the project exports for one network: fp32, fp16 and int8."""
    import torch

    from bisenet_ros.export.onnx import export_onnx
    from bisenet_ros.models import load_checkpoint

    folder = tmp_path_factory.mktemp("graphs")
    model, manifest = load_checkpoint(RUGD_WEIGHTS)
    with torch.no_grad():
        ids = export_onnx(model, manifest, folder / "ids.onnx", (128, 192))
        logits = export_onnx(model, manifest, folder / "logits.onnx", (128, 192), "logits")
    calibration = CAMVID / "val" / "images"
    return {
        "ids+confidence": graph,
        "ids": ids,
        "logits": logits,
        "fp16": half_onnx(graph, folder),
        "fp16 logits": export_fp16(logits, folder / "logits.fp16.onnx"),
        "int8": quantized_onnx(graph, calibration, folder),
    }


@pytest.mark.parametrize("kind", ["ids+confidence", "ids", "logits", "fp16", "fp16 logits", "int8"])
def test_every_exported_graph_follows_the_parser_rules(graphs, kind):
    model = onnx.load(str(graphs[kind]))
    onnx.checker.check_model(model, full_check=True)
    assert problems(model) == []
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)  # no custom plugins


def test_the_fp16_graph_computes_in_fp16_behind_float32_input_and_outputs(graphs):
    """Every convolution of the fp16 graph takes fp16 weights and gives fp16 results; the
    input and the logits output stay float32, and the logits match fp32's to fp16 precision
    (ONNX Runtime on the CPU)."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(graphs["fp16 logits"])))
    types = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    weights = {t.name: t.data_type for t in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs and all(weights[n.input[1]] == TensorProto.FLOAT16 for n in convs)
    assert all(types[n.output[0]] == TensorProto.FLOAT16 for n in convs)
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    batch = np.random.default_rng(0).standard_normal((2, 3, 128, 192), np.float32)
    fp32, fp16 = (
        ort.InferenceSession(str(graphs[k]), providers=["CPUExecutionProvider"]).run(
            None, {"input": batch}
        )[0]
        for k in ("logits", "fp16 logits")
    )
    assert fp16.dtype == np.float32 and fp16.shape == fp32.shape
    assert np.abs(fp16 - fp32).max() <= 0.02 * np.abs(fp32).max()
    assert (fp16.argmax(1) == fp32.argmax(1)).mean() > 0.99


def test_the_int8_graph_quantises_the_inputs_of_weighted_layers(graphs):
    """TensorRT's Q/DQ placement: ``Conv -> Relu -> Q -> DQ -> Conv``, never a Q/DQ pair
    between an op and its Relu; every int8 convolution takes a quantised input."""
    model = onnx.load(str(graphs["int8"]))
    producer = {out: node for node in model.graph.node for out in node.output}

    def before(node, index=0):
        return producer.get(node.input[index])

    relus = [n for n in model.graph.node if n.op_type == "Relu"]
    assert relus and [r.name for r in relus if before(r).op_type == "DequantizeLinear"] == []
    int8_convs = [
        n for n in model.graph.node
        if n.op_type == "Conv" and before(n, 1) and before(n, 1).op_type == "DequantizeLinear"
    ]  # fmt: skip
    assert len(int8_convs) >= 40
    assert all(before(c).op_type == "DequantizeLinear" for c in int8_convs)
    after_relu = [c for c in int8_convs if before(before(before(c))).op_type == "Relu"]
    assert len(after_relu) >= 20  # Relu -> Q -> DQ -> Conv


def test_the_int8_graph_runs_on_onnxruntime_in_integer_form(graphs, tmp_path, monkeypatch):
    """The one int8 graph: ONNX Runtime rewrites it in memory into the form its x86 kernels
    run fast (uint8 activations, int32 biases, Relus folded into the convolutions), no
    further from fp32 than the graph as written; that form is one TensorRT refuses, so
    ``auto`` keeps such a file on onnxruntime even where TensorRT is present (stand-in: our
    choice only)."""
    model = onnx.load(str(graphs["int8"]))
    rewritten = for_onnxruntime_int8(model)
    constants = {t.name: t for t in rewritten.graph.initializer}
    quantizers = [n for n in rewritten.graph.node if n.op_type == "QuantizeLinear"]
    zero_points = [constants[n.input[2]].data_type for n in quantizers]
    assert zero_points and set(zero_points) == {TensorProto.UINT8}
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(rewritten.SerializeToString(), options, providers=["CPUExecutionProvider"])
    optimized = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    assert "Relu" not in optimized and optimized.count("QLinearConv") >= 40

    files = sorted((CAMVID / "test" / "images").glob("*.jpg"))[:4]
    manifest = read_onnx_manifest(graphs["int8"])
    batch, _ = preprocess([cv2.imread(str(f)) for f in files], manifest, "bgr", "stretch")
    as_written, fp32 = (
        ort.InferenceSession(str(graphs[k]), providers=["CPUExecutionProvider"]).run(
            ["ids"], {"input": batch}
        )[0]
        for k in ("int8", "ids")
    )
    ids, _ = OnnxRuntimeBackend(graphs["int8"], "int8").run(batch, confidence=False)
    # the same values where int8 holds them: as close to fp32 as the graph as written
    assert (ids == fp32).mean() >= (as_written == fp32).mean() - 0.005

    onnx.save(rewritten, str(tmp_path / "integer.onnx"))
    refused = problems(rewritten)
    assert refused and all("zero point" in p or "int8" in p for p in refused)
    monkeypatch.setattr(backends, "tensorrt_problem", lambda: None)  # as if usable here:
    installed = types.ModuleType("tensorrt")
    installed.__version__, installed.__spec__ = "8.6.1", ModuleSpec("tensorrt", None)
    monkeypatch.setitem(sys.modules, "tensorrt", installed)
    assert resolve_backend("auto", "onnx", "int8", tmp_path / "integer.onnx") == "onnxruntime"
    assert resolve_backend("auto", "onnx", "int8", graphs["int8"]) == "tensorrt"
    assert resolve_backend("auto", "onnx", "fp32", graphs["ids"]) == "tensorrt"
    newer = onnx.load(str(graphs["ids"]))
    newer.opset_import[0].version = 18  # past 8.6's parser
    onnx.save(newer, str(tmp_path / "opset18.onnx"))
    assert resolve_backend("auto", "onnx", "fp32", tmp_path / "opset18.onnx") == "onnxruntime"


def tiny_graph(nodes, outputs, initializers=(), input_shape=("batch", 3, 8, 8)):
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, list(input_shape))
    graph = helper.make_graph(nodes, "g", [x], outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def out(name, kind, shape=("batch", 8, 8)):
    return helper.make_tensor_value_info(name, kind, list(shape))


def test_each_version_refuses_what_its_parser_does_not_take():
    """The opset ceiling of each release, and 8.6's Resize limit, on graphs made to break them."""
    from bisenet_ros.export.tensorrt_versions import tensorrt_version

    relu = helper.make_node("Relu", ["input"], ["y"], name="relu")
    graph = tiny_graph([relu], [out("y", TensorProto.FLOAT, ("batch", 3, 8, 8))])
    for version, ceiling in (("8.6.1", 17), ("10.3.0", 20), ("11.1.0", 25)):
        graph.opset_import[0].version = ceiling
        assert tensorrt_version(version).graph_problems(graph) == []
        graph.opset_import[0].version = ceiling + 1
        assert tensorrt_version(version).graph_problems(graph) == [
            f"opset {ceiling + 1}: TensorRT {version} parses graphs up to opset {ceiling}; "
            f"export with --opset {ceiling}"
        ]
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    resize = helper.make_node(
        "Resize", ["input", "", "scales"], ["y"], name="up", mode="nearest",
        coordinate_transformation_mode="tf_half_pixel_for_nn", nearest_mode="round_prefer_ceil",
    )  # fmt: skip
    graph = tiny_graph([resize], [out("y", TensorProto.FLOAT, ("batch", 3, 16, 16))], [scales])
    assert problems(graph) == []  # every version's rules allow it
    assert tensorrt_version("8.6.1").graph_problems(graph) == [
        "Resize up: TensorRT 8.6 implements tf_half_pixel_for_nn only with round_prefer_floor, "
        "not round_prefer_ceil"
    ]
    assert tensorrt_version("10.3.0").graph_problems(graph) == []


def test_each_parser_rule_is_enforced():
    """Graphs that break one rule each; the rules are TensorRT's documented parser limits."""
    argmax = helper.make_node("ArgMax", ["input"], ["a"], axis=1, keepdims=0)
    int64_ids = tiny_graph([argmax], [out("a", TensorProto.INT64)])
    assert problems(int64_ids) == ["output a: INT64"]
    direct = tiny_graph(
        [argmax, helper.make_node("Cast", ["a"], ["ids"], to=TensorProto.UINT8)],
        [out("ids", TensorProto.UINT8)],
    )
    assert problems(direct) == ["output ids: uint8 not made by a Cast from float"]
    last = tiny_graph(
        [helper.make_node("ArgMax", ["input"], ["a"], axis=1, keepdims=0, select_last_index=1),
         helper.make_node("Cast", ["a"], ["f"], to=TensorProto.FLOAT),
         helper.make_node("Cast", ["f"], ["ids"], to=TensorProto.UINT8)],
        [out("ids", TensorProto.UINT8)],
    )  # fmt: skip
    assert problems(last) == ["ArgMax a: select_last_index=1 is not supported"]
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "scale")
    uint8_zero = numpy_helper.from_array(np.array(128, np.uint8), "zero")
    qdq = tiny_graph(
        [helper.make_node("QuantizeLinear", ["input", "scale", "zero"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["y"])],
        [out("y", TensorProto.FLOAT, ("batch", 3, 8, 8))], [scale, uint8_zero],
    )  # fmt: skip
    assert all("UINT8 zero point" in p for p in problems(qdq)) and len(problems(qdq)) == 2
    weights = numpy_helper.from_array(np.arange(8, dtype=np.int8), "w")
    int8_zero = numpy_helper.from_array(np.array(0, np.int8), "zero")
    weight_into_add = tiny_graph(
        [helper.make_node("DequantizeLinear", ["w", "scale", "zero"], ["wf"], name="dq"),
         helper.make_node("Add", ["input", "wf"], ["y"], name="add")],
        [out("y", TensorProto.FLOAT, ("batch", 3, 8, 8))], [weights, scale, int8_zero],
    )  # fmt: skip
    assert problems(weight_into_add) == [
        "DequantizeLinear dq: int8 constant w feeds Add add, not a weighted layer"
    ]
    erf = tiny_graph(
        [helper.make_node("Erf", ["input"], ["y"])],
        [out("y", TensorProto.FLOAT, ("batch", 3, 8, 8))],
    )
    assert problems(erf) == ["Erf y: op Erf is not one checked against the parser"]
    dynamic = tiny_graph(
        [helper.make_node("Relu", ["input"], ["y"])],
        [out("y", TensorProto.FLOAT, ("batch", 3, "h", 8))],
        input_shape=("batch", 3, "h", 8),
    )
    assert problems(dynamic) == [
        "input input: only the batch may be dynamic, got [None, 3, None, 8]"
    ]


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is present: the backend loads instead")
def test_tensorrt_backend_explains_what_is_missing(tmp_path):
    with pytest.raises(ImportError, match="TensorRT 8.6, 10.x or 11.x"):
        Segmenter.from_file(BUNDLED_ONNX, backend="tensorrt")
    with pytest.raises(ImportError, match="TensorRT 8.6, 10.x or 11.x"):
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


def test_a_venv_that_hides_the_system_tensorrt_is_named(tmp_path, caplog, monkeypatch):
    """A Jetson's apt TensorRT lives in the system Python: a venv without
    --system-site-packages cannot import it, and auto says so instead of falling back quietly."""
    import logging
    import sys

    from bisenet_ros.inference.backends import tensorrt_outside_venv

    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests do not run in a virtual environment")
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is importable here")
    system = tmp_path / "dist-packages"
    (system / "tensorrt").mkdir(parents=True)
    assert tensorrt_outside_venv([system]) == system / "tensorrt"
    assert tensorrt_outside_venv([tmp_path / "elsewhere"]) is None
    monkeypatch.setattr(backends, "tensorrt_outside_venv", lambda: system / "tensorrt")
    with caplog.at_level(logging.WARNING):
        assert resolve_backend("auto", "checkpoint", "fp32") in ("torch", "onnxruntime")
    assert "--system-site-packages" in caplog.text and str(system / "tensorrt") in caplog.text


@pytest.mark.parametrize(
    "version, says",
    [
        ("8.5.2", "TensorRT 8.5.2 is not supported"),
        ("10.3.0", "10.3.0 is installed but cannot run"),
    ],
    ids=["unsupported_version", "no_cuda"],
)
def test_auto_says_why_an_installed_tensorrt_is_not_used(
    tmp_path, monkeypatch, caplog, version, says
):
    """A TensorRT of JetPack 5 (8.5), or one without a usable CUDA runtime and device: auto
    runs ONNX Runtime and says why in one line, instead of failing later or saying nothing."""
    import logging
    import sys

    from bisenet_ros.cuda_runtime import cuda_device_usable

    if cuda_device_usable():
        pytest.skip("a CUDA device is usable here: a stand-in TensorRT would be chosen")
    package = tmp_path / "tensorrt"
    package.mkdir()
    (package / "__init__.py").write_text(f"__version__ = {version!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    with caplog.at_level(logging.WARNING):
        assert resolve_backend("auto", "onnx", "fp32", BUNDLED_ONNX) == "onnxruntime"
    (line,) = [r.getMessage() for r in caplog.records if "not TensorRT" in r.getMessage()]
    assert says in line and "onnxruntime instead" in line
    if version == "8.5.2":
        assert "8.6, 10.x and 11.x" in line


# --- every TensorRT name the code reaches, on each release: strict stand-ins -----------------

RELEASES = ["release_8.6", "release_10.3", "release_10.16", "release_11.1"]


def standin(release: str, monkeypatch, cuda=None, input_shape=(3, 128, 192)):
    """``tensorrt`` as that release's strict stand-in, and a fake CUDA runtime."""
    import sys

    from tensorrt_standin import API, FakeCuda, StandIn

    from bisenet_ros.export import tensorrt as export_tensorrt
    from bisenet_ros.inference.backends import tensorrt_backend

    if not API.is_file():
        pytest.skip(f"TensorRT API reference not present: {API}")
    trt = StandIn(release, input_shape)
    cuda = cuda or FakeCuda()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(export_tensorrt, "CudaRuntime", lambda: cuda)
    monkeypatch.setattr(tensorrt_backend, "CudaRuntime", lambda: cuda)
    return trt, cuda


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
@pytest.mark.parametrize("release", RELEASES)
def test_build_and_run_reach_only_that_releases_api(graphs, release, precision, tmp_path,
                                                    monkeypatch):  # fmt: skip
    """build_engine and TensorRTBackend against each release's bindings: every member they
    touch exists there, every call has its arguments right, and batches larger than the
    engine's are run in chunks through pinned buffers."""
    import gc

    from bisenet_ros.export.tensorrt import build_engine
    from bisenet_ros.export.tensorrt_versions import tensorrt_version
    from bisenet_ros.inference.backends.tensorrt_backend import TensorRTBackend

    trt, cuda = standin(release, monkeypatch)
    graph_kind = tensorrt_version(trt.__version__).graph_precision(precision)
    graph = graphs[{"fp32": "ids+confidence", "fp16": "fp16", "int8": "int8"}[graph_kind]]
    engine = build_engine(graph, precision, max_batch=2, cache=tmp_path)
    assert "Builder.build_serialized_network" in trt.calls
    backend = TensorRTBackend(engine, precision, (128, 192))
    batch = np.zeros((3, 3, 128, 192), np.float32)
    ids, confidence = backend.run(batch, confidence=True)
    assert ids.shape == confidence.shape == (3, 128, 192) and (ids == 1).all()
    assert trt.calls.count("IExecutionContext.execute_async_v3") == 2  # 2 + 1
    del backend
    gc.collect()
    assert not (cuda.device or cuda.host or cuda.streams)  # everything given back


PLANTED = {  # calls a review planted in the code; each must fail on a release without it
    "STRICT_TYPES": lambda trt: trt.BuilderFlag.STRICT_TYPES,
    "EXPLICIT_PRECISION": lambda trt: trt.NetworkDefinitionCreationFlag.EXPLICIT_PRECISION,
    "get_tensor_profile_shapes": lambda trt: (
        trt.Runtime(trt.Logger(trt.Logger.WARNING))
        .deserialize_cuda_engine(b"x")
        .get_tensor_profile_shapes("input", 0)
    ),
    "execute_async_v4": lambda trt: (
        trt.Runtime(trt.Logger(trt.Logger.WARNING))
        .deserialize_cuda_engine(b"x")
        .create_execution_context()
        .execute_async_v4(1)
    ),
    "swapped set_memory_pool_limit": lambda trt: (
        trt.Builder(trt.Logger(trt.Logger.WARNING))
        .create_builder_config()
        .set_memory_pool_limit(1 << 30, trt.MemoryPoolType.WORKSPACE)
    ),
}


@pytest.mark.parametrize("planted", sorted(PLANTED))
def test_the_stand_ins_refuse_what_a_review_planted(planted, monkeypatch):
    refused = []
    for release in RELEASES:
        trt, _ = standin(release, monkeypatch)
        try:
            PLANTED[planted](trt)
        except (AttributeError, TypeError) as error:
            refused.append(release)
            assert "does not exist" in str(error) or "argument" in str(error)
    assert refused, f"{planted} passes on every release"
    if planted not in ("STRICT_TYPES", "EXPLICIT_PRECISION"):  # in 8.6, deprecated
        assert refused == RELEASES


def test_an_allocation_that_fails_half_way_gives_back_the_rest(tmp_path, monkeypatch):
    from tensorrt_standin import FakeCuda

    from bisenet_ros.cuda_runtime import CudaError
    from bisenet_ros.inference.backends.tensorrt_backend import TensorRTBackend

    _, cuda = standin("release_10.16", monkeypatch, cuda=FakeCuda(fail_after=2))
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"engine")
    with pytest.raises(CudaError, match="out of memory"):
        TensorRTBackend(engine, "fp16", (128, 192))
    import gc

    gc.collect()
    assert not (cuda.device or cuda.host or cuda.streams)


def test_an_engine_of_another_size_than_its_manifest_is_refused(tmp_path, monkeypatch):
    from bisenet_ros.inference.backends.tensorrt_backend import TensorRTBackend

    standin("release_11.1", monkeypatch)
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"engine")
    with pytest.raises(ValueError, match=r"\(3, 128, 192\).*manifest says \(3, 256, 512\)"):
        TensorRTBackend(engine, "fp16", (256, 512))
    backend = TensorRTBackend(engine, "fp16", (128, 192))
    with pytest.raises(ValueError, match="batches of 1..2 at its input size"):
        backend.run(np.zeros((1, 3, 64, 64), np.float32), confidence=False)


def test_a_graph_the_parser_refuses_is_one_error_with_its_reason(graphs, tmp_path, monkeypatch):
    from bisenet_ros.export.tensorrt import build_engine

    trt, _ = standin("release_8.6", monkeypatch)
    trt.engine.parses = False
    with pytest.raises(RuntimeError, match="cannot parse .*stand-in: unsupported operator"):
        build_engine(graphs["ids+confidence"], "fp32", cache=tmp_path)
    assert "OnnxParser.get_error" in trt.calls
