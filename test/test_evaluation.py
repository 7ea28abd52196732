"""mIoU as cityscapesscripts defines it, checked against hand-computed numbers."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the jazzy-py310 leg runs without PyTorch
from torch import nn

from bisenet_ros.manifest import CAMVID, Manifest
from bisenet_ros.models import build_model, save_checkpoint
from bisenet_ros.training.evaluation import confusion_matrix, evaluate, predict_probs, scores

# Five classes; 255 = void. Class 3 is neither in the ground truth nor predicted on a
# non-void pixel (NaN, left out of the mean); class 4 is predicted once, never true (IoU 0).
GT = np.array([0, 0, 0, 1, 1, 2, 2, 255, 255, 0])
PRED = np.array([0, 0, 1, 1, 2, 2, 4, 0, 3, 0])
HIST = np.array(
    [
        [3, 1, 0, 0, 0],
        [0, 1, 1, 0, 0],
        [0, 0, 1, 0, 1],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]
)
# IoU = TP / (TP + FP + FN): 3/4, 1/3, 1/3, NaN, 0.
MIOU = (3 / 4 + 1 / 3 + 1 / 3 + 0) / 4
PIXEL_ACC = 5 / 8


def test_confusion_matrix_and_scores_match_the_hand_computation():
    hist = confusion_matrix(GT, PRED, 5)
    np.testing.assert_array_equal(hist, HIST)
    s = scores(hist, ["a", "b", "c", "d", "e"])
    assert s["iou"] == pytest.approx({"a": 0.75, "b": 1 / 3, "c": 1 / 3, "d": None, "e": 0.0})
    assert s["miou"] == pytest.approx(MIOU)
    assert s["pixel_acc"] == pytest.approx(PIXEL_ACC)
    assert s["pixels"] == 8


def test_confusion_matrix_rejects_ground_truth_outside_the_classes():
    with pytest.raises(ValueError, match="class ids >= 5"):
        confusion_matrix(np.array([0, 7]), np.array([0, 1]), 5)


class FixedPrediction(nn.Module):
    """A 'network' whose argmax is a given label map, at any input size."""

    def __init__(self, pred: np.ndarray, num_classes: int) -> None:
        super().__init__()
        onehot = np.eye(num_classes, dtype=np.float32)[pred].transpose(2, 0, 1)
        self.register_buffer("logits", torch.from_numpy(onehot)[None] * 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1, -1, -1)


def test_evaluate_accumulates_over_images_like_one_big_confusion_matrix():
    gt = GT.reshape(2, 5)
    pred = PRED.reshape(2, 5)
    dataset = [(torch.zeros(3, 2, 5), torch.from_numpy(gt).long())] * 2
    result = evaluate(FixedPrediction(pred, 5), dataset, 5, progress=False)
    np.testing.assert_array_equal(result.hist, 2 * HIST)
    assert result.metrics["miou"] == pytest.approx(MIOU)


def test_multi_scale_and_flip_average_the_probabilities():
    torch.manual_seed(0)
    model = build_model("bisenetv2", 4).eval()
    x = torch.randn(1, 3, 64, 96)
    probs = predict_probs(model, x, (64, 96), scales=(0.5, 1.0), flip=True)

    def at(scale, flip):
        view = (
            nn.functional.interpolate(x, scale_factor=scale, mode="bilinear") if scale != 1 else x
        )
        view = torch.flip(view, [3]) if flip else view
        with torch.no_grad():
            logits = model(view)
        logits = torch.flip(logits, [3]) if flip else logits
        up = nn.functional.interpolate(logits, (64, 96), mode="bilinear", align_corners=False)
        return up.softmax(1)

    expected = sum(at(s, f) for s in (0.5, 1.0) for f in (False, True))
    torch.testing.assert_close(probs, expected)
    assert not torch.allclose(probs, 4 * at(1.0, False))


def test_evaluate_command_scores_a_checkpoint_on_a_split(camvid_dir, tmp_path):
    root = tmp_path / "camvid"
    (root / "test" / "images").mkdir(parents=True)
    (root / "test" / "labels").mkdir(parents=True)
    stems = sorted(p.stem for p in (camvid_dir / "test" / "images").glob("*.jpg"))[:2]
    for stem in stems:
        for sub, ext in (("images", "jpg"), ("labels", "png")):
            (root / "test" / sub / f"{stem}.{ext}").symlink_to(
                camvid_dir / "test" / sub / f"{stem}.{ext}"
            )
    torch.manual_seed(0)
    model = build_model("bisenetv2", 11).eval()
    manifest = Manifest(
        "bisenetv2", [n for n, _ in CAMVID], [c for _, c in CAMVID], input_size=(180, 240)
    )
    save_checkpoint(tmp_path / "m.pt", model, manifest, half=False)

    from bisenet_ros.cli import main

    out = tmp_path / "eval.json"
    args = ["evaluate", str(tmp_path / "m.pt"), "--root", str(root), "--json", str(out)]
    assert main(args + ["--no-progress"]) == 0
    report = json.loads(out.read_text())

    hist = np.zeros((11, 11), np.int64)
    mean, std = np.array(manifest.mean), np.array(manifest.std)
    for stem in stems:
        image = cv2.imread(str(root / "test" / "images" / f"{stem}.jpg"))[:, :, ::-1]
        label = cv2.imread(str(root / "test" / "labels" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        small = cv2.resize(image, (240, 180), interpolation=cv2.INTER_LINEAR)
        x = torch.from_numpy(((small / 255.0 - mean) / std).transpose(2, 0, 1)).float()[None]
        with torch.no_grad():
            logits = nn.functional.interpolate(
                model(x), (360, 480), mode="bilinear", align_corners=False
            )
        hist += confusion_matrix(np.where(label == 11, 255, label), logits.argmax(1), 11)
    np.testing.assert_array_equal(np.array(report["confusion_matrix"]), hist)
    assert report["images"] == 2 and report["input_size"] == [180, 240]
    assert math.isclose(report["miou"], scores(hist)["miou"])
