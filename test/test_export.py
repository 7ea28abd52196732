"""ONNX export: ONNX Runtime reproduces PyTorch; the manifest travels inside and beside."""

import subprocess
import sys

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")  # the jazzy-py310 leg runs without PyTorch

from bisenet_ros.export.onnx import export_onnx
from bisenet_ros.manifest import CAMVID, ONNX_METADATA_KEY, Manifest, sidecar_path
from bisenet_ros.models import build_model, load_checkpoint, save_checkpoint
from bisenet_ros.onnx_metadata import read_onnx_manifest

SIZES = [(96, 128), (100, 150)]  # the second is not a multiple of 32


def camvid_batch(camvid_dir, size, count=2) -> torch.Tensor:
    """Real frames, resized and normalised like the network's input."""
    frames = sorted((camvid_dir / "test" / "images").glob("*.jpg"))[:count]
    batch = []
    for path in frames:
        rgb = cv2.resize(cv2.imread(str(path))[:, :, ::-1], size[::-1]).astype(np.float32) / 255
        batch.append(((rgb - 0.45) / 0.22).transpose(2, 0, 1))
    return torch.from_numpy(np.stack(batch))


CLASSIFIER = {"bisenetv2": "head.conv_out.1", "bisenetv1": "conv_out.conv_out"}


def calibrated(arch, camvid_dir) -> torch.nn.Module:
    """A random network with the activation and logit scale of a trained one.

    BatchNorm statistics come from real frames (fresh ones let activations grow without
    bound), and the classifier is scaled so logits spread like a trained network's (std 3;
    random classifiers give logits near 100, where float32 rounding alone exceeds 1e-4).
    """
    torch.manual_seed(0)
    model = build_model(arch, len(CAMVID))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
    frames = camvid_batch(camvid_dir, (256, 320), count=4)
    with torch.no_grad():
        model.train()(frames)
        logits_std = model.eval()(frames).std()
        model.get_submodule(CLASSIFIER[arch]).weight.mul_(3.0 / logits_std)
    return model


def camvid_manifest(arch) -> Manifest:
    return Manifest(
        arch=arch,
        class_names=[n for n, _ in CAMVID],
        palette=[c for _, c in CAMVID],
        input_size=(96, 128),
        mean=(0.45,) * 3,
        std=(0.22,) * 3,
        drivable_ids=[3],
    )


def run_onnx(path, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})


def check_parity(model, manifest, x, size, tmp_path, logits_tolerance):
    with torch.no_grad():
        reference = model(x).numpy()
    logits_path = export_onnx(
        model, manifest, tmp_path / "logits.onnx", input_size=size, output="logits"
    )
    ids_path = export_onnx(
        model, manifest, tmp_path / "ids.onnx", input_size=size, output="ids", confidence=True
    )
    assert not model.training, "export must leave the model in eval mode"
    (logits,) = run_onnx(logits_path, x.numpy())
    ids, confidence = run_onnx(ids_path, x.numpy())
    assert np.abs(logits - reference).max() < logits_tolerance
    assert ids.dtype == np.uint8 and ids.shape == (x.shape[0], *size)
    # where the two best logits are closer than float32 summation noise, either may win
    top2 = np.sort(reference, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * logits_tolerance
    np.testing.assert_array_equal(ids[clear], reference.argmax(1)[clear])
    runner_up = np.take_along_axis(reference, ids[:, None].astype(np.int64), 1)[:, 0]
    assert (runner_up >= top2[:, 0] - logits_tolerance).all()  # a near-tie, never a loser
    assert clear.mean() > 0.99
    softmax = torch.softmax(torch.from_numpy(reference), 1).amax(1).numpy()
    assert np.abs(confidence.astype(np.float32) - softmax * 255).max() <= 1.0
    return reference


@pytest.mark.parametrize("size", SIZES)
def test_onnx_runtime_matches_pytorch_on_real_weights(size, rugd_dir, camvid_dir, tmp_path):
    model, manifest = load_checkpoint(rugd_dir / "bisenetv2_rugd25_coincheung_fp16.pth")
    check_parity(model, manifest, camvid_batch(camvid_dir, size), size, tmp_path, 1e-4)


@pytest.mark.parametrize("arch", ["bisenetv2", "bisenetv1"])
@pytest.mark.parametrize("size", SIZES)
def test_onnx_runtime_matches_pytorch_for_both_architectures(arch, size, camvid_dir, tmp_path):
    """No trained BiSeNetV1 exists here: a calibrated random network instead. Its logits
    reach ~100, so the bound is relative: ONNX Runtime and PyTorch only differ in float32
    summation order (about 1e-5 of the logit range; real weights stay under 1e-4 absolute)."""
    model = calibrated(arch, camvid_dir)
    x = camvid_batch(camvid_dir, size)
    with torch.no_grad():
        scale = float(model(x).abs().max())
    check_parity(model, camvid_manifest(arch), x, size, tmp_path, 2e-5 * scale)


def test_batch_dimension_is_dynamic(camvid_dir, tmp_path):
    model = calibrated("bisenetv2", camvid_dir)
    path = export_onnx(model, camvid_manifest("bisenetv2"), tmp_path / "m.onnx", output="ids")
    x = camvid_batch(camvid_dir, (96, 128), count=3).numpy()
    (all_three,) = run_onnx(path, x)
    (one,) = run_onnx(path, x[1:2])
    assert all_three.shape == (3, 96, 128)
    np.testing.assert_array_equal(all_three[1], one[0])


def test_graph_uses_standard_ops_and_opset_17(camvid_dir, tmp_path):
    path = export_onnx(
        build_model("bisenetv2", 3),
        Manifest.default("bisenetv2", 3),
        tmp_path / "m.onnx",
        input_size=(64, 64),
    )
    proto = onnx.load(str(path))
    assert all(o.domain in ("", "ai.onnx") for o in proto.opset_import)
    assert max(o.version for o in proto.opset_import) >= 17
    assert "ArgMax" in {node.op_type for node in proto.graph.node}


def test_manifest_travels_in_metadata_and_sidecar(tmp_path):
    manifest = camvid_manifest("bisenetv1")
    path = export_onnx(
        build_model("bisenetv1", 11), manifest, tmp_path / "v1.onnx", input_size=(64, 96)
    )
    expected = Manifest(**{**manifest.to_dict(), "input_size": (64, 96)})
    stored = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert Manifest.from_json(stored[ONNX_METADATA_KEY]) == expected
    assert Manifest.load(sidecar_path(path)) == expected
    assert read_onnx_manifest(path) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output": "probabilities"}, "output must be one of"),
        ({"output": "logits", "confidence": True}, "confidence is an extra output"),
        ({"opset": 13}, "opset 13 is too old"),
        ({"input_size": (16, 16)}, "too small"),
    ],
)
def test_bad_export_requests_are_explained(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        export_onnx(
            build_model("bisenetv2", 3),
            Manifest.default("bisenetv2", 3),
            tmp_path / "m.onnx",
            **kwargs,
        )


def test_export_command_line(tmp_path):
    weights = save_checkpoint(
        tmp_path / "v2.pt", build_model("bisenetv2", 11), camvid_manifest("bisenetv2")
    )
    out = tmp_path / "deploy" / "v2.onnx"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bisenet_ros.cli",
            "export",
            "onnx",
            str(weights),
            "-o",
            str(out),
            "--size",
            "72",
            "100",
            "--confidence",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert read_onnx_manifest(out).input_size == (72, 100)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["ids", "confidence"]
    assert session.get_inputs()[0].shape == ["batch", 3, 72, 100]


def test_export_without_output_writes_to_the_current_directory(tmp_path):
    """Never beside the weights: those may be the bundled ones, inside the installed package."""
    import subprocess
    import sys

    weights_dir, work = tmp_path / "weights", tmp_path / "work"
    weights_dir.mkdir()
    work.mkdir()
    weights = save_checkpoint(
        weights_dir / "v2.pt", build_model("bisenetv2", 11), camvid_manifest("bisenetv2")
    )
    command = [sys.executable, "-m", "bisenet_ros.cli", "export", "onnx", str(weights),
               "--size", "64", "96"]  # fmt: skip
    result = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert read_onnx_manifest(work / "v2.onnx").input_size == (64, 96)
    assert sorted(p.name for p in weights_dir.iterdir()) == ["v2.pt"]
