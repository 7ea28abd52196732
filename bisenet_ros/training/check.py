"""``bisenet check-dataset``: find the files that would break or poison a training run.

Checks every pair without stopping at the first problem: partners present, both files
readable, sizes equal, label values (colours, label names) within the classes or the ignore
value. Notes what is read but not used (shapes clipped at the image border or without an
area) and images whose size differs from most. Also counts pixels per class, since a class
that never appears cannot be learnt.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..image_decoding import ImageError
from .class_map import IGNORE
from .datasets import LabelError, read_image
from .formats import dataset_spec


@dataclass
class Report:
    """Problems by file, and class frequencies over the readable labels."""

    root: str
    split: list[str]
    class_names: list[str]
    pairs: int = 0
    problems: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)  # read, but not as drawn
    class_pixels: list[int] = field(default_factory=list)
    ignore_pixels: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, path: Path, problem: str) -> None:
        self.problems.setdefault(str(path), []).append(problem)

    def note(self, path: Path, note: str) -> None:
        self.notes.setdefault(str(path), []).append(note)

    def to_dict(self) -> dict:
        total = sum(self.class_pixels) + self.ignore_pixels
        return {
            "root": self.root,
            "split": self.split,
            "pairs": self.pairs,
            "ok": self.ok,
            "problems": self.problems,
            "notes": self.notes,
            "class_pixels": dict(zip(self.class_names, self.class_pixels, strict=True)),
            "class_fraction": {
                n: (c / total if total else 0.0)
                for n, c in zip(self.class_names, self.class_pixels, strict=True)
            },
            "ignore_pixels": self.ignore_pixels,
        }

    def text(self) -> str:
        lines = [f"{self.root} {'+'.join(self.split)}: {self.pairs} pairs"]
        total = sum(self.class_pixels) + self.ignore_pixels
        lines.append("class frequencies (share of all labelled pixels):")
        for name, count in zip(self.class_names, self.class_pixels, strict=True):
            note = "  <- never appears" if count == 0 else ""
            lines.append(f"  {name:<20} {100 * count / max(total, 1):6.2f}%{note}")
        lines.append(f"  {'(ignore)':<20} {100 * self.ignore_pixels / max(total, 1):6.2f}%")
        for title, found in (("notes", self.notes), ("problems", self.problems)):
            count = sum(len(v) for v in found.values())
            if count:
                lines.append(f"{count} {title} in {len(found)} files:")
                for path, items in sorted(found.items()):
                    lines += [f"  {path}: {item}" for item in items]
        if self.ok:
            lines.append("no problems found")
        return "\n".join(lines)


def check_dataset(
    fmt: str,
    root: str | Path,
    split: str | list[str],
    classes: str | Path | None = None,
    progress: bool = True,
) -> Report:
    """Validate every file of ``split``; never raises for a bad file, reports it."""
    split = [split] if isinstance(split, str) else list(split)
    spec = dataset_spec(fmt, root, split, classes)
    report = Report(str(root), split, spec.classes.names, pairs=len(spec.pairing.pairs))
    report.class_pixels = [0] * spec.classes.num_classes
    for path in spec.pairing.images_without_label:
        report.add(path, "image has no annotation")
    for path in spec.pairing.labels_without_image:
        report.add(path, "annotation has no image")
    sizes: dict[Path, tuple[int, int]] = {}
    pairs = tqdm(spec.pairing.pairs, desc="check", unit="pair", disable=not progress)
    for image_path, label_path in pairs:
        try:
            image = read_image(image_path)
            sizes[image_path] = (image.shape[1], image.shape[0])
        except ImageError as error:  # a truncated JPEG too, which OpenCV would half decode
            image = None
            detail = error.detail.removeprefix(f"{image_path}: ")
            report.add(image_path, f"cannot read the image ({detail})")
        try:
            label, notes = spec.decoder.decode_with_notes(label_path)
        except LabelError as error:
            report.add(label_path, str(error).removeprefix(f"{label_path}: "))
            continue
        for note in notes:
            report.note(label_path, note)
        if image is not None and image.shape[:2] != label.shape[:2]:
            report.add(
                label_path,
                f"label size {label.shape[1]}x{label.shape[0]} differs from image "
                f"{image_path.name} size {image.shape[1]}x{image.shape[0]} (WxH)",
            )
        counts = np.bincount(label.ravel(), minlength=256)
        for cls in range(spec.classes.num_classes):
            report.class_pixels[cls] += int(counts[cls])
        report.ignore_pixels += int(counts[IGNORE])
    _note_mixed_sizes(report, sizes)
    return report


def _note_mixed_sizes(report: Report, sizes: dict[Path, tuple[int, int]]) -> None:
    """Images whose size is not the most common one: fine for training (crops), but often
    a frame from another camera or a resized export."""
    common = Counter(sizes.values())
    if len(common) < 2:
        return
    (width, height), count = common.most_common(1)[0]
    for path, size in sizes.items():
        if size != (width, height):
            report.note(
                path,
                f"image is {size[0]}x{size[1]}; {count} of the {len(sizes)} images are "
                f"{width}x{height}",
            )
