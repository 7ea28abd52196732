"""Offline inference: frames from files or a rosbag2 through a Segmenter into images,
an overlay video and optionally a copy of the bag with label topics."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..image_decoding import ImageError
from . import bag, sources
from .drivable import DrivableConfig
from .segmenter import Segmenter
from .views import ViewSettings, render

log = logging.getLogger(__name__)


@dataclass
class InferOptions:
    save: list[str] = field(default_factory=lambda: ["labels", "overlay"])
    alpha: float = 0.5
    video: Path | None = None
    fps: float | None = None
    drivable_classes: list[int] | None = None
    topic: str | None = None
    output_bag: Path | None = None
    bag_storage: str = "mcap"


class _Outputs:
    """Turns one frame's segmentation into the requested files and planes."""

    def __init__(self, segmenter: Segmenter, folder: Path, options: InferOptions) -> None:
        self.segmenter = segmenter
        self.folder = folder
        self.options = options
        classes = options.drivable_classes
        drivable = DrivableConfig(
            classes if classes is not None else segmenter.manifest.drivable_ids
        )
        if "drivable" in options.save and not drivable.class_ids:
            raise ValueError("the manifest lists no drivable classes; pass --drivable-classes")
        unknown = segmenter.manifest.unknown_class_ids(drivable.class_ids)
        if unknown:
            last = segmenter.manifest.num_classes - 1
            raise ValueError(f"--drivable-classes {unknown}: the model's classes are 0 to {last}")
        self.settings = ViewSettings(drivable, overlay_alpha=options.alpha)
        self.wanted = set(options.save) | {"labels"}  # labels: the bag's planes
        if drivable.class_ids:
            self.wanted.add("drivable")
        if options.video:
            self.wanted.add("overlay")
        self.video: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(
        self, name: str, image: np.ndarray, order: str, fps: float | None
    ) -> dict[str, tuple]:
        want_conf = "confidence" in self.options.save
        (result,) = self.segmenter.segment(image, channel_order=order, confidence=want_conf)
        palette = self.segmenter.manifest.palette
        views = render(result, image, order, palette, self.settings, self.wanted)
        for kind in self.options.save:
            picture = views[kind]
            if picture.ndim == 3:
                picture = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(self.folder / f"{name}_{kind}.png"), picture)
        if self.options.video:
            self._write_video(views["overlay"], fps)
        return {kind: (views[kind], "mono8") for kind in ("labels", "drivable") if kind in views}

    def _write_video(self, frame_rgb: np.ndarray, fps: float | None) -> None:
        height, width = frame_rgb.shape[:2]
        if self.video is None:
            path = self.options.video
            path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))
            rate = self.options.fps or fps or 10.0
            self.video = cv2.VideoWriter(str(path), fourcc, rate, (width, height))
            if not self.video.isOpened():
                raise ValueError(f"cannot write video {path}")
            self.size = (width, height)
        if (width, height) != self.size:  # a video has one frame size
            frame_rgb = cv2.resize(frame_rgb, self.size, interpolation=cv2.INTER_AREA)
        self.video.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self.video is not None:
            self.video.release()


def check_source(source: Path, options: InferOptions) -> None:
    """Raise ValueError/FileNotFoundError for an input ``infer`` cannot read: run before the
    model loads, so that a typo costs no loading time and creates no output folder."""
    if not source.exists():
        raise FileNotFoundError(f"input {source} does not exist")
    bag.check_metadata(source)
    if bag.is_bag(source):
        bag.choose_topic(source, options.topic)
        return
    if options.output_bag:
        raise ValueError("--output-bag needs a rosbag2 input")
    sources.frames(source)  # lists a folder, opens a video: nothing is decoded yet


class _Unreadable:
    """Frames that cannot be decoded: skipped and counted by reason, the first of each reason
    logged with its name, so one bad file or message does not end the run."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()

    def note(self, name: str, error: ImageError) -> None:
        if not self.counts[error.reason]:
            detail, reason = error.detail, error.reason
            log.warning("skipped %s: %s (%s; more of these are only counted)", name, detail, reason)
        self.counts[error.reason] += 1

    def summary(self, source: Path, segmented: int) -> None:
        """Log how many were skipped; ValueError if nothing could be read at all."""
        skipped = sum(self.counts.values())
        reasons = ", ".join(f"{reason} {n}" for reason, n in self.counts.most_common())
        if skipped and not segmented:
            raise ValueError(f"no frame of {source} could be read ({reasons}); see above")
        if skipped:
            log.warning("skipped %d unreadable frames of %s (%s)", skipped, source, reasons)


def infer(segmenter: Segmenter, source: Path, output: Path, options: InferOptions) -> int:
    """Segment every readable frame of ``source`` into ``output``; returns how many."""
    check_source(source, options)
    outputs = _Outputs(segmenter, output, options)
    unreadable = _Unreadable()
    try:
        run = _infer_bag if bag.is_bag(source) else _infer_files
        with logging_redirect_tqdm():  # a skipped frame's warning above the bar, not inside it
            segmented = run(source, outputs, options, unreadable)
    finally:
        outputs.close()
    unreadable.summary(source, segmented)
    return segmented


def _infer_files(
    source: Path, outputs: _Outputs, options: InferOptions, unreadable: _Unreadable
) -> int:
    count, fps, frames = sources.frames(source)
    segmented = 0
    for name, decode in tqdm(frames, total=count, unit="frame", disable=count < 2):
        try:
            image, order = decode()
        except ImageError as error:
            unreadable.note(name, error)
            continue
        outputs(name, image, order, fps)
        segmented += 1
    return segmented


def _infer_bag(
    source: Path, outputs: _Outputs, options: InferOptions, unreadable: _Unreadable
) -> int:
    topic = bag.choose_topic(source, options.topic)
    total = bag.count_messages(source, topic)
    progress = tqdm(total=total, unit="msg", disable=total < 2)
    base = topic.rstrip("/")
    segmented = 0

    def process(timestamp: int, header: object, decode: sources.Decode) -> dict:
        nonlocal segmented
        progress.update()
        try:
            image, order = decode()
        except ImageError as error:
            unreadable.note(f"the {topic} message at {timestamp} ns", error)
            return {}
        planes = outputs(str(timestamp), image, order, None)
        segmented += 1
        return {f"{base}/{name}": plane for name, plane in planes.items()}

    try:
        bag.segment_bag(source, topic, process, options.output_bag, options.bag_storage)
    finally:
        progress.close()
    return segmented
