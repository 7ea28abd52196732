"""Segmentation datasets: the label decoders, the dataset, pairing of files, and the
CamVid, Cityscapes and custom folder/list formats (annotation-tool exports: ``cvat``,
``labelme``; every format by name: ``formats``).

Every format is reduced to the same thing: a list of (image, label) file pairs, a class
table, and a way to turn a label file into train ids ``0..C-1`` with 255 for ignored
pixels. A label value that is neither a class nor the ignore value is an error naming the
file and the values, because such labels are what turns losses into NaN.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import yaml
from torch.utils.data import Dataset

from ..image_decoding import ImageError, decode_image_bytes, read_image_file
from ..image_files import IMAGE_SUFFIXES
from ..manifest import CAMVID, CITYSCAPES
from .class_map import IGNORE, ClassTable, class_table

# Official Cityscapes labelIds -> trainIds (cityscapesscripts/helpers/labels.py).
CITYSCAPES_ID_TO_TRAIN = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
    24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip
CITYSCAPES_NUM_IDS = 34  # label ids 0..33 are valid; the others map to ignore


class LabelError(ValueError):
    """A label file holds values that are neither classes nor the ignore value."""


@dataclass
class LabelDecoder:
    """Turns a label file into train ids (255 = ignore), or raises ``LabelError``.

    ``lut`` maps every raw uint8 value to a train id; raw values marked invalid in it (-1)
    are errors. ``palette`` set means the label PNG is colour-coded.
    """

    lut: np.ndarray | None = None  # ids labels: int16, 256 entries: id, 255, -1 for invalid
    palette: list[tuple[int, int, int]] | None = None
    ignore_color: tuple[int, int, int] | None = None
    remap: np.ndarray | None = None  # uint8, 256 entries: the ids above -> the learnt classes

    def remapped(self, lut: np.ndarray) -> LabelDecoder:
        """This decoder followed by ``lut`` (raw class ids -> other class ids)."""
        return replace(self, remap=lut if self.remap is None else lut[self.remap])

    @classmethod
    def for_ids(cls, num_classes: int, ignore_value: int | None) -> LabelDecoder:
        lut = np.full(256, -1, np.int16)
        lut[:num_classes] = np.arange(num_classes)
        if ignore_value is not None:
            lut[ignore_value] = IGNORE
        return cls(lut)

    def raw(self, path: Path) -> np.ndarray:
        """The label as stored: (H, W) uint8 values, or (H, W, 3) RGB for colour labels."""
        flag = cv2.IMREAD_COLOR if self.palette else cv2.IMREAD_UNCHANGED
        label = cv2.imread(str(path), flag)
        if label is None:
            raise LabelError(f"{path}: cannot read the label image")
        if self.palette:
            return label[:, :, ::-1]
        if label.ndim != 2 or label.dtype != np.uint8:
            raise LabelError(
                f"{path}: label must be a single-channel 8-bit image of class ids, "
                f"got shape {label.shape} dtype {label.dtype} (colour labels need "
                "label_format: color)"
            )
        return label

    def decode(self, path: Path) -> np.ndarray:
        ids = self._decode_colours(self.raw(path), path) if self.palette else self._ids(path)
        return ids if self.remap is None else self.remap[ids]

    def decode_with_notes(self, path: Path) -> tuple[np.ndarray, list[str]]:
        """``decode``, and what was read but not used (label images: nothing)."""
        return self.decode(path), []

    def _ids(self, path: Path) -> np.ndarray:
        raw = self.raw(path)
        ids = self.lut[raw]
        if (ids < 0).any():
            bad = np.unique(raw[ids < 0]).tolist()
            valid = np.flatnonzero(self.lut >= 0).tolist()
            raise LabelError(
                f"{path}: label values {bad[:20]} are neither class ids nor the ignore value "
                f"(valid raw values: {_ranges(valid)})"
            )
        return ids.astype(np.uint8)

    def _decode_colours(self, rgb: np.ndarray, path: Path) -> np.ndarray:
        code = _colour_code(rgb)
        out = np.full(code.shape, -1, np.int16)
        for cls, colour in enumerate(self.palette):
            out[code == _colour_code(np.array(colour))] = cls
        if self.ignore_color is not None:
            out[code == _colour_code(np.array(self.ignore_color))] = IGNORE
        if (out < 0).any():
            colours, counts = np.unique(rgb[out < 0], axis=0, return_counts=True)
            order = np.argsort(-counts)[:10]
            bad = ", ".join(
                f"({','.join(str(int(v)) for v in colours[i])}) x {counts[i]} px" for i in order
            )
            hint = (
                "" if self.ignore_color is not None
                else "; if one of them marks unlabelled pixels, set ignore_color: [r, g, b] "
                "in dataset.yaml"
            )  # fmt: skip
            raise LabelError(
                f"{path}: {len(colours)} colours are neither class colours nor the ignore "
                f"colour: {bad}{hint}"
            )
        return out.astype(np.uint8)


def _colour_code(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _ranges(values: list[int]) -> str:
    """[0,1,2,3,255] -> '0-3, 255'."""
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ", ".join(parts)


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 (H, W, 3), decoded as the node decodes frames: a truncated JPEG is an error
    (OpenCV alone would return it partly grey, and it would be learnt from). A ``.json``
    path is a LabelMe annotation whose image is embedded in it (``imageData``)."""
    try:
        image, _ = embedded_image(path) if path.suffix == ".json" else read_image_file(path)
    except ImageError as error:
        raise ImageError(error.reason, f"{path}: {error.detail}") from None
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB)


def embedded_image(path: Path) -> tuple[np.ndarray, str]:
    """The image a LabelMe JSON carries base64-encoded in ``imageData``, decoded like a file."""
    try:
        data = base64.b64decode(json.loads(path.read_text())["imageData"], validate=True)
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as error:
        raise ImageError("unreadable", f"no readable embedded imageData ({error})") from None
    return decode_image_bytes(data)


class SegmentationDataset(Dataset):
    """(image, label) pairs decoded to RGB and train ids, then passed through ``transform``.

    An index may be an ``int`` or ``(int, seed)``; the seed (from the sampler) drives the
    random augmentation, so a sample looks the same whichever process or worker loads it.
    """

    def __init__(
        self,
        pairs: list[tuple[Path, Path]],
        classes: ClassTable,
        decoder: LabelDecoder,
        transform: Callable | None = None,
    ) -> None:
        if not pairs:
            raise FileNotFoundError("the dataset has no (image, label) pairs")
        self.pairs = pairs
        self.classes = classes
        self.decoder = decoder
        self.transform = transform

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, label_path = self.pairs[index]
        image, label = read_image(image_path), self.decoder.decode(label_path)
        if image.shape[:2] != label.shape[:2]:
            raise LabelError(
                f"{label_path}: label size {label.shape[:2]} differs from image "
                f"{image_path.name} size {image.shape[:2]}"
            )
        return image, label

    def __getitem__(self, index):
        seed = None
        if isinstance(index, (tuple, list)):
            index, seed = index
        image, label = self.load(index)
        if self.transform is None:
            return image, label
        return self.transform(image, label, np.random.default_rng(seed))


# --- pair discovery ---------------------------------------------------------------------


@dataclass
class Pairing:
    """Result of matching image and label files: pairs plus what did not match."""

    pairs: list[tuple[Path, Path]]
    images_without_label: list[Path] = field(default_factory=list)
    labels_without_image: list[Path] = field(default_factory=list)


def pair_folders(
    image_dir: Path, label_dir: Path, image_suffix: str = "", label_suffix: str = ""
) -> Pairing:
    """Match files by name: ``<stem><image_suffix>.ext`` with ``<stem><label_suffix>.png``."""
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"dataset folder not found: {folder}")

    def by_stem(folder: Path, suffix: str) -> dict[str, Path]:
        found = {}
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.stem.endswith(suffix):
                rel = path.relative_to(folder).with_suffix("")
                found[str(rel)[: len(str(rel)) - len(suffix)]] = path
        return found

    images, labels = by_stem(image_dir, image_suffix), by_stem(label_dir, label_suffix)
    return Pairing(
        pairs=[(images[k], labels[k]) for k in sorted(images) if k in labels],
        images_without_label=[images[k] for k in sorted(images) if k not in labels],
        labels_without_image=[labels[k] for k in sorted(labels) if k not in images],
    )


def pair_list_file(list_file: Path, root: Path) -> Pairing:
    """Pairs from a text file of ``image label`` lines, paths relative to ``root``."""
    if not list_file.is_file():
        raise FileNotFoundError(f"list file not found: {list_file}")
    pairing = Pairing(pairs=[])
    for number, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2:
            raise ValueError(f"{list_file}:{number}: expected 'image label', got {line!r}")
        image, label = root / fields[0], root / fields[1]
        if not image.is_file():
            pairing.labels_without_image.append(label)
        elif not label.is_file():
            pairing.images_without_label.append(image)
        else:
            pairing.pairs.append((image, label))
    return pairing


# --- the formats ------------------------------------------------------------------------


@dataclass
class DatasetSpec:
    """Everything a format resolves to for one or more splits."""

    pairing: Pairing
    classes: ClassTable
    decoder: LabelDecoder  # or any object with its decode and decode_with_notes
    implicit_ignore: str = ""  # a raw class ignored unless a class config names it


def split_names(split: str | list[str]) -> list[str]:
    return [split] if isinstance(split, str) else list(split)


def split_folder(root: Path, split: str) -> Path:
    """``root/<split>``, or FileNotFoundError naming the split and the ones that exist."""
    folder = root / split
    if not folder.is_dir():
        found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise FileNotFoundError(
            f"split {split!r} not found: no folder {folder} (folders in {root}: "
            f"{', '.join(found) or 'none'})"
        )
    return folder


def join_pairings(pairings: list[Pairing]) -> Pairing:
    out = Pairing(pairs=[])
    for p in pairings:
        out.pairs += p.pairs
        out.images_without_label += p.images_without_label
        out.labels_without_image += p.labels_without_image
    return out


def camvid_spec(root: Path, split: str | list[str]) -> DatasetSpec:
    """CamVid (SegNet 11 classes): ``<split>/images/*.jpg``, ``<split>/labels/*.png``; 11 = void."""
    classes = ClassTable([n for n, _ in CAMVID], [c for _, c in CAMVID], drivable_ids=[3])
    pairing = join_pairings(
        [
            pair_folders(split_folder(root, s) / "images", root / s / "labels")
            for s in split_names(split)
        ]
    )
    return DatasetSpec(pairing, classes, LabelDecoder.for_ids(len(CAMVID), ignore_value=11))


def cityscapes_spec(root: Path, split: str | list[str]) -> DatasetSpec:
    """Cityscapes: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and ``gtFine`` labelIds."""
    classes = ClassTable([n for n, _ in CITYSCAPES], [c for _, c in CITYSCAPES], drivable_ids=[0])
    lut = np.full(256, -1, np.int16)
    lut[:CITYSCAPES_NUM_IDS] = IGNORE
    for label_id, train_id in CITYSCAPES_ID_TO_TRAIN.items():
        lut[label_id] = train_id
    pairing = join_pairings(
        [
            pair_folders(
                root / "leftImg8bit" / s, root / "gtFine" / s, "_leftImg8bit", "_gtFine_labelIds"
            )
            for s in split_names(split)
        ]
    )
    return DatasetSpec(pairing, classes, LabelDecoder(lut))


CUSTOM_FILE = "dataset.yaml"


def custom_spec(root: Path, split: str | list[str]) -> DatasetSpec:
    """A user's dataset described by ``<root>/dataset.yaml``.

    Keys: ``classes`` (list of ``{name, color: [r, g, b], drivable: bool}``),
    ``ignore_index`` (raw label value or ``null``), ``ignore_color`` (for colour labels),
    ``label_format`` (``ids`` or ``color``), and ``splits``: per split either a list file
    of ``image label`` lines or ``{images: folder, labels: folder}``; a split not listed
    defaults to ``<split>/images`` and ``<split>/labels``.
    """
    meta_path = root / CUSTOM_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"custom dataset needs {meta_path} (class table and layout)")
    meta = yaml.safe_load(meta_path.read_text()) or {}
    unknown = set(meta) - {"classes", "ignore_index", "ignore_color", "label_format", "splits"}
    if unknown:
        raise ValueError(f"{meta_path}: unknown keys {sorted(unknown)}")
    classes = class_table(meta.get("classes"), str(meta_path))
    names, palette = classes.names, classes.palette

    label_format = meta.get("label_format", "ids")
    if label_format == "ids":
        decoder = LabelDecoder.for_ids(len(names), meta.get("ignore_index", IGNORE))
    elif label_format == "color":
        ignore = meta.get("ignore_color")
        decoder = LabelDecoder(None, palette, tuple(int(v) for v in ignore) if ignore else None)
    else:
        raise ValueError(f"{meta_path}: label_format must be 'ids' or 'color'")

    layouts = meta.get("splits") or {}
    pairings = []
    for s in split_names(split):
        if s not in layouts:
            split_folder(root, s)
        layout = layouts.get(s, {"images": f"{s}/images", "labels": f"{s}/labels"})
        if isinstance(layout, str):
            pairings.append(pair_list_file(root / layout, root))
        else:
            pairings.append(pair_folders(root / layout["images"], root / layout["labels"]))
    return DatasetSpec(join_pairings(pairings), classes, decoder)
