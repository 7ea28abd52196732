"""Segmenter on real weights and real frames: input handling, geometry, batching, confidence."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bisenet_ros import preprocess as pre
from bisenet_ros.choices import RESIZE_MODES
from bisenet_ros.inference import Segmentation, Segmenter
from bisenet_ros.preprocess import place, preprocess

NET_SIZE = (192, 256)  # small network input keeps the suite fast; geometry is size-agnostic


@pytest.fixture(scope="module")
def checkpoint(rugd_checkpoint) -> Path:
    """The real RUGD BiSeNetV2 weights as a project checkpoint with its manifest."""
    return rugd_checkpoint(NET_SIZE)


@pytest.fixture(scope="module")
def frames(camvid_dir) -> list[np.ndarray]:
    """Real CamVid test frames, RGB, 360x480."""
    files = sorted((camvid_dir / "test" / "images").glob("*.jpg"))[::40]
    return [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]


@pytest.fixture(scope="module")
def segmenter(checkpoint, tmp_path_factory) -> Segmenter:
    cache = tmp_path_factory.mktemp("cache")
    return Segmenter.from_file(checkpoint, backend="onnxruntime", threads=2, cache_dir=cache)


def test_contract_fields(segmenter, frames):
    assert segmenter.backend == "onnxruntime" and segmenter.precision == "fp32"
    assert segmenter.manifest.input_size == NET_SIZE
    (result,) = segmenter.segment(frames[0], confidence=True)
    assert isinstance(result, Segmentation)
    assert result.ids.shape == frames[0].shape[:2] and result.ids.dtype == np.uint8
    assert result.confidence.shape == result.ids.shape and result.confidence.dtype == np.uint8
    assert result.ids.max() < segmenter.manifest.num_classes
    assert set(result.timing) == {"preprocess_ms", "inference_ms", "postprocess_ms"}
    # max softmax of 25 classes is at least 1/25
    assert result.confidence.min() >= int(255 / 25)


@pytest.mark.parametrize("order", ["rgb", "bgr", "grey"])
def test_preprocess_is_the_manifest_normalisation(segmenter, frames, order):
    """(pixel - mean) / std in the network's channel order, CHW; letterbox pads with 0."""
    manifest = segmenter.manifest
    rgb = cv2.resize(frames[0], NET_SIZE[::-1], interpolation=cv2.INTER_LINEAR)
    given = {"rgb": rgb, "bgr": rgb[:, :, ::-1].copy(), "grey": rgb[:, :, 1].copy()}[order]
    batch, _ = preprocess([given], manifest, "bgr" if order == "bgr" else "rgb", "stretch")
    source = np.repeat(given[:, :, None], 3, axis=2) if order == "grey" else rgb
    if manifest.channel_order == "bgr":
        source = source[:, :, ::-1]
    expected = (source / 255.0 - manifest.mean) / manifest.std
    np.testing.assert_allclose(batch[0], expected.transpose(2, 0, 1), atol=1e-5)

    wide = cv2.resize(rgb, (NET_SIZE[1], NET_SIZE[0] // 2))
    batch, (p,) = preprocess([wide], manifest, "rgb", "letterbox")
    assert p.top > 0 and not batch[0, :, : p.top].any() and batch[0, :, p.top].any()


@pytest.mark.parametrize("order", ["rgb", "bgr", "grey"])
def test_numpy_blob_fallback_is_bitwise_the_opencv_blob(segmenter, frames, order, monkeypatch):
    """OpenCV < 4.8 (Debian 12, older Jetson images) has no Image2BlobParams: the numpy path
    that replaces it gives exactly the same batch, letterbox and odd sizes included."""
    if pre.to_blob is not pre.blob_opencv:
        pytest.skip(f"OpenCV {cv2.__version__} has no Image2BlobParams: only the fallback runs")
    image = {"rgb": frames[2], "bgr": frames[2][:, :, ::-1], "grey": frames[2][:, :, 0]}[order]
    image = cv2.resize(np.ascontiguousarray(image), (301, 173))
    channel_order = "bgr" if order == "bgr" else "rgb"
    for mode in RESIZE_MODES:
        fast, fast_places = preprocess([image], segmenter.manifest, channel_order, mode)
        monkeypatch.setattr(pre, "to_blob", pre.blob_numpy)
        slow, slow_places = preprocess([image], segmenter.manifest, channel_order, mode)
        monkeypatch.setattr(pre, "to_blob", pre.blob_opencv)
        assert fast_places == slow_places and np.array_equal(fast, slow)


@pytest.mark.parametrize("size", [(720, 1280), (360, 480), (37, 50), (1080, 600)])
def test_any_input_size(segmenter, frames, size):
    image = cv2.resize(frames[1], size[::-1], interpolation=cv2.INTER_LINEAR)
    (result,) = segmenter.segment(image, confidence=True)
    assert result.ids.shape == size and result.confidence.shape == size


def test_labels_are_resized_nearest(segmenter, frames):
    """Upscaled labels hold only ids the network produced, block-wise copies of them."""
    big = cv2.resize(frames[2], (1280, 960))
    net = segmenter.segment(cv2.resize(frames[2], NET_SIZE[::-1]))[0].ids
    ids = segmenter.segment(big)[0].ids
    assert set(np.unique(ids)) <= set(np.unique(net))
    # exact 5x nearest upscale of the network-size answer: every 5x5 block is one value
    assert np.array_equal(ids[2::5, 2::5], net)


def test_grey_image_accepted(segmenter, frames):
    grey = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)
    for image in (grey, grey[:, :, None]):
        (result,) = segmenter.segment(image)
        assert result.ids.shape == grey.shape
    # a grey frame is the colour frame with three equal channels
    as_rgb = np.repeat(grey[:, :, None], 3, axis=2)
    assert np.array_equal(segmenter.segment(grey)[0].ids, segmenter.segment(as_rgb)[0].ids)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((1, 1, 3), np.uint8), "too small"),
        (np.zeros((1, 1), np.uint8), "too small"),
        (np.zeros((4, 640, 3), np.uint8), "too small"),
        (np.zeros((64, 64, 3), np.float32), "uint8"),
        (np.zeros((64, 64, 4), np.uint8), "HxW"),
        (np.zeros((64, 64, 3, 1), np.uint8), "HxW"),
        ([], "no images"),
        ("frame.png", "image array"),
    ],
)
def test_bad_input_rejected(segmenter, bad, message):
    with pytest.raises(ValueError, match=message):
        segmenter.segment(bad)


def test_bad_channel_order_rejected(segmenter, frames):
    with pytest.raises(ValueError, match="channel_order"):
        segmenter.segment(frames[0], channel_order="rgba")


def test_channel_order(segmenter, frames):
    rgb = segmenter.segment(frames[0], channel_order="rgb")[0].ids
    bgr = segmenter.segment(frames[0][:, :, ::-1].copy(), channel_order="bgr")[0].ids
    swapped = segmenter.segment(frames[0][:, :, ::-1].copy(), channel_order="rgb")[0].ids
    assert np.array_equal(rgb, bgr)
    assert not np.array_equal(rgb, swapped)  # the network does see colour
    # one order per image: a batch of cameras that differ
    mixed = segmenter.segment([frames[0], frames[0][:, :, ::-1].copy()], ["rgb", "bgr"])
    assert np.array_equal(mixed[0].ids, rgb) and np.array_equal(mixed[1].ids, rgb)
    with pytest.raises(ValueError, match="1 channel orders for 2 images"):
        segmenter.segment([frames[0], frames[0]], ["rgb"])


def test_batch_of_mixed_sizes_equals_single_calls(segmenter, frames):
    images = [frames[0], cv2.resize(frames[1], (1280, 720)), frames[2][:200, :300]]
    batch = segmenter.segment(images, confidence=True)
    assert len(batch) == 3
    for image, result in zip(images, batch, strict=True):
        (single,) = segmenter.segment(image, confidence=True)
        assert np.array_equal(single.ids, result.ids)
        assert np.abs(single.confidence.astype(int) - result.confidence).max() <= 1


def test_letterbox_is_removed_on_output(checkpoint, frames, tmp_path):
    """A letterboxed frame gives the same labels as the same frame already letterboxed by hand."""
    seg = Segmenter.from_file(
        checkpoint, backend="onnxruntime", resize_mode="letterbox", cache_dir=tmp_path
    )
    wide = cv2.resize(frames[3], (480, 240))  # 2:1, the network is 4:3
    p = place(wide.shape[:2], NET_SIZE, "letterbox")
    assert p.left == 0 and p.top > 0 and p.width == NET_SIZE[1]
    ids = seg.segment(wide)[0].ids
    assert ids.shape == wide.shape[:2]
    stretch = Segmenter.from_file(checkpoint, backend="onnxruntime", cache_dir=tmp_path)
    mean = np.round(np.asarray(seg.manifest.mean) * 255).astype(np.uint8)
    canvas = np.empty((*NET_SIZE, 3), np.uint8)
    canvas[:] = mean
    canvas[p.top : p.top + p.height] = cv2.resize(wide, (p.width, p.height))
    by_hand = stretch.segment(canvas)[0].ids[p.top : p.top + p.height]
    by_hand = cv2.resize(by_hand, (480, 240), interpolation=cv2.INTER_NEAREST_EXACT)
    assert (ids == by_hand).mean() > 0.99  # padding differs by < 0.5 grey level (rounding)


def test_unknown_model_file_rejected(tmp_path):
    model = tmp_path / "model.tflite"
    model.write_bytes(b"0")
    with pytest.raises(ValueError, match="unknown model file type"):
        Segmenter.from_file(model)
    with pytest.raises(FileNotFoundError):
        Segmenter.from_file(tmp_path / "missing.onnx")
