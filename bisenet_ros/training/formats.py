"""Every dataset format by name, and a dataset resolved with its class config.

``--format`` / ``data.format`` choose the reader; ``--classes`` / ``data.classes`` name a
class config (``class_map``) that turns the format's raw classes into the classes to learn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..choices import DATASET_FORMATS
from .class_map import ClassConfig, ClassTable, by_name, read_class_config, remap_lut
from .cvat import cvat_spec
from .datasets import (
    DatasetSpec,
    SegmentationDataset,
    camvid_spec,
    cityscapes_spec,
    custom_spec,
)
from .labelme import labelme_spec

# formats whose files carry their own raw classes; labelme takes its classes from the config
RAW_FORMATS = {
    "camvid": camvid_spec,
    "cityscapes": cityscapes_spec,
    "custom": custom_spec,
    "cvat": cvat_spec,
}


def dataset_spec(
    fmt: str, root: str | Path, split: str | list[str], classes: str | Path | None = None
) -> DatasetSpec:
    """Pairs, class table and decoder of a format's split(s), remapped by the class config
    file ``classes`` when given."""
    if fmt not in DATASET_FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r}; choose one of {DATASET_FORMATS}")
    config = read_class_config(classes) if classes else None
    if fmt == "labelme":
        return labelme_spec(Path(root), split, config)
    spec = RAW_FORMATS[fmt](Path(root), split)
    if config is None and spec.implicit_ignore:  # its other raw classes, as they are
        kept = [i for i, n in enumerate(spec.classes.names) if n != spec.implicit_ignore]
        table = ClassTable([spec.classes.names[i] for i in kept],
                           [spec.classes.palette[i] for i in kept])  # fmt: skip
        config = ClassConfig(table, {}, f"{fmt} export {root}")
    if config is None:
        return spec
    lut = remap_lut(spec.classes, config, spec.implicit_ignore)
    return replace(spec, classes=config.table, decoder=spec.decoder.remapped(lut))


def build_dataset(
    fmt: str,
    root: str | Path,
    split: str | list[str],
    transform: Callable | None = None,
    classes: str | Path | None = None,
) -> SegmentationDataset:
    """A dataset ready for training or evaluation; unmatched files are an error."""
    spec = dataset_spec(fmt, root, split, classes)
    unmatched = spec.pairing.images_without_label + spec.pairing.labels_without_image
    if unmatched:
        shown = ", ".join(str(p) for p in unmatched[:5])
        raise FileNotFoundError(
            f"{len(unmatched)} files without a partner in {root} ({split}): {shown}; "
            "run `bisenet check-dataset` for the full report"
        )
    return SegmentationDataset(spec.pairing.pairs, spec.classes, spec.decoder, transform)


def in_model_order(dataset: SegmentationDataset, model_names: list[str]) -> None:
    """Renumber ``dataset``'s labels into the model's class order, matched by name;
    ValueError naming the difference when the class names are not the same."""
    old = dataset.classes
    lut = by_name(model_names, old.names)
    if lut is not None:
        dataset.decoder = dataset.decoder.remapped(lut)
        dataset.classes = ClassTable(
            list(model_names),
            [old.palette[old.names.index(n)] for n in model_names],
            sorted(int(lut[i]) for i in old.drivable_ids),
        )
