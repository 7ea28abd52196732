"""Frames from an image file, a folder of images or a video file.

Each frame comes as (name, decode): ``decode()`` returns (array, channel order) or raises
ImageError, so that one unreadable file is reported and skipped, not the end of the run.
Files are decoded as the node decodes frames: a truncated JPEG is an error, not a
half-grey picture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from ..image_decoding import read_image_file
from ..image_files import IMAGE_SUFFIXES, image_files

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
Decode = Callable[[], tuple[np.ndarray, str]]


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def frames(path: Path) -> tuple[int, float | None, Iterator[tuple[str, Decode]]]:
    """(frame count, frames per second or None, iterator of (name, decode))."""
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
        names = [str(f.relative_to(path).with_suffix("")).replace("/", "_") for f in files]
        return len(files), None, _file_frames(names, files)
    if is_video(path):
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise ValueError(f"cannot open video {path}")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = capture.get(cv2.CAP_PROP_FPS) or None
        return count, fps, _video_frames(capture)
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return 1, None, _file_frames([path.stem], [path])
    raise ValueError(
        f"{path}: not an image ({', '.join(IMAGE_SUFFIXES)}), a folder of images, a video "
        f"({', '.join(VIDEO_SUFFIXES)}) or a rosbag2"
    )


def _file_frames(names: list[str], files: list[Path]) -> Iterator[tuple[str, Decode]]:
    for name, file in zip(names, files, strict=True):
        yield name, lambda file=file: read_image_file(file)


def _video_frames(capture: cv2.VideoCapture) -> Iterator[tuple[str, Decode]]:
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield f"frame_{index:06d}", lambda frame=frame: (frame, "bgr")
            index += 1
    finally:
        capture.release()
