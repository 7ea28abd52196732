"""Augmentation and normalisation in plain OpenCV/NumPy.

All randomness comes from the ``numpy.random.Generator`` passed in, which the sampler
seeds per sample: the same run always sees the same crops, whichever process loads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .datasets import IGNORE


def normalise(image: np.ndarray, mean, std) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float32 (3, H, W): ``(x / 255 - mean) / std``."""
    x = image.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


@dataclass
class TrainAugment:
    """Random scale, crop (padding with ignore), horizontal flip, colour jitter."""

    crop_size: tuple[int, int]
    scale_range: tuple[float, float]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    hflip: bool = True
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        scale = rng.uniform(*self.scale_range)
        h, w = label.shape
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
        image, label = self._crop(image, label, rng)
        if self.hflip and rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        image = self._jitter(image, rng)
        return normalise(image, self.mean, self.std), torch.from_numpy(label.astype(np.int64))

    def _crop(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        ch, cw = self.crop_size
        h, w = label.shape
        pad_h, pad_w = max(ch - h, 0), max(cw - w, 0)
        if pad_h or pad_w:
            # Padding is centred on a random offset; padded pixels are ignored by the loss.
            top, left = int(rng.integers(0, pad_h + 1)), int(rng.integers(0, pad_w + 1))
            border = (top, pad_h - top, left, pad_w - left)
            image = cv2.copyMakeBorder(image, *border, cv2.BORDER_CONSTANT, value=(0, 0, 0))
            label = cv2.copyMakeBorder(label, *border, cv2.BORDER_CONSTANT, value=IGNORE)
            h, w = label.shape
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        return image[y : y + ch, x : x + cw], label[y : y + ch, x : x + cw]

    def _jitter(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not (self.brightness or self.contrast or self.saturation):
            return np.ascontiguousarray(image)
        x = image.astype(np.float32)
        if self.brightness:
            x *= rng.uniform(1 - self.brightness, 1 + self.brightness)
        if self.contrast:
            mean = x.mean()
            x = (x - mean) * rng.uniform(1 - self.contrast, 1 + self.contrast) + mean
        if self.saturation:
            grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
            factor = rng.uniform(1 - self.saturation, 1 + self.saturation)
            x = (x - grey[..., None]) * factor + grey[..., None]
        return np.clip(x, 0, 255).astype(np.uint8)


@dataclass
class EvalTransform:
    """Resize the image to the model's input size (if set); keep the label untouched."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: tuple[int, int] | None = None

    def __call__(self, image: np.ndarray, label: np.ndarray, rng=None):
        if self.input_size is not None and image.shape[:2] != tuple(self.input_size):
            h, w = self.input_size
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        return normalise(image, self.mean, self.std), torch.from_numpy(label.astype(np.int64))
