"""Drivable mask on real CamVid labels and model output; flat-ground grid geometry; views."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CAMVID_PATH as CAMVID
from conftest import RUGD_PATH as RUGD

from bisenet_ros.inference import Segmenter
from bisenet_ros.inference.drivable import DrivableConfig, GroundGrid, drivable_mask
from bisenet_ros.inference.segmenter import Segmentation
from bisenet_ros.inference.views import VIEWS, ViewSettings, colorize, render
from bisenet_ros.manifest import CAMVID as CAMVID_TABLE

# the bundled model as shipped for ONNX Runtime (no PyTorch needed)
BUNDLED = Path(__file__).resolve().parents[1] / "bisenet_ros" / "weights" / "bisenetv2_camvid.onnx"
ROAD = 3


def camvid_labels(step: int = 30) -> list[np.ndarray]:
    if not CAMVID.is_dir():
        pytest.skip(f"real data not present: {CAMVID}")
    return [cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
            for f in sorted((CAMVID / "test" / "labels").glob("*.png"))[::step]]  # fmt: skip


def bottom_region_by_flood_fill(binary: np.ndarray) -> np.ndarray:
    """Reference: flood-fill (8-connected) from every bottom-row pixel of ``binary``."""
    region = np.zeros(binary.shape, np.uint8)
    work = binary.astype(np.uint8)
    height = binary.shape[0]
    for x in np.flatnonzero(work[-1]):
        if region[-1, x]:
            continue
        fill = np.zeros((height + 2, binary.shape[1] + 2), np.uint8)
        cv2.floodFill(work.copy(), fill, (int(x), height - 1), 2, 0, 0, 8 | cv2.FLOODFILL_MASK_ONLY)
        region |= fill[1:-1, 1:-1]
    return region.astype(bool)


def test_ground_truth_road_gives_bottom_connected_road():
    """Without hole filling or speck removal the mask is exactly the road touching the bottom."""
    config = DrivableConfig([ROAD], min_region_px=0, fill_holes_px=0)
    checked = 0
    for labels in camvid_labels():
        road = labels == ROAD
        mask = drivable_mask(labels, config)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        expected = bottom_region_by_flood_fill(road)
        assert np.array_equal(mask > 0, expected)
        checked += int(expected.any())
    assert checked >= 5  # the frames do show road at the bottom


def test_cleanup_fills_holes_and_drops_specks():
    labels = camvid_labels(step=60)[0].copy()
    road = drivable_mask(labels, DrivableConfig([ROAD], min_region_px=0, fill_holes_px=0))
    ys, xs = np.nonzero(road)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    assert (labels[cy - 3 : cy + 4, cx - 3 : cx + 4] == ROAD).all()
    labels[cy - 2 : cy + 3, cx - 2 : cx + 3] = 8  # a 25-pixel "car" inside the road
    labels[:6, :6] = ROAD  # a road speck far from the bottom
    config = DrivableConfig([ROAD], min_region_px=100, fill_holes_px=50, connected_to_bottom=False)
    mask = drivable_mask(labels, config) > 0
    assert mask[cy - 2 : cy + 3, cx - 2 : cx + 3].all()  # hole filled
    assert not mask[:6, :6].any()  # speck removed
    unfilled = (
        drivable_mask(
            labels,
            DrivableConfig([ROAD], min_region_px=100, fill_holes_px=10, connected_to_bottom=False),
        )
        > 0
    )
    assert not unfilled[cy - 2 : cy + 3, cx - 2 : cx + 3].any()  # a 25 px hole is not <= 10 px


@pytest.fixture(scope="module")
def model_and_drivable(tmp_path_factory) -> tuple[Segmenter, list[int], float, float]:
    """The bundled CamVid model, else the real RUGD weights with their road-like classes.

    Returns the segmenter, its drivable class ids, the share of the mask that must lie on
    ground-truth road and the share of the ground-truth bottom road it must cover. The bars
    sit below what these weights reach (bundled, 22 mIoU: 73 % and 84 %; RUGD weights see
    CamVid out of domain) so that a broken mask, not a weak model, fails them.
    """
    cache = tmp_path_factory.mktemp("cache")
    if BUNDLED.is_file():
        seg = Segmenter.from_file(BUNDLED, backend="onnxruntime", cache_dir=cache)
        return seg, seg.manifest.drivable_ids, 0.65, 0.7
    if not RUGD.is_dir():
        pytest.skip(f"no trained weights: neither {BUNDLED} nor {RUGD}")
    pytest.importorskip("torch")  # to import the RUGD checkpoint
    from conftest import rugd_class_table

    from bisenet_ros.manifest import Manifest
    from bisenet_ros.models import load_checkpoint, save_checkpoint

    names, colors = rugd_class_table(RUGD)
    manifest = Manifest.default("bisenetv2", 25).with_classes(names, colors)
    manifest.input_size = (360, 480)
    model, manifest = load_checkpoint(
        RUGD / "bisenetv2_rugd25_coincheung_fp16.pth", manifest=manifest
    )
    path = save_checkpoint(cache / "rugd.pt", model, manifest)
    seg = Segmenter.from_file(path, backend="onnxruntime", cache_dir=cache)
    ground = ["dirt", "asphalt", "gravel", "concrete"]
    return seg, [names.index(n) for n in ground], 0.6, 0.3


def test_drivable_mask_on_model_output(model_and_drivable):
    """The model's drivable area: bottom-connected regions of its drivable classes, on road."""
    segmenter, drivable, min_precision, min_recall = model_and_drivable
    config = DrivableConfig(drivable, min_region_px=200, fill_holes_px=200)
    on_road = total = road = covered = 0
    if not CAMVID.is_dir():
        pytest.skip(f"real data not present: {CAMVID}")
    files = sorted((CAMVID / "test" / "images").glob("*.jpg"))[::50]
    for f in files:
        labels = cv2.imread(str(f).replace("images", "labels").replace(".jpg", ".png"), 0)
        (result,) = segmenter.segment(cv2.imread(str(f)), "bgr")
        mask = drivable_mask(result.ids, config) > 0
        raw = np.isin(result.ids, drivable)
        # every kept region touches the bottom row, and only filled holes are added
        count, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        assert set(range(1, count)) <= set(np.unique(comp[-1]))
        # pixels added to the raw class area are small holes only
        _, holes, stats, _ = cv2.connectedComponentsWithStats(
            (~raw).astype(np.uint8), connectivity=4
        )
        assert (
            stats[np.unique(holes[mask & ~raw]), cv2.CC_STAT_AREA] <= config.fill_holes_px
        ).all()
        on_road += int((labels[mask] == ROAD).sum())
        total += int(mask.sum())
        truth = bottom_region_by_flood_fill(labels == ROAD)
        road += int(truth.sum())
        covered += int((truth & mask).sum())
    assert total > 0.1 * len(files) * 360 * 480  # a real area, not a few pixels
    assert on_road / total > min_precision, f"only {on_road / total:.0%} of the mask is road"
    assert covered / road > min_recall, f"the mask covers only {covered / road:.0%} of the road"


def test_ground_grid_geometry():
    """A level camera h metres up sees ground at distance d on image row cy + fy * h / d."""
    fx = fy = 500.0
    cx, cy = 320.0, 240.0
    grid = GroundGrid(resolution_m=0.5, width_m=10.0, length_m=30.0, camera_height_m=1.5)
    mask = np.zeros((480, 640), np.uint8)
    row = int(cy + fy * 1.5 / 10.0)  # ground 10 m ahead
    mask[row:] = 255  # drivable up to 10 m
    occupancy = grid.project(mask, fx, fy, cx, cy)
    assert occupancy.shape == (20, 60) and occupancy.dtype == np.int8
    centre = occupancy[10]  # the row straight ahead (y in [0, 0.5))
    distances = (np.arange(60) + 0.5) * 0.5
    seen = centre >= 0
    assert (centre[seen & (distances < 9.5)] == 0).all()
    assert (centre[seen & (distances > 10.5)] == 100).all()
    # cells closer than the lowest image row are below the view: unknown
    nearest_visible = 1.5 * fy / (480 - cy)
    assert (centre[distances < nearest_visible - 0.5] == -1).all()
    # pitching the camera down brings the nearest visible ground closer
    pitched = GroundGrid(resolution_m=0.5, width_m=10.0, length_m=30.0, camera_height_m=1.5,
                         camera_pitch_rad=0.2).project(mask, fx, fy, cx, cy)  # fmt: skip
    assert (pitched[10] >= 0).sum() > 0 and np.argmax(pitched[10] >= 0) < np.argmax(seen)
    # left of the camera is +y: a mask covering only the left image half frees the +y rows
    left = np.zeros_like(mask)
    left[row:, : int(cx)] = 255
    sided = grid.project(left, fx, fy, cx, cy)
    assert (sided[12:][sided[12:] >= 0] == 0).any() and not (sided[:8] == 0).any()


def test_colorize():
    labels = camvid_labels(step=60)[0]
    palette = [c for _, c in CAMVID_TABLE]
    colored = colorize(labels, palette)
    assert colored.shape == (*labels.shape, 3) and colored.dtype == np.uint8
    for cls in (0, ROAD):
        assert (colored[labels == cls] == palette[cls]).all()
    assert (colored[labels == 11] == 0).all()  # void has no colour
    assert (colorize(np.full((4, 4), 255, np.uint8), palette) == 0).all()


def test_views_threshold_resize_overlay_and_drivable():
    labels = camvid_labels(step=60)[1]
    palette = [c for _, c in CAMVID_TABLE]
    confidence = np.full(labels.shape, 200, np.uint8)
    confidence[:, : labels.shape[1] // 2] = 50  # the left half is uncertain
    image = np.full((*labels.shape, 3), 100, np.uint8)
    segmentation = Segmentation(labels, confidence)
    drivable = DrivableConfig([ROAD], min_region_px=0, fill_holes_px=0, connected_to_bottom=False)

    plain = render(segmentation, image, "rgb", palette, ViewSettings(drivable), VIEWS)
    assert np.array_equal(plain["labels"], labels)
    assert np.array_equal(plain["drivable"] > 0, labels == ROAD)
    expected = np.round(image * 0.5 + colorize(labels, palette).astype(float) * 0.5)
    assert np.abs(plain["overlay"].astype(int) - expected).max() <= 1

    settings = ViewSettings(drivable, confidence_threshold=100 / 255, overlay_alpha=1.0)
    sure = render(segmentation, image, "rgb", palette, settings, VIEWS)
    left = np.s_[:, : labels.shape[1] // 2]
    assert (sure["labels"][left] == 255).all()  # unlabelled, black, never drivable
    assert (sure["color"][left] == 0).all() and not sure["drivable"][left].any()
    assert np.array_equal(sure["overlay"], sure["color"])

    half = (labels.shape[1] // 2, labels.shape[0] // 2)
    small = render(segmentation, image, "bgr", palette, ViewSettings(drivable, half), VIEWS)
    assert {v.shape[:2] for v in small.values()} == {half[::-1]}
    only = render(segmentation, image, "rgb", palette, ViewSettings(drivable), ["labels"])
    assert list(only) == ["labels"]
    with pytest.raises(ValueError, match="unknown views"):
        render(segmentation, image, "rgb", palette, ViewSettings(drivable), ["mask"])
