"""Dataset formats, label decoding, check-dataset and augmentation, on real CamVid frames."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

pytest.importorskip("torch")  # the training package; the jazzy-py310 leg runs without PyTorch

from bisenet_ros.manifest import CAMVID
from bisenet_ros.training.check import check_dataset
from bisenet_ros.training.class_map import IGNORE
from bisenet_ros.training.datasets import CITYSCAPES_ID_TO_TRAIN, LabelError
from bisenet_ros.training.formats import build_dataset
from bisenet_ros.training.transforms import EvalTransform, TrainAugment

# A CamVid class -> the Cityscapes label id of the same thing (sky, building, ..., road, car).
CAMVID_TO_CITYSCAPES_ID = {0: 23, 1: 11, 2: 17, 3: 7, 4: 8, 5: 21, 6: 20, 7: 13, 8: 26, 9: 24}
CAMVID_TO_CITYSCAPES_ID.update({10: 25, 11: 0})  # bicyclist -> rider, void -> unlabeled


@pytest.fixture(scope="module")
def frames(camvid_dir) -> list[tuple[Path, Path]]:
    """Three real CamVid training frames and their labels."""
    images = sorted((camvid_dir / "train" / "images").glob("*.jpg"))[:3]
    return [(p, camvid_dir / "train" / "labels" / f"{p.stem}.png") for p in images]


def raw_label(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def expected_ids(raw: np.ndarray) -> np.ndarray:
    return np.where(raw == 11, IGNORE, raw).astype(np.uint8)


def test_camvid_maps_void_to_ignore_and_keeps_class_ids(camvid_dir, frames):
    dataset = build_dataset("camvid", camvid_dir, "train")
    assert len(dataset) == 367
    assert dataset.classes.names == [n for n, _ in CAMVID]
    assert dataset.classes.drivable_ids == [3]
    index = [p for p, _ in dataset.pairs].index(frames[0][0])
    image, label = dataset[index]
    raw = raw_label(frames[0][1])
    assert image.shape == (360, 480, 3) and image.dtype == np.uint8
    assert (raw == 11).any(), "this frame should contain void pixels"
    np.testing.assert_array_equal(label, expected_ids(raw))
    # RGB order: the stored JPEG is BGR on disk.
    np.testing.assert_array_equal(image, cv2.imread(str(frames[0][0]))[:, :, ::-1])


def test_cityscapes_layout_maps_label_ids_to_train_ids(frames, tmp_path):
    lut = np.zeros(256, np.uint8)
    for camvid, city in CAMVID_TO_CITYSCAPES_ID.items():
        lut[camvid] = city
    for i, (image_path, label_path) in enumerate(frames):
        split = "train" if i < 2 else "val"
        stem = f"aachen_{i:06d}_000019"
        img_dir = tmp_path / "leftImg8bit" / split / "aachen"
        gt_dir = tmp_path / "gtFine" / split / "aachen"
        img_dir.mkdir(parents=True, exist_ok=True)
        gt_dir.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(img_dir / f"{stem}_leftImg8bit.png"), cv2.imread(str(image_path)))
        cv2.imwrite(str(gt_dir / f"{stem}_gtFine_labelIds.png"), lut[raw_label(label_path)])
        # Other gtFine files beside the labelIds must not be taken for labels.
        cv2.imwrite(str(gt_dir / f"{stem}_gtFine_color.png"), cv2.imread(str(image_path)))

    dataset = build_dataset("cityscapes", tmp_path, "train")
    assert len(dataset) == 2 and dataset.classes.num_classes == 19
    _, label = dataset[0]
    raw = raw_label(frames[0][1])
    expected = np.full(raw.shape, IGNORE, np.uint8)
    for camvid, city in CAMVID_TO_CITYSCAPES_ID.items():
        expected[raw == camvid] = CITYSCAPES_ID_TO_TRAIN.get(city, IGNORE)
    np.testing.assert_array_equal(label, expected)
    assert (label[raw == 3] == 0).all()  # road -> train id 0
    assert len(build_dataset("cityscapes", tmp_path, ["train", "val"])) == 3


def write_custom(root: Path, frames, label_format: str, list_file: bool) -> None:
    classes = [{"name": n, "color": list(c), "drivable": n == "road"} for n, c in CAMVID]
    meta = {"classes": classes, "label_format": label_format}
    if label_format == "ids":
        meta["ignore_index"] = 11
    else:
        meta["ignore_color"] = [0, 0, 0]
    palette = np.array([c for _, c in CAMVID] + [(0, 0, 0)], np.uint8)
    lines = []
    for image_path, label_path in frames:
        (root / "img").mkdir(parents=True, exist_ok=True)
        (root / "ann").mkdir(parents=True, exist_ok=True)
        shutil.copy(image_path, root / "img" / image_path.name)
        raw = raw_label(label_path)
        out = raw if label_format == "ids" else palette[raw][:, :, ::-1]  # BGR on disk
        cv2.imwrite(str(root / "ann" / label_path.name), out)
        lines.append(f"img/{image_path.name} ann/{label_path.name}")
    if list_file:
        (root / "train.txt").write_text("\n".join(lines) + "\n")
        meta["splits"] = {"train": "train.txt"}
    else:
        meta["splits"] = {"train": {"images": "img", "labels": "ann"}}
    (root / "dataset.yaml").write_text(yaml.safe_dump(meta))


@pytest.mark.parametrize(
    "label_format, list_file", [("ids", False), ("ids", True), ("color", False)]
)
def test_custom_format_loads_id_and_colour_labels(frames, tmp_path, label_format, list_file):
    write_custom(tmp_path, frames, label_format, list_file)
    dataset = build_dataset("custom", tmp_path, "train")
    assert len(dataset) == 3
    assert dataset.classes.drivable_ids == [3]
    assert dataset.classes.palette[3] == (128, 64, 128)
    for i, (_, label_path) in enumerate(frames):
        np.testing.assert_array_equal(dataset[i][1], expected_ids(raw_label(label_path)))


def test_label_values_outside_the_classes_are_an_error_naming_the_file(frames, tmp_path):
    write_custom(tmp_path, frames, "ids", list_file=False)
    bad = tmp_path / "ann" / frames[1][1].name
    label = raw_label(bad)
    label[:5, :5] = 40
    cv2.imwrite(str(bad), label)
    dataset = build_dataset("custom", tmp_path, "train")
    with pytest.raises(LabelError, match=rf"{bad.name}.*\[40\].*0-11"):
        dataset[1]


def test_check_dataset_reports_planted_errors_by_file(frames, tmp_path, capsys):
    write_custom(tmp_path, frames, "ids", list_file=False)
    ann = tmp_path / "ann"
    out_of_range = ann / frames[0][1].name
    label = raw_label(out_of_range)
    label[0, 0] = 200
    cv2.imwrite(str(out_of_range), label)
    resized = ann / frames[1][1].name
    cv2.imwrite(str(resized), cv2.resize(raw_label(resized), (240, 180), cv2.INTER_NEAREST))
    (ann / frames[2][1].name).unlink()
    orphan = ann / "orphan.png"
    cv2.imwrite(str(orphan), raw_label(frames[2][1]))
    truncated = tmp_path / "img" / frames[0][0].name  # OpenCV reads it, half grey
    truncated.write_bytes(truncated.read_bytes()[:20000])

    report = check_dataset("custom", tmp_path, "train", progress=False)
    assert not report.ok
    assert set(report.problems) == {
        str(out_of_range),
        str(resized),
        str(tmp_path / "img" / frames[2][0].name),
        str(orphan),
        str(truncated),
    }
    assert "cannot read the image (20000 bytes of JPEG: " in report.problems[str(truncated)][0]
    assert "[200]" in report.problems[str(out_of_range)][0]
    assert "differs from image" in report.problems[str(resized)][0]
    # Frequencies count only the readable, well-formed label (the resized one).
    counts = np.bincount(expected_ids(raw_label(resized)).ravel(), minlength=256)
    assert report.class_pixels == counts[:11].tolist()
    assert report.ignore_pixels == counts[IGNORE]

    from bisenet_ros.cli import main

    assert main(["check-dataset", "--format", "custom", "--root", str(tmp_path)]) == 1
    text = capsys.readouterr().out
    assert "5 problems in 5 files" in text and str(orphan) in text


def test_check_dataset_passes_a_clean_dataset(frames, tmp_path):
    write_custom(tmp_path, frames, "color", list_file=True)
    report = check_dataset("custom", tmp_path, "train", progress=False)
    assert report.ok and report.pairs == 3
    assert sum(report.class_pixels) + report.ignore_pixels == 3 * 360 * 480


def augment(**kwargs) -> TrainAugment:
    settings = dict(crop_size=(96, 128), scale_range=(0.25, 1.5), mean=(0.5,) * 3, std=(0.25,) * 3)
    settings.update(kwargs)
    return TrainAugment(**settings, brightness=0.4, contrast=0.4, saturation=0.4)


def test_augmentation_is_deterministic_under_a_seed(frames):
    image = cv2.imread(str(frames[0][0]))[:, :, ::-1]
    label = expected_ids(raw_label(frames[0][1]))
    t = augment()
    a = t(image, label, np.random.default_rng([0, 5]))
    b = t(image, label, np.random.default_rng([0, 5]))
    c = t(image, label, np.random.default_rng([0, 6]))
    assert a[0].shape == (3, 96, 128) and a[1].shape == (96, 128)
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all()
    assert not (a[0] == c[0]).all()


def test_crop_pads_with_ignore_and_flip_mirrors(frames):
    image = cv2.imread(str(frames[0][0]))[:, :, ::-1]
    label = expected_ids(raw_label(frames[0][1]))
    # Scale 0.1 makes a 36x48 image: most of the 96x128 crop is padding.
    t = augment(scale_range=(0.1, 0.1))
    _, crop_label = t(image, label, np.random.default_rng(1))
    assert (crop_label == IGNORE).float().mean() > 0.8
    assert (crop_label != IGNORE).any()

    plain = TrainAugment((360, 480), (1.0, 1.0), (0.0,) * 3, (1 / 255,) * 3, hflip=True)
    seen = set()
    for seed in range(8):
        x, y = plain(image, label, np.random.default_rng(seed))
        flipped = bool((y.numpy() == label[:, ::-1]).all())
        assert flipped or (y.numpy() == label).all()
        reference = image[:, ::-1] if flipped else image
        np.testing.assert_allclose(x.numpy().transpose(1, 2, 0), reference, atol=1e-3)
        seen.add(flipped)
    assert seen == {True, False}


def test_eval_transform_resizes_the_image_only(frames):
    image = cv2.imread(str(frames[0][0]))[:, :, ::-1]
    label = expected_ids(raw_label(frames[0][1]))
    x, y = EvalTransform((0.5,) * 3, (0.25,) * 3, (180, 240))(image, label)
    assert x.shape == (3, 180, 240) and y.shape == (360, 480)


def test_unknown_colours_suggest_ignore_color(frames, tmp_path):
    """A colour-coded dataset whose void colour is not declared: the error names the colours
    and the setting that would make them ignored."""
    write_custom(tmp_path, frames, "color", list_file=False)
    meta = yaml.safe_load((tmp_path / "dataset.yaml").read_text())
    del meta["ignore_color"]
    (tmp_path / "dataset.yaml").write_text(yaml.safe_dump(meta))
    dataset = build_dataset("custom", tmp_path, "train")
    voids = [i for i, (_, label) in enumerate(frames) if (raw_label(label) == 11).any()]
    assert voids, "no CamVid frame here has void pixels"
    count = int((raw_label(frames[voids[0]][1]) == 11).sum())  # each void pixel, by count
    with pytest.raises(LabelError, match=rf"\(0,0,0\) x {count} px.*set ignore_color: \[r, g, b\]"):
        dataset[voids[0]]
