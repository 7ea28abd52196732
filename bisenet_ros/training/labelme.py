"""LabelMe annotations: one ``.json`` per image with the shapes drawn on it::

    {"shapes": [{"label": "car", "shape_type": "polygon", "points": [[x, y], ...]}, ...],
     "imagePath": "frame_0001.jpg", "imageData": null or base64, "imageHeight": H,
     "imageWidth": W}

The JSON files of a split are the ``.json`` files under ``<root>/<split>``. Shapes are
rasterised in file order, so a later shape paints over an earlier one, boundary pixels
included (as LabelMe's own export does). Polygons, rectangles and circles have an area; lines
and points do not and are skipped with a note. Pixels under no shape are ignored, unless the
class config maps LabelMe's ``_background_`` to a class. LabelMe has no class order, so a
class config (``--classes``) is required: it lists the classes, and its ``remap`` may merge
label names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from ..image_files import IMAGE_SUFFIXES
from .class_map import IGNORE, ClassConfig
from .datasets import DatasetSpec, LabelError, Pairing, join_pairings, split_folder, split_names

BACKGROUND = "_background_"  # LabelMe's name for pixels under no shape
AREA_SHAPES = {"polygon", "rectangle", "circle"}


def read_annotation(path: Path) -> dict:
    """A LabelMe JSON as a dict, LabelError if it is not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LabelError(f"{path}: not a readable LabelMe JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise LabelError(f"{path}: not a LabelMe annotation (no 'shapes' list)")
    for key in ("imageHeight", "imageWidth"):
        if not isinstance(data.get(key), int) or data[key] < 1:
            raise LabelError(f"{path}: {key} must be a positive integer, got {data.get(key)!r}")
    return data


@dataclass
class LabelMeDecoder:
    """Rasterises a LabelMe JSON into class ids with a class config."""

    config: ClassConfig
    remap: np.ndarray | None = None  # uint8, 256 entries: the config's ids -> other ids

    def remapped(self, lut: np.ndarray) -> LabelMeDecoder:
        return replace(self, remap=lut if self.remap is None else lut[self.remap])

    def decode(self, path: Path) -> np.ndarray:
        return self.decode_with_notes(path)[0]

    def decode_with_notes(self, path: Path) -> tuple[np.ndarray, list[str]]:
        """(HxW class ids, notes on shapes that were clipped or skipped); LabelError for a
        file that is not LabelMe or names labels the class config does not know."""
        data = read_annotation(path)
        size = (data["imageWidth"], data["imageHeight"])
        background = self.config.target(BACKGROUND)
        ids = np.full(size[::-1], IGNORE if background is None else background, np.uint8)
        notes, unknown = [], []
        for number, shape in enumerate(data["shapes"], 1):
            label, kind = str(shape.get("label", "")), shape.get("shape_type") or "polygon"
            target = self.config.target(label)
            if target is None:
                unknown.append(label)
                continue
            what = f"shape {number} ({label!r}, {kind})"
            if kind not in AREA_SHAPES:
                notes.append(f"{what} has no area: not used")
                continue
            points = np.asarray(shape.get("points"), np.float64)
            if points.ndim != 2 or points.shape[1] != 2 or len(points) < _MIN_POINTS[kind]:
                notes.append(f"{what} has {len(points)} points: not used")
                continue
            if (
                (points < 0).any()
                or (points[:, 0] > size[0] - 1).any()
                or (points[:, 1] > size[1] - 1).any()
            ):
                notes.append(f"{what} reaches outside the {size[0]}x{size[1]} image: clipped")
            _draw(ids, kind, np.round(points).astype(np.int32), target)
        if unknown:
            names = sorted(set(unknown))
            raise LabelError(
                f"{path}: label names {names} are neither classes of {self.config.source} "
                f"({', '.join(self.config.table.names)}) nor in its remap"
            )
        return (ids if self.remap is None else self.remap[ids]), notes


_MIN_POINTS = {"polygon": 3, "rectangle": 2, "circle": 2}


def _draw(ids: np.ndarray, kind: str, points: np.ndarray, value: int) -> None:
    if kind == "polygon":
        cv2.fillPoly(ids, [points], value)
    elif kind == "rectangle":
        cv2.rectangle(ids, tuple(points[0]), tuple(points[1]), value, thickness=-1)
    else:  # circle: the centre and a point on the circumference
        radius = int(round(float(np.hypot(*(points[1] - points[0])))))
        cv2.circle(ids, tuple(points[0]), radius, value, thickness=-1)


def _pair(json_path: Path, pairing: Pairing, annotated: set[Path]) -> None:
    try:
        data = json.loads(json_path.read_text())
        image_path = str(data.get("imagePath") or "").replace("\\", "/")
        embedded = bool(data.get("imageData"))
    except (OSError, ValueError, AttributeError):
        image_path, embedded = "", True  # the decoder says what is wrong with it
    image = (json_path.parent / image_path).resolve() if image_path else None
    if image is not None and image.is_file():
        annotated.add(image)
        pairing.pairs.append((image, json_path))
    elif embedded:
        pairing.pairs.append((json_path, json_path))  # the image is inside the JSON
    else:
        pairing.labels_without_image.append(json_path)


def labelme_spec(root: Path, split: str | list[str], config: ClassConfig | None) -> DatasetSpec:
    """The LabelMe JSONs under ``<root>/<split>``, with the images they name."""
    if config is None:
        raise ValueError(
            "LabelMe labels have no class order: give a class config with --classes "
            "(data.classes in a training config) that lists the classes"
        )
    pairings = []
    for name in split_names(split):
        folder, pairing, annotated = split_folder(root, name), Pairing(pairs=[]), set()
        for json_path in sorted(folder.rglob("*.json")):
            _pair(json_path, pairing, annotated)
        pairing.images_without_label = [
            p
            for p in sorted(folder.rglob("*"))
            if p.suffix.lower() in IMAGE_SUFFIXES and p.resolve() not in annotated
        ]
        pairings.append(pairing)
    return DatasetSpec(join_pairings(pairings), config.table, LabelMeDecoder(config))
