"""Real CamVid frames written as annotation tools export them, for the tests to read back.

``write_cvat`` writes CVAT's "Segmentation mask 1.1" layout (labelmap.txt, ImageSets,
SegmentationClass colour masks, SegmentationObject, JPEGImages); ``write_labelme`` one
LabelMe JSON per frame with a polygon per region of each class. Both use CamVid's class
names, so ``THREE_CLASSES`` (a class config) merges them into drivable, obstacle and
background, and leaves CVAT's background ignored.
"""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from bisenet_ros.manifest import CAMVID

CAMVID_VOID = 11

THREE_CLASSES = {
    "classes": [
        {"name": "drivable", "color": [128, 64, 128], "drivable": True},
        {"name": "obstacle", "color": [220, 20, 60]},
        {"name": "background", "color": [70, 130, 180]},
    ],
    "remap": {
        "road": "drivable",
        **{n: "obstacle" for n in ("building", "pole", "tree", "sign/symbol", "fence")},
        **{n: "obstacle" for n in ("car", "pedestrian", "bicyclist")},
        "sky": "background",
        "sidewalk": "background",
    },
}


def camvid_pairs(camvid_dir: Path, split: str, count: int | None = None) -> list[tuple[Path, Path]]:
    images = sorted((camvid_dir / split / "images").glob("*.jpg"))[:count]
    return [(p, camvid_dir / split / "labels" / f"{p.stem}.png") for p in images]


def colour_mask(ids: np.ndarray) -> np.ndarray:
    """CamVid ids as CVAT paints them (BGR for OpenCV): void is background (0, 0, 0)."""
    palette = np.zeros((256, 3), np.uint8)
    palette[: len(CAMVID)] = [c for _, c in CAMVID]
    return palette[ids][:, :, ::-1]


def indexed_png(ids: np.ndarray, palette: list[tuple[int, int, int]]) -> bytes:
    """A palette ("P" mode) PNG of ``ids``, as Pascal VOC and some CVAT versions write
    masks (OpenCV writes no such PNG)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    height, width = ids.shape
    rows = b"".join(b"\x00" + ids[y].tobytes() for y in range(height))
    return b"".join([
        b"\x89PNG\r\n\x1a\n",
        chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)),
        chunk(b"PLTE", bytes(v for colour in palette for v in colour)),
        chunk(b"IDAT", zlib.compress(rows)),
        chunk(b"IEND", b""),
    ])  # fmt: skip


def write_cvat(root: Path, pairs: list[tuple[Path, Path]], subset: str) -> Path:
    """``pairs`` (CamVid image, label) as a CVAT Segmentation mask 1.1 export in ``root``."""
    lines = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
    lines += [f"{name}:{r},{g},{b}::" for name, (r, g, b) in CAMVID]
    root.mkdir(parents=True, exist_ok=True)
    (root / "labelmap.txt").write_text("\n".join(lines) + "\n")
    for folder in ("ImageSets/Segmentation", "SegmentationClass", "SegmentationObject",
                   "JPEGImages"):  # fmt: skip
        (root / folder).mkdir(parents=True, exist_ok=True)
    names = []
    for image, label in pairs:
        mask = colour_mask(cv2.imread(str(label), cv2.IMREAD_UNCHANGED))
        cv2.imwrite(str(root / "SegmentationClass" / f"{image.stem}.png"), mask)
        cv2.imwrite(str(root / "SegmentationObject" / f"{image.stem}.png"), mask)
        shutil.copy(image, root / "JPEGImages" / image.name)
        names.append(image.stem)
    listing = root / "ImageSets" / "Segmentation" / f"{subset}.txt"
    listing.write_text("\n".join(names) + "\n")
    return root


def regions(ids: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(class name, polygon) per outer region of each CamVid class, largest class first."""
    shapes = []
    order = np.argsort(-np.bincount(ids.ravel(), minlength=256)[: len(CAMVID)])
    for cls in order:
        contours, _ = cv2.findContours(
            (ids == cls).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        shapes += [(CAMVID[cls][0], c[:, 0, :]) for c in contours if len(c) >= 3]
    return shapes


def labelme_json(image_name: str, size: tuple[int, int], shapes: list) -> dict:
    """A LabelMe annotation: ``shapes`` as (label, points[, shape_type])."""
    return {
        "version": "5.5.0",
        "flags": {},
        "shapes": [
            {
                "label": s[0],
                "points": np.asarray(s[1]).tolist(),
                "group_id": None,
                "shape_type": s[2] if len(s) > 2 else "polygon",
                "flags": {},
            }
            for s in shapes
        ],  # fmt: skip
        "imagePath": image_name,
        "imageData": None,
        "imageHeight": size[1],
        "imageWidth": size[0],
    }


def write_labelme(folder: Path, pairs: list[tuple[Path, Path]]) -> Path:
    """``pairs`` as LabelMe JSONs beside copies of their images in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for image, label in pairs:
        ids = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
        shutil.copy(image, folder / image.name)
        data = labelme_json(image.name, (ids.shape[1], ids.shape[0]), regions(ids))
        (folder / f"{image.stem}.json").write_text(json.dumps(data))
    return folder
