"""CVAT's "Segmentation mask 1.1" export, read as CVAT writes it (a Pascal VOC layout)::

    labelmap.txt                      # label:color_rgb:parts:actions, background first
    ImageSets/Segmentation/<subset>.txt   # image names without extension, one per line
    SegmentationClass/<name>.png      # colour masks, one colour per label
    SegmentationObject/<name>.png     # instance masks (not used)
    JPEGImages/<name>.<ext>           # the images, when exported with "Save images"

A subset is a split. The labelmap's ``background`` marks unannotated pixels: it is ignored
unless a class config (``--classes``) makes it a class.
"""

from __future__ import annotations

from pathlib import Path

from ..image_files import IMAGE_SUFFIXES
from .class_map import ClassTable
from .datasets import DatasetSpec, LabelDecoder, Pairing, join_pairings, split_names

LABELMAP = "labelmap.txt"
SUBSETS = Path("ImageSets") / "Segmentation"
MASKS = "SegmentationClass"
IMAGES = "JPEGImages"
BACKGROUND = "background"


def read_labelmap(path: Path) -> ClassTable:
    """The labels of a ``labelmap.txt`` (``name:r,g,b:parts:actions`` lines), in file order."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: a CVAT 'Segmentation mask 1.1' export has its labels there "
            "(is this the unzipped export folder?)"
        )
    names, palette = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(":")
        try:
            colour = tuple(int(v) for v in fields[1].split(","))
        except (IndexError, ValueError):
            colour = ()
        if len(colour) != 3 or not all(0 <= v <= 255 for v in colour):
            raise ValueError(f"{path}:{number}: expected 'name:r,g,b::', got {line!r}")
        if colour in palette:
            clash = names[palette.index(colour)]
            raise ValueError(f"{path}:{number}: {fields[0]!r} has the colour of {clash!r}")
        names.append(fields[0].strip())
        palette.append(colour)
    if not names:
        raise ValueError(f"{path}: no labels")
    return ClassTable(names, palette)


def _subset(root: Path, subset: str) -> Pairing:
    listing = root / SUBSETS / f"{subset}.txt"
    if not listing.is_file():
        found = sorted(p.stem for p in (root / SUBSETS).glob("*.txt"))
        raise FileNotFoundError(
            f"subset {subset!r} not found: no {listing} (subsets in the export: "
            f"{', '.join(found) or 'none'})"
        )
    images = {}
    if (root / IMAGES).is_dir():
        for path in sorted((root / IMAGES).rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                images.setdefault(str(path.relative_to(root / IMAGES).with_suffix("")), path)
    pairing = Pairing(pairs=[])
    for name in dict.fromkeys(line.strip() for line in listing.read_text().splitlines()):
        if not name:
            continue
        mask, image = root / MASKS / f"{name}.png", images.get(name)
        if image is None:
            pairing.labels_without_image.append(mask)
        elif not mask.is_file():
            pairing.images_without_label.append(image)
        else:
            pairing.pairs.append((image, mask))
    return pairing


def cvat_spec(root: Path, split: str | list[str]) -> DatasetSpec:
    """A CVAT Segmentation mask export: its labelmap is the raw class table."""
    labels = read_labelmap(root / LABELMAP)
    pairing = join_pairings([_subset(root, s) for s in split_names(split)])
    if pairing.labels_without_image and not (root / IMAGES).is_dir():
        raise FileNotFoundError(
            f"{root} has no {IMAGES}/: export from CVAT with 'Save images' on, or copy the "
            f"images into {root / IMAGES} under the names of {SUBSETS}/*.txt"
        )
    decoder = LabelDecoder(palette=labels.palette)
    return DatasetSpec(pairing, labels, decoder, implicit_ignore=BACKGROUND)
