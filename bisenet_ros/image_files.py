"""Image files on disk: which suffixes count as images, and an even sample of a folder.

Inference, calibration, benchmarks and datasets all read the same kinds of files.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def image_files(folder: str | Path) -> list[Path]:
    """Every image under ``folder`` (recursively), sorted by path."""
    return sorted(p for p in Path(folder).rglob("*") if is_image_file(p))


def spread(folder: str | Path, limit: int) -> list[Path]:
    """Up to ``limit`` images from ``folder``, spread evenly over its sorted list."""
    files = image_files(folder)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    step = max(1, len(files) // limit)
    return files[::step][:limit]
