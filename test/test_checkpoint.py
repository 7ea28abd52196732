"""Checkpoint import: real RUGD weights, mmsegmentation names, strictness, project format."""

import logging

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the jazzy-py310 leg runs without PyTorch

from conftest import rugd_class_table

from bisenet_ros.manifest import Manifest
from bisenet_ros.models import CheckpointError, build_model, load_checkpoint, save_checkpoint
from bisenet_ros.models.checkpoint import mmseg_v1_name, mmseg_v2_name

RUGD_WEIGHTS = "bisenetv2_rugd25_coincheung_fp16.pth"
RUGD_MEAN, RUGD_STD = (0.3257, 0.3690, 0.3223), (0.2112, 0.2148, 0.2115)


def rugd_input(rugd_dir) -> torch.Tensor:
    bgr = cv2.imread(str(rugd_dir / "creek_input_rgb_128x192.png"))
    rgb = bgr[:, :, ::-1].astype(np.float32) / 255.0
    x = (rgb - np.array(RUGD_MEAN, np.float32)) / np.array(RUGD_STD, np.float32)
    return torch.from_numpy(x.transpose(2, 0, 1).copy())[None]


def test_real_rugd_checkpoint_reproduces_the_reference_logits(rugd_dir):
    model, manifest = load_checkpoint(rugd_dir / RUGD_WEIGHTS)
    assert manifest.arch == "bisenetv2" and manifest.num_classes == 25
    with torch.no_grad():
        logits = model(rugd_input(rugd_dir))[0].numpy()
    reference = np.load(rugd_dir / "creek_reference_logits.npz")["logits"]
    assert logits.shape == reference.shape == (25, 128, 192)
    assert np.abs(logits - reference).max() < 1e-3
    labels = cv2.imread(str(rugd_dir / "creek_reference_labels.png"), cv2.IMREAD_UNCHANGED)
    assert (logits.argmax(0) == labels).all()


def test_wrapped_and_data_parallel_checkpoints_load(rugd_dir, tmp_path):
    state = torch.load(rugd_dir / RUGD_WEIGHTS)
    path = tmp_path / "wrapped.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    model, _ = load_checkpoint(path)
    reference, _ = load_checkpoint(rugd_dir / RUGD_WEIGHTS)
    for (name, a), (_, b) in zip(
        model.state_dict().items(), reference.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


# --- mmsegmentation layout ---------------------------------------------------------------
# Parameter names as mmsegmentation's modules create them (ConvModule = conv + bn), written
# out from its constructors independently of the renaming rules under test.

BN = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


def conv_module(prefix: str) -> list[str]:
    return [f"{prefix}.conv.weight"] + [f"{prefix}.bn.{b}" for b in BN]


def mmseg_v2_names(aux: bool) -> list[str]:
    names = []
    for i, n in enumerate([2, 3, 3]):
        for j in range(n):
            names += conv_module(f"backbone.detail.detail_branch.{i}.{j}")
    s = "backbone.semantic"
    for part in ["conv_first", "convs.0", "convs.1", "fuse_last"]:
        names += conv_module(f"{s}.stage1.{part}")
    for stage, layers in [(2, 2), (3, 2), (4, 4)]:
        for k in range(layers):
            ge = f"{s}.stage{stage}.{k}"
            parts = ["conv1", "dwconv.0", "conv2.0"]
            if k == 0:
                parts += ["dwconv.1", "shortcut.0.depthwise_conv", "shortcut.0.pointwise_conv"]
            for part in parts:
                names += conv_module(f"{ge}.{part}")
    names += [f"{s}.stage4_CEBlock.gap.1.{b}" for b in BN]
    names += conv_module(f"{s}.stage4_CEBlock.conv_gap") + conv_module(
        f"{s}.stage4_CEBlock.conv_last"
    )
    g = "backbone.bga"
    for dw in ["detail_dwconv", "semantic_dwconv"]:
        names += conv_module(f"{g}.{dw}.0.depthwise_conv")
        names += [f"{g}.{dw}.0.pointwise_conv.conv.weight", f"{g}.{dw}.0.pointwise_conv.conv.bias"]
    for part in ["detail_down.0", "semantic_conv.0", "conv"]:
        names += conv_module(f"{g}.{part}")
    names += conv_module("decode_head.convs.0") + [
        "decode_head.conv_seg.weight",
        "decode_head.conv_seg.bias",
    ]
    if aux:
        for h in range(4):
            names += conv_module(f"auxiliary_head.{h}.convs.0")
            names += conv_module(f"auxiliary_head.{h}.convs.1")
            names += [f"auxiliary_head.{h}.conv_seg.weight", f"auxiliary_head.{h}.conv_seg.bias"]
    return names


def mmseg_v1_names(aux: bool) -> list[str]:
    r = "backbone.context_path.backbone"
    names = [f"{r}.conv1.weight"] + [f"{r}.bn1.{b}" for b in BN]
    for layer in range(1, 5):
        for block in range(2):
            p = f"{r}.layer{layer}.{block}"
            names += [f"{p}.conv1.weight", f"{p}.conv2.weight"]
            names += [f"{p}.bn1.{b}" for b in BN] + [f"{p}.bn2.{b}" for b in BN]
            if layer > 1 and block == 0:
                names += [f"{p}.downsample.0.weight"] + [f"{p}.downsample.1.{b}" for b in BN]
    c = "backbone.context_path"
    for arm in ["arm16", "arm32"]:
        names += conv_module(f"{c}.{arm}.conv_layer") + conv_module(f"{c}.{arm}.atten_conv_layer.1")
    for part in ["conv_head32", "conv_head16", "gap_conv.1"]:
        names += conv_module(f"{c}.{part}")
    for layer in range(1, 5):
        names += conv_module(f"backbone.spatial_path.layer{layer}")
    names += conv_module("backbone.ffm.conv1") + conv_module("backbone.ffm.conv_atten.0")
    heads = ["decode_head"] + (["auxiliary_head.0", "auxiliary_head.1"] if aux else [])
    for head in heads:
        names += conv_module(f"{head}.convs.0") + [
            f"{head}.conv_seg.weight",
            f"{head}.conv_seg.bias",
        ]
    return names


@pytest.mark.parametrize(
    ("arch", "names", "rename"),
    [("bisenetv2", mmseg_v2_names, mmseg_v2_name), ("bisenetv1", mmseg_v1_names, mmseg_v1_name)],
)
@pytest.mark.parametrize("aux", [False, True])
def test_mmseg_checkpoint_loads_and_computes_the_same(arch, names, rename, aux, tmp_path):
    torch.manual_seed(1)
    source = build_model(arch, 7, aux_heads=aux, variant="mmseg").eval()
    ours = source.state_dict()
    theirs = names(aux)
    mapped = [rename(k) for k in theirs]
    assert len(set(mapped)) == len(theirs), "two mmseg names map to one parameter"
    assert set(mapped) == set(ours)
    path = tmp_path / "mmseg.pth"
    torch.save(
        {
            "meta": {"iter": 160000},
            "state_dict": {t: ours[o] for t, o in zip(theirs, mapped, strict=True)},
        },
        path,
    )
    model, manifest = load_checkpoint(path, aux_heads=aux)
    assert manifest.variant == "mmseg" and manifest.arch == arch
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


# --- strictness --------------------------------------------------------------------------


@pytest.fixture
def small_v2(tmp_path):
    model = build_model("bisenetv2", 4)
    path = tmp_path / "v2.pth"
    torch.save(model.state_dict(), path)
    return model.state_dict(), path


def test_missing_unexpected_and_misshaped_tensors_are_named(small_v2, tmp_path):
    state, _ = small_v2
    broken = dict(state)
    del broken["segment.S3.0.conv1.conv.weight"]
    broken["bga.extra.weight"] = torch.zeros(1)
    broken["detail.S1.0.conv.weight"] = torch.zeros(64, 3, 5, 5)
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    text = str(error.value)
    assert "1 missing: segment.S3.0.conv1.conv.weight" in text
    assert "1 unexpected: bga.extra.weight" in text
    assert "detail.S1.0.conv.weight: file (64, 3, 5, 5) vs network (64, 3, 3, 3)" in text


def test_unknown_layout_and_non_checkpoints_are_rejected(tmp_path):
    torch.save({"encoder.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="unrecognised checkpoint layout"):
        load_checkpoint(tmp_path / "other.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_checkpoint(tmp_path / "list.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a pickle at all")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "garbage.pth")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.pth")


def test_new_class_count_reinitialises_only_the_classifiers(small_v2, caplog):
    state, path = small_v2
    with caplog.at_level(logging.WARNING):
        model, manifest = load_checkpoint(path, num_classes=9, aux_heads=True)
    assert manifest.num_classes == 9
    assert (
        "re-initialised classifier layers ['head.conv_out.1.bias', 'head.conv_out.1.weight']"
        in caplog.text
    )
    assert "auxiliary-head tensors start fresh" in caplog.text
    loaded = model.state_dict()
    assert loaded["head.conv_out.1.weight"].shape == (9, 1024, 1, 1)
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if "conv_out.1" not in k)


def test_classifiers_the_file_lacks_start_small(camvid_dir):
    """Continuing from an inference checkpoint (no auxiliary heads, as the bundled model):
    the fresh heads' classifiers start small, so their first losses are near ln(classes)
    instead of 30 and more, whose gradients would wreck the loaded features."""
    from bisenet_ros.bundled import BUNDLED_MODEL
    from bisenet_ros.models.checkpoint import CLASSIFIER
    from bisenet_ros.preprocess import preprocess

    model, manifest = load_checkpoint(BUNDLED_MODEL, aux_heads=True)
    inference, _ = load_checkpoint(BUNDLED_MODEL)
    state = model.state_dict()
    torch.testing.assert_close(
        state["head.conv_out.1.weight"], inference.state_dict()["head.conv_out.1.weight"]
    )
    fresh = [k for k in state if k.startswith("aux") and CLASSIFIER.match(k) and "weight" in k]
    assert len(fresh) == 4 and all(state[k].std() < 0.02 for k in fresh)

    images = sorted((camvid_dir / "train" / "images").glob("*.jpg"))[:2]
    labels = sorted((camvid_dir / "train" / "labels").glob("*.png"))[:2]
    batch, _ = preprocess([cv2.imread(str(p)) for p in images], manifest, "bgr", "stretch")
    size = batch.shape[:-3:-1]
    target = np.stack(
        [cv2.resize(cv2.imread(str(p), cv2.IMREAD_UNCHANGED), size, interpolation=0)
         for p in labels]
    )  # fmt: skip
    model.train()  # the auxiliary heads answer in training mode only
    with torch.no_grad():
        _, aux = model(torch.from_numpy(batch))
    losses = [
        torch.nn.functional.cross_entropy(out, torch.from_numpy(target).long(), ignore_index=11)
        for out in aux
    ]
    assert all(abs(loss.item() - np.log(manifest.num_classes)) < 0.5 for loss in losses), losses


def test_aux_heads_in_the_file_are_dropped_for_inference(tmp_path):
    trained = build_model("bisenetv1", 3, aux_heads=True)
    torch.save(trained.state_dict(), tmp_path / "v1_aux.pth")
    model, _ = load_checkpoint(tmp_path / "v1_aux.pth")
    assert not hasattr(model, "conv_out16")
    model_aux, _ = load_checkpoint(tmp_path / "v1_aux.pth", aux_heads=True)
    assert torch.equal(model_aux.conv_out16.conv_out.weight, trained.conv_out16.conv_out.weight)


# --- project format ----------------------------------------------------------------------


def test_project_format_round_trip_keeps_manifest_and_weights(rugd_dir, tmp_path):
    names, palette = rugd_class_table(rugd_dir)
    manifest = Manifest(
        arch="bisenetv2",
        class_names=names,
        palette=palette,
        input_size=(128, 192),
        mean=RUGD_MEAN,
        std=RUGD_STD,
        drivable_ids=[1, 10],
    )
    model, _ = load_checkpoint(rugd_dir / RUGD_WEIGHTS, manifest=manifest)
    path = save_checkpoint(tmp_path / "rugd.pt", model, manifest)
    assert path.stat().st_size < 8 * 1024 * 1024
    assert not list(tmp_path.glob(".rugd.pt.*")), "temporary file left behind"
    again, stored = load_checkpoint(path)
    assert stored == manifest
    x = rugd_input(rugd_dir)
    with torch.no_grad():
        # the reference file is already float16, so the weights survive exactly
        assert torch.equal(again(x), model(x))


# --- model files never run code ---------------------------------------------------------


def test_a_planted_payload_never_runs(foreign_classes, tmp_path):
    import subprocess
    import sys

    marker = tmp_path / "payload_ran"
    bad = tmp_path / "weights.pt"
    model = build_model("bisenetv2", 11)
    torch.save({"state_dict": model.state_dict(), "x": foreign_classes.Planted(marker)}, bad)
    # loading in a fresh process where foreign_module is importable: the worst case
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "from bisenet_ros.models import CheckpointError, load_checkpoint\n"
        "try:\n"
        f"    load_checkpoint({str(bad)!r})\n"
        "except CheckpointError as error:\n"
        "    print(error)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert not marker.exists(), "the payload ran"
    assert run.returncode == 0, run.stderr[-2000:]
    assert "refused to load" in run.stdout and "posix.system" in run.stdout, run.stdout


def test_non_tensor_training_meta_is_skipped_and_weights_load(foreign_classes, tmp_path):
    """mmsegmentation-style checkpoints pickle config objects in ``meta``: the weights load."""
    import sys

    model = build_model("bisenetv2", 11).eval()
    path = tmp_path / "mmseg_style.pth"
    meta = {"cfg": foreign_classes.TrainingMeta()}
    torch.save({"meta": meta, "state_dict": model.state_dict()}, path)
    sys.modules.pop("foreign_module")  # the class is not importable where the file is used
    loaded, _ = load_checkpoint(path)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"\x80\x02garbage"])
def test_damaged_files_say_so(tmp_path, content):
    path = tmp_path / "damaged.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"cannot read .*damaged\.pt as a PyTorch checkpoint"):
        load_checkpoint(path)
