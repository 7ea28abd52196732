"""Backends agree on real frames; backend selection; the int8 CPU path; CUDA paths skip here."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the jazzy-py310 leg runs without PyTorch

from bisenet_ros.image_files import spread
from bisenet_ros.inference import Segmenter
from bisenet_ros.inference.backends import model_kind, resolve_backend, tensorrt_available
from bisenet_ros.onnx_metadata import stored_precision

NET_SIZE = (360, 480)  # CamVid's own frame size


@pytest.fixture(scope="module")
def checkpoint(rugd_checkpoint) -> Path:
    return rugd_checkpoint(NET_SIZE)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def frames(camvid_dir) -> list[np.ndarray]:
    files = sorted((camvid_dir / "test" / "images").glob("*.jpg"))[::20]
    return [cv2.imread(str(f)) for f in files]


def test_onnxruntime_matches_torch_on_real_frames(checkpoint, cache, frames):
    torch_seg = Segmenter.from_file(checkpoint, backend="torch")
    ort_seg = Segmenter.from_file(checkpoint, backend="onnxruntime", cache_dir=cache)
    assert (torch_seg.backend, ort_seg.backend) == ("torch", "onnxruntime")
    a = torch_seg.segment(frames, channel_order="bgr", confidence=True)
    b = ort_seg.segment(frames, channel_order="bgr", confidence=True)
    same = sum(int((x.ids == y.ids).sum()) for x, y in zip(a, b, strict=True))
    total = sum(x.ids.size for x in a)
    assert same / total >= 0.9999, f"{total - same} of {total} pixels differ"
    conf_gap = max(
        int(np.abs(x.confidence.astype(int) - y.confidence).max())
        for x, y in zip(a, b, strict=True)
    )
    assert conf_gap <= 2
    # the ids-only (pruned) graph answers the same ids as the graph with confidence
    for image, with_conf in zip(frames, b, strict=True):
        assert np.array_equal(ort_seg.segment(image, "bgr")[0].ids, with_conf.ids)


def test_onnx_file_carries_its_manifest(checkpoint, cache, frames):
    """The cached export is a plain ONNX file another process can load directly."""
    from_checkpoint = Segmenter.from_file(checkpoint, backend="onnxruntime", cache_dir=cache)
    (onnx_file,) = (cache / "onnx").glob("*.onnx")
    from_onnx = Segmenter.from_file(onnx_file)  # auto: no GPU here -> onnxruntime
    assert from_onnx.manifest == from_checkpoint.manifest
    assert np.array_equal(
        from_onnx.segment(frames[0], "bgr")[0].ids, from_checkpoint.segment(frames[0], "bgr")[0].ids
    )


def test_int8_path_is_quantized_and_close_to_fp32(checkpoint, cache, frames, camvid_dir):
    calibration = camvid_dir / "val" / "images"
    fp32 = Segmenter.from_file(checkpoint, backend="onnxruntime", cache_dir=cache)
    int8 = Segmenter.from_file(
        checkpoint, backend="onnxruntime", precision="int8",
        calibration_images=calibration, cache_dir=cache,
    )  # fmt: skip
    assert int8.precision == "int8"
    (quantized,) = (cache / "int8").glob("*.onnx")
    assert stored_precision(quantized) == "int8"
    assert stored_precision(next((cache / "onnx").glob("*.onnx"))) == "fp32"
    agree = np.mean([
        (x.ids == y.ids).mean()
        for x, y in zip(fp32.segment(frames, "bgr"), int8.segment(frames, "bgr"), strict=True)
    ])  # fmt: skip
    assert agree > 0.9, f"int8 agrees with fp32 on only {agree:.1%} of pixels"
    # asking for fp32 from a quantised graph is an error, not a silent int8 run
    with pytest.raises(ValueError, match="int8"):
        Segmenter.from_file(quantized, backend="onnxruntime", precision="fp32")


def test_fp16_graph_runs_on_onnxruntime_close_to_fp32(checkpoint, cache, frames):
    """precision fp16 runs the fp16 graph (fp16 weights and arithmetic, float32 input)."""
    fp32 = Segmenter.from_file(checkpoint, backend="onnxruntime", cache_dir=cache)
    fp16 = Segmenter.from_file(checkpoint, backend="onnxruntime", precision="fp16", cache_dir=cache)
    assert fp16.precision == "fp16"
    (half,) = (cache / "fp16").glob("*.onnx")
    assert stored_precision(half) == "fp16"
    results = [s.segment(frames, "bgr", confidence=True) for s in (fp32, fp16)]
    pairs = list(zip(*results, strict=True))
    agree = np.mean([(x.ids == y.ids).mean() for x, y in pairs])
    assert agree > 0.99, f"fp16 agrees with fp32 on only {agree:.2%} of pixels"
    gap = max(int(np.abs(x.confidence.astype(int) - y.confidence).max()) for x, y in pairs)
    assert gap <= 8
    with pytest.raises(ValueError, match="fp16 graph"):
        Segmenter.from_file(half, backend="onnxruntime", precision="fp32")


def test_int8_without_calibration_images_is_explained(checkpoint, cache):
    with pytest.raises(ValueError, match="calibration_images"):
        Segmenter.from_file(checkpoint, backend="onnxruntime", precision="int8", cache_dir=cache)


def test_calibration_files_spread_over_folder(camvid_dir):
    folder = camvid_dir / "train" / "images"
    files = spread(folder, 10)
    everything = sorted(folder.glob("*.jpg"))
    assert len(files) == 10 and files[0] == everything[0]
    assert files[-1] in everything[len(everything) // 2 :]


def test_unsupported_precisions_rejected(checkpoint, cache):
    if torch.cuda.is_available():
        pytest.skip("fp16 is supported on this machine's GPU")
    with pytest.raises(ValueError, match="fp16"):
        Segmenter.from_file(checkpoint, backend="torch", precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        Segmenter.from_file(checkpoint, backend="torch", precision="bf16")
    with pytest.raises(ValueError, match="cuda_graphs"):
        Segmenter.from_file(checkpoint, backend="torch", cuda_graphs=True)


@pytest.mark.parametrize(
    "name, kind, precision, expected",
    [
        ("torch", "checkpoint", "fp32", "torch"),
        ("onnxruntime", "checkpoint", "fp32", "onnxruntime"),
        ("onnxruntime", "onnx", "int8", "onnxruntime"),
        ("auto", "engine", "fp16", "tensorrt"),
    ],
)
def test_explicit_backend_choice(name, kind, precision, expected):
    assert resolve_backend(name, kind, precision) == expected


def test_auto_backend_on_this_machine():
    if tensorrt_available():
        expected = "tensorrt"
    elif torch.cuda.is_available():
        expected = "torch"
    else:
        expected = "onnxruntime"
    assert resolve_backend("auto", "checkpoint", "fp32") == expected
    # int8 never lands on torch; an ONNX file never lands on torch
    assert resolve_backend("auto", "checkpoint", "int8") in ("tensorrt", "onnxruntime")
    assert resolve_backend("auto", "onnx", "fp32") in ("tensorrt", "onnxruntime")


@pytest.mark.parametrize(
    "name, kind, message",
    [
        ("torch", "onnx", "needs a checkpoint"),
        ("onnxruntime", "engine", "only on the tensorrt backend"),
        ("tflite", "onnx", "backend must be one of"),
    ],
)
def test_impossible_backend_choice(name, kind, message):
    with pytest.raises(ValueError, match=message):
        resolve_backend(name, kind, "fp32")


def test_model_kind():
    assert [model_kind(p) for p in ("a.pt", "b.PTH", "c.onnx", "d.engine", "e.plan")] == [
        "checkpoint", "checkpoint", "onnx", "engine", "engine",
    ]  # fmt: skip


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU in this environment")
def test_torch_cuda_fp16_and_graphs_match_fp32(checkpoint, frames):
    fp32 = Segmenter.from_file(checkpoint, backend="torch")
    fp16 = Segmenter.from_file(checkpoint, backend="torch", precision="fp16", cuda_graphs=True)
    a, b = fp32.segment(frames, "bgr"), fp16.segment(frames, "bgr")
    b_again = fp16.segment(frames, "bgr")  # replay of the captured graph
    agree = np.mean([(x.ids == y.ids).mean() for x, y in zip(a, b, strict=True)])
    assert agree > 0.995
    assert all(np.array_equal(x.ids, y.ids) for x, y in zip(b, b_again, strict=True))


def test_fp32_graph_has_batchnorm_folded_into_convolutions(checkpoint, cache):
    """The CPU graph carries no Conv -> BatchNorm pair; only the BN on pooled features stays."""
    import onnx

    from bisenet_ros.export.cache import exported_onnx

    model = onnx.load(str(exported_onnx(checkpoint, None, cache)))
    producer = {out: node for node in model.graph.node for out in node.output}
    norms = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    after_conv = [
        n.name for n in norms if getattr(producer.get(n.input[0]), "op_type", "") == "Conv"
    ]
    assert not after_conv, f"BatchNorm left after a convolution: {after_conv}"
    assert len(norms) <= 1 and sum(n.op_type == "Conv" for n in model.graph.node) > 50


def test_softmax_free_confidence_equals_softmax_max():
    """The rewritten confidence tail computes the same max softmax as the exported one."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from bisenet_ros.export.graph import cheap_max_softmax, pruned

    nodes = [
        helper.make_node("Softmax", ["x"], ["p"], axis=1, name="softmax"),
        helper.make_node("ReduceMax", ["p"], ["top"], axes=[1], keepdims=0),
        helper.make_node("ArgMax", ["x"], ["ids"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "tail",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 11, 5, 7])],
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, [2, 5, 7]),
            helper.make_tensor_value_info("top", TensorProto.FLOAT, [2, 5, 7]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    rewritten = cheap_max_softmax(model)
    onnx.checker.check_model(rewritten)
    assert "Softmax" not in {n.op_type for n in rewritten.graph.node}
    x = np.random.default_rng(0).normal(scale=4.0, size=(2, 11, 5, 7)).astype(np.float32)

    def run(m, outputs=None):
        session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(outputs, {"x": x})

    ids, top = run(model)
    ids2, top2 = run(rewritten)
    assert np.array_equal(ids, ids2) and np.allclose(top, top2, atol=1e-6)
    exp = np.exp(x - x.max(axis=1, keepdims=True))
    assert np.allclose(top2, (exp / exp.sum(axis=1, keepdims=True)).max(axis=1), atol=1e-6)
    only_ids = pruned(model, ["ids"])
    assert {n.op_type for n in only_ids.graph.node} == {"ArgMax"}
    assert np.array_equal(run(only_ids)[0], ids)


def test_grouped_convs_become_depthwise_with_the_same_logits(checkpoint, cache, frames):
    """The int8 path's rewrite of BiSeNetV2's expansion convolutions changes no result."""
    import onnx
    import onnxruntime as ort

    from bisenet_ros.export.graph import depthwise_grouped_convs, pruned
    from bisenet_ros.preprocess import preprocess

    seg = Segmenter.from_file(checkpoint, backend="onnxruntime", cache_dir=cache)
    (onnx_file,) = (cache / "onnx").glob("*.onnx")
    model = pruned(onnx.load(str(onnx_file)), ["ids"])
    rewritten = depthwise_grouped_convs(model)
    onnx.checker.check_model(rewritten)

    def expanding(m):  # grouped convs with several outputs per group
        weights = {i.name: i.dims for i in m.graph.initializer}
        return [
            n for n in m.graph.node
            if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)
            and weights[n.input[1]][0] != next(a.i for a in n.attribute if a.name == "group")
        ]  # fmt: skip

    assert len(expanding(model)) >= 8 and expanding(rewritten) == []
    batch, _ = preprocess(frames[:2], seg.manifest, "bgr", "stretch")

    def run(m):
        session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: batch})[0]

    np.testing.assert_array_equal(run(model), run(rewritten))


def test_int8_float_islands_are_the_planned_ones(checkpoint, cache):
    """Only the stems, the aggregation's attention and the tail after the classifier stay float."""
    import onnx

    from bisenet_ros.export.quantize import float_nodes

    Segmenter.from_file(checkpoint, backend="onnxruntime", cache_dir=cache)
    (onnx_file,) = (cache / "onnx").glob("*.onnx")
    model = onnx.load(str(onnx_file))
    kind = {n.name: n.op_type for n in model.graph.node}
    floating = set(float_nodes(model))
    float_convs = {name for name in floating if kind[name] == "Conv"}
    stems = ("/detail/S1/S1.0/", "/segment/S1S2/conv/")
    assert len(float_convs) == 2
    assert float_convs == {n for n in kind if kind[n] == "Conv" and any(s in n for s in stems)}
    assert {"ArgMax", "Resize", "Sigmoid", "Mul"} <= {kind[n] for n in floating}
    classifier = [n for n in kind if kind[n] == "Conv" and "/head/conv_out/" in n]
    aggregation_convs = [n for n in kind if kind[n] == "Conv" and "/bga/" in n]
    assert classifier and not floating & set(classifier)
    assert len(aggregation_convs) >= 5 and not floating & set(aggregation_convs)
