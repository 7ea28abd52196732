"""How a dataset's own classes become the classes a model learns.

Every dataset arrives with raw classes: CamVid's 11, the names and colours of a CVAT
labelmap, the label names typed into LabelMe. A class config (``classes`` and ``remap``, in
the dataset's ``dataset.yaml`` or the file ``--classes`` / ``data.classes`` names) lists the
classes to learn, in id order, and says where each raw class goes::

    classes:
      - {name: drivable, color: [128, 64, 128], drivable: true}
      - {name: obstacle, color: [220, 20, 60]}
      - {name: background, color: [70, 70, 70]}
    remap:                  # raw class (name, raw id or "r,g,b") -> class name, or ignore
      Road: drivable
      LaneMkgsDriv: drivable
      Car: obstacle
      Sky: background

A raw class not in ``remap`` keeps its name, and must then be one of ``classes``: nothing is
matched by guesswork, so a raw class that is neither is an error naming it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..manifest import default_palette

IGNORE = 255  # train id of pixels that do not count
IGNORE_NAME = "ignore"  # the remap target that makes a raw class IGNORE


@dataclass
class ClassTable:
    """Class names and colours of a dataset, and its drivable classes."""

    names: list[str]
    palette: list[tuple[int, int, int]]
    drivable_ids: list[int] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.names)


@dataclass
class ClassConfig:
    """The classes to learn and where the raw classes go (``remap`` keys are raw names,
    raw ids or ``"r,g,b"`` colours)."""

    table: ClassTable
    remap: dict[str | int, str]
    source: str

    def target(
        self, name: str, raw_id: int | None = None, colour=None, by_name: bool = True
    ) -> int | None:
        """The class id (or IGNORE) of a raw class, or None when the config does not say;
        ``by_name`` False: only an entry of ``remap`` says."""
        keys = [name, raw_id, None if colour is None else ",".join(str(int(v)) for v in colour)]
        fallback = name if by_name else None
        mapped = next((self.remap[k] for k in keys if k is not None and k in self.remap), fallback)
        if mapped == IGNORE_NAME:
            return IGNORE
        return self.table.names.index(mapped) if mapped in self.table.names else None


def class_table(entries: object, where: str) -> ClassTable:
    """A ``classes`` list of ``{name, color, drivable}`` entries as a ClassTable."""
    if not entries or not all(isinstance(e, dict) and "name" in e for e in entries):
        raise ValueError(f"{where}: 'classes' must list {{name, color, drivable}} entries")
    names = [str(e["name"]) for e in entries]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated or IGNORE_NAME in names:
        raise ValueError(f"{where}: class names must be unique and not {IGNORE_NAME!r}")
    if any("color" not in e for e in entries):
        palette = default_palette(len(names))
    else:
        palette = [tuple(int(v) for v in e["color"]) for e in entries]
    drivable = [i for i, e in enumerate(entries) if e.get("drivable", False)]
    return ClassTable(names, palette, drivable)


def class_config(meta: dict, where: str) -> ClassConfig | None:
    """The ``classes`` and ``remap`` of a parsed YAML mapping, or None when it has neither."""
    if "classes" not in meta:
        if "remap" in meta:
            raise ValueError(f"{where}: 'remap' needs the 'classes' it maps to")
        return None
    table = class_table(meta["classes"], where)
    remap = meta.get("remap") or {}
    if not isinstance(remap, dict):
        raise ValueError(f"{where}: 'remap' must map raw classes to class names or ignore")
    targets = {*table.names, IGNORE_NAME}
    for raw, mapped in remap.items():
        if mapped not in targets:
            close = difflib.get_close_matches(str(mapped), sorted(targets), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"{where}: remap {raw!r}: {mapped!r} is not one of the classes "
                f"({', '.join(table.names)}) nor {IGNORE_NAME!r}{hint}"
            )
    remap = {_colour_key(k): str(v) for k, v in remap.items()}
    return ClassConfig(table, remap, where)


def _colour_key(key: str | int) -> str | int:
    """``"128, 64, 128"`` -> ``"128,64,128"``; names and raw ids as they are."""
    parts = key.split(",") if isinstance(key, str) else []
    if len(parts) == 3 and all(p.strip().isdigit() for p in parts):
        return ",".join(str(int(p)) for p in parts)
    return key


def read_class_config(path: str | Path) -> ClassConfig:
    """A class config file (``--classes``): a YAML mapping with ``classes`` and ``remap``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class config not found: {path}")
    meta = yaml.safe_load(path.read_text()) or {}
    unknown = set(meta) - {"classes", "remap"} if isinstance(meta, dict) else {"(not a mapping)"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; a class config holds "
                         "'classes' and 'remap'")  # fmt: skip
    return class_config(meta, str(path))


def remap_lut(raw: ClassTable, config: ClassConfig, implicit_ignore: str = "") -> np.ndarray:
    """The 256-entry LUT from raw class ids (and IGNORE) to the config's class ids.

    Every raw class must go somewhere; ``implicit_ignore`` names a raw class that is
    ignored unless ``remap`` maps it (CVAT's ``background``: unannotated pixels, which a
    class of the same name must not take silently).
    """
    lut = np.full(256, IGNORE, np.uint8)
    unmapped = []
    for raw_id, (name, colour) in enumerate(zip(raw.names, raw.palette, strict=True)):
        implicit = name == implicit_ignore
        target = config.target(name, raw_id, colour, by_name=not implicit)
        if target is None and implicit:
            target = IGNORE
        if target is None:
            unmapped.append(name)
        else:
            lut[raw_id] = target
    if unmapped:
        raise ValueError(
            f"{config.source}: the dataset's classes {unmapped} are neither classes "
            f"({', '.join(config.table.names)}) nor in 'remap': map each to a class or to "
            f"{IGNORE_NAME}"
        )
    colours = {",".join(str(int(v)) for v in c) for c in raw.palette}
    known = {*raw.names, *range(raw.num_classes), *colours}
    stray = [k for k in config.remap if k not in known]
    if stray:
        raise ValueError(
            f"{config.source}: remap names {stray}, which are not classes of the dataset "
            f"(its classes: {', '.join(raw.names)})"
        )
    return lut


def by_name(model_names: list[str], dataset_names: list[str]) -> np.ndarray | None:
    """The LUT that renumbers the dataset's class ids into the model's, matched by name;
    None when they already agree. ValueError naming the difference when the names differ."""
    if model_names == dataset_names:
        return None
    missing = [n for n in model_names if n not in dataset_names]
    extra = [n for n in dataset_names if n not in model_names]
    if missing or extra:
        raise ValueError(
            f"the model's classes and the dataset's differ by name: only the model has "
            f"{missing or 'none'}, only the dataset has {extra or 'none'}; give the dataset a "
            "class config (--classes) whose classes are the model's"
        )
    lut = np.full(256, IGNORE, np.uint8)
    lut[: len(dataset_names)] = [model_names.index(n) for n in dataset_names]
    return lut
