"""Annotation-tool exports (CVAT Segmentation mask 1.1, LabelMe JSON) and class configs,
read back from real CamVid frames written in those layouts."""

from __future__ import annotations

import json
import re
import shutil

import cv2
import numpy as np
import pytest
import yaml

pytest.importorskip("torch")  # the training package; the jazzy-py310 leg runs without PyTorch

from annotation_exports import (
    CAMVID_VOID,
    THREE_CLASSES,
    camvid_pairs,
    labelme_json,
    write_cvat,
    write_labelme,
)

from bisenet_ros.bundled import BUNDLED_MODEL
from bisenet_ros.manifest import CAMVID
from bisenet_ros.training.check import check_dataset
from bisenet_ros.training.class_map import IGNORE
from bisenet_ros.training.datasets import LabelError
from bisenet_ros.training.formats import build_dataset, dataset_spec


@pytest.fixture
def three_classes(tmp_path):
    path = tmp_path / "three_classes.yaml"
    path.write_text(yaml.safe_dump(THREE_CLASSES))
    return path


def merged(ids: np.ndarray) -> np.ndarray:
    """CamVid ids merged into THREE_CLASSES by a plain lookup (void: ignore)."""
    names = [c["name"] for c in THREE_CLASSES["classes"]]
    lut = np.full(256, IGNORE, np.uint8)
    for cls, (name, _) in enumerate(CAMVID):
        lut[cls] = names.index(THREE_CLASSES["remap"][name])
    return lut[ids]


def raw_ids(path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_cvat_export_of_the_camvid_test_split_scores_exactly_as_camvid(
    camvid_dir, tmp_path, capsys
):
    """The same labels in CVAT's form: every class IoU and the mIoU printed by
    `bisenet evaluate --format cvat` equal those of the CamVid-format evaluation."""
    from bisenet_ros.cli import main

    export = write_cvat(tmp_path / "cvat", camvid_pairs(camvid_dir, "test"), "test")
    scores = {}
    for fmt, root in (("camvid", camvid_dir), ("cvat", export)):
        args = ["evaluate", str(BUNDLED_MODEL), "--format", fmt, "--root", str(root)]
        assert main([*args, "--split", "test", "--input-size", "180", "240", "--no-progress"]) == 0
        printed = capsys.readouterr().out
        scores[fmt] = [line.split(" (")[0] for line in printed.splitlines()]
    assert "233 images" in printed
    assert scores["cvat"] == scores["camvid"], scores
    assert float(re.search(r"mIoU (\S+)", "\n".join(scores["cvat"])).group(1)) > 30


def test_cvat_background_is_ignored_unless_the_config_remaps_it(camvid_dir, tmp_path):
    """Unannotated pixels are not learnt, not even by a class named background (as in
    THREE_CLASSES), unless remap says so."""
    pairs = camvid_pairs(camvid_dir, "train", 2)
    export = write_cvat(tmp_path / "cvat", pairs, "default")
    dataset = build_dataset("cvat", export, "default")
    assert dataset.classes.names == [n for n, _ in CAMVID]
    label = dataset.decoder.decode(export / "SegmentationClass" / f"{pairs[0][0].stem}.png")
    ids = raw_ids(pairs[0][1])
    assert (ids == CAMVID_VOID).any()
    np.testing.assert_array_equal(label, np.where(ids == CAMVID_VOID, IGNORE, ids))

    config = {"classes": [{"name": "unlabelled"}, *({"name": n} for n, _ in CAMVID)],
              "remap": {"background": "unlabelled"}}  # fmt: skip
    (tmp_path / "with_background.yaml").write_text(yaml.safe_dump(config))
    dataset = build_dataset("cvat", export, "default", classes=tmp_path / "with_background.yaml")
    label = dataset.decoder.decode(export / "SegmentationClass" / f"{pairs[0][0].stem}.png")
    np.testing.assert_array_equal(label, np.where(ids == CAMVID_VOID, 0, ids + 1))


def test_cvat_masks_in_palette_png_read_as_their_colours(camvid_dir, tmp_path):
    """Masks written as indexed PNGs decode to the same classes as colour PNGs."""
    from annotation_exports import indexed_png

    pairs = camvid_pairs(camvid_dir, "train", 1)
    export = write_cvat(tmp_path / "cvat", pairs, "default")
    ids = raw_ids(pairs[0][1])
    palette = [*(c for _, c in CAMVID), (0, 0, 0)]  # void (11) is CVAT's background
    mask = export / "SegmentationClass" / f"{pairs[0][0].stem}.png"
    mask.write_bytes(indexed_png(ids, palette))
    label = build_dataset("cvat", export, "default")[0][1]
    np.testing.assert_array_equal(label, np.where(ids == CAMVID_VOID, IGNORE, ids))


@pytest.mark.parametrize("fmt", ["camvid", "cvat", "labelme"])
def test_class_config_merges_camvid_into_three_classes(fmt, camvid_dir, tmp_path, three_classes):
    """The same remap, by name, works on every format: many-to-one, void ignored."""
    pairs = camvid_pairs(camvid_dir, "train", 2)
    if fmt == "cvat":
        root, split = write_cvat(tmp_path / "cvat", pairs, "default"), "default"
    elif fmt == "labelme":
        root, split = tmp_path / "labelme", "train"
        write_labelme(root / split, pairs)
    else:
        root, split = camvid_dir, "train"
    dataset = build_dataset(fmt, root, split, classes=three_classes)
    assert dataset.classes.names == ["drivable", "obstacle", "background"]
    assert dataset.classes.drivable_ids == [0]
    index = [p[0].name for p in dataset.pairs].index(pairs[0][0].name)
    _, label = dataset[index]
    expected = merged(raw_ids(pairs[0][1]))
    if fmt == "labelme":  # polygons traced from the mask: equal but for their outlines
        assert (label == expected).mean() > 0.95
    else:
        np.testing.assert_array_equal(label, expected)


def test_labelme_polygons_read_back_pixel_exact_in_file_order(tmp_path):
    """Known masks drawn as polygons, rectangles and a circle; a later shape paints over an
    earlier one, boundary pixels included, as LabelMe's own export does."""
    size = (64, 48)
    expected = np.full((48, 64), IGNORE, np.uint8)
    expected[5:31, 10:41] = 0  # rectangle (10, 5)-(40, 30), corners included
    expected[20:41, 30:61] = 1  # a later square over it
    yy, xx = np.mgrid[:48, :64]
    expected[(yy - 40) ** 2 + (xx - 8) ** 2 <= 25] = 2  # circle at (8, 40), radius 5
    shapes = [
        ("road", [[10, 5], [40, 5], [40, 30], [10, 30]]),
        ("car", [[30, 20], [60, 20], [60, 40], [30, 40]]),
        ("sky", [[8, 40], [13, 40]], "circle"),
        ("car", [[0, 0], [5, 5]], "line"),
    ]
    folder = tmp_path / "labelme" / "train"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), np.zeros((48, 64, 3), np.uint8))
    (folder / "a.json").write_text(json.dumps(labelme_json("a.png", size, shapes)))
    config = {"classes": [{"name": "road"}, {"name": "car"}, {"name": "sky"}]}
    (tmp_path / "classes.yaml").write_text(yaml.safe_dump(config))
    dataset = build_dataset(
        "labelme", tmp_path / "labelme", "train", classes=tmp_path / "classes.yaml"
    )
    label, notes = dataset.decoder.decode_with_notes(folder / "a.json")
    np.testing.assert_array_equal(label, expected)
    assert notes == ["shape 4 ('car', line) has no area: not used"]


def test_labelme_image_embedded_in_the_json_is_read(camvid_dir, tmp_path, three_classes):
    import base64

    (image, label), = camvid_pairs(camvid_dir, "train", 1)  # fmt: skip
    folder = write_labelme(tmp_path / "labelme" / "train", [(image, label)])
    data = json.loads((folder / f"{image.stem}.json").read_text())
    data["imageData"] = base64.b64encode(image.read_bytes()).decode()
    (folder / f"{image.stem}.json").write_text(json.dumps(data))
    (folder / image.name).unlink()
    dataset = build_dataset("labelme", tmp_path / "labelme", "train", classes=three_classes)
    picture, _ = dataset[0]
    reference = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
    assert np.abs(picture.astype(int) - reference).max() <= 1  # the same JPEG, decoded


def test_check_dataset_reports_each_bad_cvat_file_and_uses_the_rest(camvid_dir, tmp_path):
    pairs = camvid_pairs(camvid_dir, "train", 5)
    export = write_cvat(tmp_path / "cvat", pairs, "default")
    masks, images = export / "SegmentationClass", export / "JPEGImages"
    stray = cv2.imread(str(masks / f"{pairs[0][0].stem}.png"))
    stray[:10, :20] = (1, 2, 3)  # BGR: the colour (3, 2, 1), 200 pixels
    cv2.imwrite(str(masks / f"{pairs[0][0].stem}.png"), stray)
    (images / pairs[1][0].name).unlink()  # a mask without its image
    (masks / f"{pairs[2][0].stem}.png").unlink()  # an image without its mask
    small = cv2.resize(cv2.imread(str(pairs[3][0])), (240, 180))
    cv2.imwrite(str(images / pairs[3][0].name), small)
    mask = cv2.resize(cv2.imread(str(masks / f"{pairs[3][0].stem}.png")), (240, 180),
                      interpolation=cv2.INTER_NEAREST)  # fmt: skip
    cv2.imwrite(str(masks / f"{pairs[3][0].stem}.png"), mask)

    report = check_dataset("cvat", export, "default", progress=False)
    lines = report.text().splitlines()
    assert report.pairs == 3 and not report.ok
    assert sum(len(v) for v in report.problems.values()) == 3
    assert any(f"{pairs[0][0].stem}.png: 1 colours are neither" in line
               and "(3,2,1) x 200 px" in line for line in lines)  # fmt: skip
    assert any(f"{pairs[1][0].stem}.png: annotation has no image" in line for line in lines)
    assert any(f"{pairs[2][0].name}: image has no annotation" in line for line in lines)
    assert any(f"{pairs[3][0].name}: image is 240x180; 2 of the 3 images are 480x360" in line
               for line in lines)  # fmt: skip
    assert sum(report.class_pixels) > 0  # the readable files were counted


def test_check_dataset_reports_each_bad_labelme_file_and_uses_the_rest(
    camvid_dir, tmp_path, three_classes
):
    pairs = camvid_pairs(camvid_dir, "train", 4)
    folder = write_labelme(tmp_path / "labelme" / "train", pairs)
    unknown = json.loads((folder / f"{pairs[0][0].stem}.json").read_text())
    unknown["shapes"][0]["label"] = "tarmac"
    (folder / f"{pairs[0][0].stem}.json").write_text(json.dumps(unknown))
    outside = json.loads((folder / f"{pairs[1][0].stem}.json").read_text())
    outside["shapes"].append({"label": "car", "points": [[470, 350], [500, 350], [490, 380]]})
    (folder / f"{pairs[1][0].stem}.json").write_text(json.dumps(outside))
    (folder / pairs[2][0].name).unlink()  # an annotation without its image
    shutil.copy(pairs[0][0], folder / "unannotated.jpg")

    report = check_dataset("labelme", tmp_path / "labelme", "train", three_classes, progress=False)
    text = report.text()
    assert report.pairs == 3 and sum(len(v) for v in report.problems.values()) == 3, text
    assert re.search(rf"{pairs[0][0].stem}.json: label names \['tarmac'\] are neither", text)
    assert f"{pairs[2][0].stem}.json: annotation has no image" in text
    assert "unannotated.jpg: image has no annotation" in text
    notes = report.notes[str(folder / f"{pairs[1][0].stem}.json")]
    assert notes == [f"shape {len(outside['shapes'])} ('car', polygon) reaches outside the "
                     "480x360 image: clipped"]  # fmt: skip
    assert sum(report.class_pixels) > 0


@pytest.mark.parametrize(
    "config, message",
    [
        ({"classes": [{"name": "road"}]}, r"classes \[.*'sky'.*\] are neither classes \(road\)"),
        ({"classes": [{"name": "drivable"}], "remap": {"road": "drivabel"}},
         r"'drivabel' is not one of the classes .* \(did you mean 'drivable'\?\)"),
        ({**THREE_CLASSES, "remap": {**THREE_CLASSES["remap"], "roda": "drivable"}},
         r"remap names \['roda'\], which are not classes of the dataset"),
    ],
)  # fmt: skip
def test_class_configs_that_would_guess_are_refused(config, message, camvid_dir, tmp_path):
    (tmp_path / "classes.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match=message):
        dataset_spec("camvid", camvid_dir, "train", tmp_path / "classes.yaml")


def test_evaluation_matches_classes_by_name(camvid_dir, tmp_path):
    """A dataset with the model's classes in another order is renumbered by name; one with
    other class names is refused, naming them."""
    from bisenet_ros.training.formats import in_model_order

    names = [n for n, _ in CAMVID]
    reordered = {"classes": [{"name": n} for n in reversed(names)]}
    (tmp_path / "reversed.yaml").write_text(yaml.safe_dump(reordered))
    dataset = build_dataset("camvid", camvid_dir, "test", classes=tmp_path / "reversed.yaml")
    in_model_order(dataset, names)
    (image, label), = camvid_pairs(camvid_dir, "test", 1)  # fmt: skip
    index = [p[0] for p in dataset.pairs].index(image)
    np.testing.assert_array_equal(
        dataset[index][1], np.where(raw_ids(label) == 11, IGNORE, raw_ids(label))
    )

    three = tmp_path / "three.yaml"
    three.write_text(yaml.safe_dump(THREE_CLASSES))
    dataset = build_dataset("camvid", camvid_dir, "test", classes=three)
    with pytest.raises(
        ValueError, match=r"only the model has \['sky'.*only the dataset has \['drivable'"
    ):
        in_model_order(dataset, names)


def test_labelme_without_a_class_config_says_how(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(ValueError, match="LabelMe labels have no class order: give a class config"):
        dataset_spec("labelme", tmp_path, "train")


def test_not_a_labelme_file_is_a_label_error(tmp_path, three_classes):
    from bisenet_ros.training.class_map import read_class_config
    from bisenet_ros.training.labelme import LabelMeDecoder

    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(LabelError, match="not a readable LabelMe JSON"):
        LabelMeDecoder(read_class_config(three_classes)).decode(tmp_path / "a.json")
