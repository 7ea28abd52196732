"""Views for people: class ids painted with the manifest's palette, and blended overlays."""

from __future__ import annotations

import numpy as np


def colorize(ids: np.ndarray, palette: list[tuple[int, int, int]]) -> np.ndarray:
    """HxW class ids -> HxWx3 uint8 RGB; ids without a colour (255 = unlabelled) are black."""
    if ids.ndim != 2:
        raise ValueError(f"expected HxW class ids, got shape {ids.shape}")
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(palette)] = np.asarray(palette, np.uint8).reshape(-1, 3)[:256]
    return lut[ids.astype(np.uint8, copy=False)]


def overlay(image_rgb: np.ndarray, colored: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend ``colored`` over ``image_rgb`` (same HxW; grey images are expanded): alpha * colour."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], not {alpha}")
    if image_rgb.ndim == 2:
        image_rgb = np.repeat(image_rgb[:, :, None], 3, axis=2)
    if image_rgb.shape != colored.shape:
        raise ValueError(f"image {image_rgb.shape} and colour mask {colored.shape} differ in size")
    blend = image_rgb.astype(np.float32) * (1.0 - alpha) + colored.astype(np.float32) * alpha
    return np.round(blend).astype(np.uint8)
