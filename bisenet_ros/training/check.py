"""``bisenet check-dataset``: find the files that would break or poison a training run.

Checks every pair without stopping at the first problem: partners present, both files
readable, sizes equal, label values within the classes or the ignore value. Also counts
pixels per class, since a class that never appears cannot be learnt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..image_decoding import ImageError, read_image_file
from .datasets import IGNORE, LabelError, dataset_spec


@dataclass
class Report:
    """Problems by file, and class frequencies over the readable labels."""

    root: str
    split: list[str]
    class_names: list[str]
    pairs: int = 0
    problems: dict[str, list[str]] = field(default_factory=dict)
    class_pixels: list[int] = field(default_factory=list)
    ignore_pixels: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, path: Path, problem: str) -> None:
        self.problems.setdefault(str(path), []).append(problem)

    def to_dict(self) -> dict:
        total = sum(self.class_pixels) + self.ignore_pixels
        return {
            "root": self.root,
            "split": self.split,
            "pairs": self.pairs,
            "ok": self.ok,
            "problems": self.problems,
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
        if self.ok:
            lines.append("no problems found")
        else:
            count = sum(len(v) for v in self.problems.values())
            lines.append(f"{count} problems in {len(self.problems)} files:")
            for path, problems in sorted(self.problems.items()):
                for problem in problems:
                    lines.append(f"  {path}: {problem}")
        return "\n".join(lines)


def check_dataset(
    fmt: str, root: str | Path, split: str | list[str], progress: bool = True
) -> Report:
    """Validate every file of ``split``; never raises for a bad file, reports it."""
    split = [split] if isinstance(split, str) else list(split)
    spec = dataset_spec(fmt, root, split)
    report = Report(str(root), split, spec.classes.names, pairs=len(spec.pairing.pairs))
    report.class_pixels = [0] * spec.classes.num_classes
    for path in spec.pairing.images_without_label:
        report.add(path, "image has no label file")
    for path in spec.pairing.labels_without_image:
        report.add(path, "label has no image file")
    pairs = tqdm(spec.pairing.pairs, desc="check", unit="pair", disable=not progress)
    for image_path, label_path in pairs:
        try:
            image, _ = read_image_file(image_path)
        except ImageError as error:  # a truncated JPEG too, which OpenCV would half decode
            image = None
            report.add(image_path, f"cannot read the image ({error.detail})")
        try:
            label = spec.decoder.decode(label_path)
        except LabelError as error:
            report.add(label_path, str(error).removeprefix(f"{label_path}: "))
            continue
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
    return report
