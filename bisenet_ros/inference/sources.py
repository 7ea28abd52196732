"""Frames from an image file, a folder of images or a video file, as RGB arrays."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..image_files import IMAGE_SUFFIXES, image_files

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as RGB (grey files stay HxW)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    if image.dtype != np.uint8:
        raise ValueError(f"{path}: only 8-bit images are supported, not {image.dtype}")
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def frames(path: Path) -> tuple[int, float | None, Iterator[tuple[str, np.ndarray]]]:
    """(frame count, frames per second or None, iterator of (name, RGB frame))."""
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
        names = [str(f.relative_to(path).with_suffix("")).replace("/", "_") for f in files]
        return len(files), None, ((n, read_rgb(f)) for n, f in zip(names, files, strict=True))
    if is_video(path):
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise ValueError(f"cannot open video {path}")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = capture.get(cv2.CAP_PROP_FPS) or None
        return count, fps, _video_frames(capture)
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return 1, None, iter([(path.stem, read_rgb(path))])
    raise ValueError(
        f"{path}: not an image ({', '.join(IMAGE_SUFFIXES)}), a folder of images, a video "
        f"({', '.join(VIDEO_SUFFIXES)}) or a rosbag2"
    )


def _video_frames(capture: cv2.VideoCapture) -> Iterator[tuple[str, np.ndarray]]:
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield f"frame_{index:06d}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
