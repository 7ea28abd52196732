"""Every published view of one segmentation, made one way for the node and ``bisenet infer``.

A confidence threshold first turns uncertain pixels into 255 (unlabelled, never drivable);
ids and confidence are then resized (nearest) to the output size, and the views are made
from them: the palette colours, the colours blended over the input frame, and the cleaned-up
drivable mask. Only the views asked for are computed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import cv2
import numpy as np

from .drivable import DrivableConfig, drivable_mask
from .segmenter import Segmentation

VIEWS = ("labels", "color", "overlay", "confidence", "drivable")
UNLABELLED = 255


@dataclass(frozen=True)
class ViewSettings:
    drivable: DrivableConfig
    output_size: tuple[int, int] = (0, 0)  # (width, height); 0: the input frame's
    confidence_threshold: float = 0.0  # 0..1; pixels below it become UNLABELLED
    overlay_alpha: float = 0.5  # weight of the colours in the overlay


def colorize(ids: np.ndarray, palette: list[tuple[int, int, int]]) -> np.ndarray:
    """HxW class ids -> HxWx3 uint8 RGB; ids without a colour (255 = unlabelled) are black."""
    if ids.ndim != 2:
        raise ValueError(f"expected HxW class ids, got shape {ids.shape}")
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(palette)] = np.asarray(palette, np.uint8).reshape(-1, 3)[:256]
    return lut[ids.astype(np.uint8, copy=False)]


def as_rgb(image: np.ndarray, order: str) -> np.ndarray:
    """A decoded frame (HxW grey, or HxWx3 in ``order`` rgb/bgr) as HxWx3 RGB."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if order == "bgr" else image


def output_size(settings: ViewSettings, shape: tuple[int, ...]) -> tuple[int, int]:
    """(width, height) of the views of a segmentation of this (height, width, ...) shape."""
    width, height = settings.output_size
    return (width or shape[1], height or shape[0])


def render(
    segmentation: Segmentation,
    image: np.ndarray,
    order: str,
    palette: list[tuple[int, int, int]],
    settings: ViewSettings,
    wanted: Collection[str],
) -> dict[str, np.ndarray]:
    """The ``wanted`` views (names from VIEWS) of ``segmentation`` of ``image``.

    ``confidence`` is left out when the segmentation has none (a graph exported without it).
    """
    unknown = set(wanted) - set(VIEWS)
    if unknown:
        raise ValueError(f"unknown views {sorted(unknown)}; views: {', '.join(VIEWS)}")
    ids, confidence = segmentation.ids, segmentation.confidence
    threshold = round(settings.confidence_threshold * 255)
    if threshold > 0 and confidence is not None:
        ids = np.where(confidence >= threshold, ids, UNLABELLED).astype(np.uint8)
    size = output_size(settings, ids.shape)
    if size != (ids.shape[1], ids.shape[0]):
        ids = cv2.resize(ids, size, interpolation=cv2.INTER_NEAREST)
        if confidence is not None:
            confidence = cv2.resize(confidence, size, interpolation=cv2.INTER_NEAREST)
    views = {}
    if "labels" in wanted:
        views["labels"] = ids
    if "confidence" in wanted and confidence is not None:
        views["confidence"] = confidence
    if "color" in wanted or "overlay" in wanted:
        colored = colorize(ids, palette)
        if "color" in wanted:
            views["color"] = colored
        if "overlay" in wanted:
            rgb = as_rgb(image, order)
            if (rgb.shape[1], rgb.shape[0]) != size:
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            alpha = settings.overlay_alpha
            views["overlay"] = cv2.addWeighted(rgb, 1.0 - alpha, colored, alpha, 0.0)
    if "drivable" in wanted:
        views["drivable"] = drivable_mask(ids, settings.drivable)
    return views
