"""Image <-> network geometry: validation, resize/letterbox, normalisation, label restore.

Everything here is driven by the manifest, so the runtime normalises exactly as training did.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .choices import RESIZE_MODES
from .manifest import Manifest

CHANNEL_ORDERS = ("rgb", "bgr")
MIN_SIDE = 8  # below this a frame carries no usable content for a 32x-downsampling network


@dataclass(frozen=True)
class Placement:
    """Where an input image sits inside the network input: the region (top, left, h, w)."""

    image_size: tuple[int, int]
    top: int
    left: int
    height: int
    width: int


def as_image_list(images: np.ndarray | list[np.ndarray]) -> list[np.ndarray]:
    """Normalise the ``segment`` argument to a list and reject what the network cannot use."""
    if isinstance(images, np.ndarray):
        images = [images]
    elif not isinstance(images, (list, tuple)):
        raise ValueError(f"expected an image array or a list of them, got {type(images).__name__}")
    if len(images) == 0:
        raise ValueError("no images given")
    for i, image in enumerate(images):
        check_image(image, f"image {i}")
    return list(images)


def check_image(image: object, name: str = "image") -> None:
    """Raise ``ValueError`` unless ``image`` is an HxW or HxWx3 uint8 array of usable size."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name}: expected dtype uint8, got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(
            f"{name}: expected HxW or HxWx1 (grey) or HxWx3 (colour) pixels, got {image.shape}"
        )
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(
            f"{name}: {image.shape[1]}x{image.shape[0]} (WxH) is too small; "
            f"each side needs at least {MIN_SIDE} pixels"
        )


def three_channels(image: np.ndarray) -> np.ndarray:
    """HxWx3 pixels (grey is replicated)."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return image


def blob_opencv(image: np.ndarray, mean: np.ndarray, scale: np.ndarray, swap: bool) -> np.ndarray:
    """(3, H, W) float32 ``(x - mean) * scale`` of an HxWx3 uint8 image, channels swapped if
    asked: OpenCV's blob maker does it in one pass (5x faster than numpy at 512x1024)."""
    params = cv2.dnn.Image2BlobParams()
    params.mean = (*mean.tolist(), 0.0)
    params.scalefactor = (*scale.tolist(), 0.0)
    params.swapRB = swap
    params.ddepth = cv2.CV_32F
    params.size = (image.shape[1], image.shape[0])
    return cv2.dnn.blobFromImageWithParams(image, params)[0]


def blob_numpy(image: np.ndarray, mean: np.ndarray, scale: np.ndarray, swap: bool) -> np.ndarray:
    """The same values in numpy, for OpenCV before 4.8 (no ``Image2BlobParams``)."""
    x = (image[:, :, ::-1] if swap else image).astype(np.float32)
    x -= mean
    x *= scale
    return x.transpose(2, 0, 1)


# OpenCV >= 4.8 has the one-pass blob maker; Debian 12's 4.6 and older Jetson builds do not.
to_blob = blob_opencv if hasattr(getattr(cv2, "dnn", None), "Image2BlobParams") else blob_numpy


def place(image_size: tuple[int, int], net_size: tuple[int, int], mode: str) -> Placement:
    """The region of the network input an image of ``image_size`` (H, W) is resized into."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, not {mode!r}")
    (ih, iw), (nh, nw) = image_size, net_size
    if mode == "stretch":
        return Placement(image_size, 0, 0, nh, nw)
    scale = min(nh / ih, nw / iw)
    h, w = max(1, round(ih * scale)), max(1, round(iw * scale))
    return Placement(image_size, (nh - h) // 2, (nw - w) // 2, h, w)


def channel_orders(channel_order: str | list[str], count: int) -> list[str]:
    """One channel order per image, from one for all or a list; ValueError if unknown."""
    orders = [channel_order] * count if isinstance(channel_order, str) else list(channel_order)
    if len(orders) != count:
        raise ValueError(f"{len(orders)} channel orders for {count} images")
    for order in orders:
        if order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, not {order!r}")
    return orders


def preprocess(
    images: list[np.ndarray],
    manifest: Manifest,
    channel_order: str | list[str],
    resize_mode: str,
) -> tuple[np.ndarray, list[Placement]]:
    """A float32 NCHW batch at the manifest's network size, normalised, plus each placement.

    ``channel_order``: of all colour images, or one per image. Letterbox padding is the mean
    colour, i.e. zero after normalisation.
    """
    orders = channel_orders(channel_order, len(images))
    nh, nw = manifest.input_size
    mean = (np.asarray(manifest.mean) * 255.0).astype(np.float32)
    scale = (1.0 / (np.asarray(manifest.std) * 255.0)).astype(np.float32)
    batch = np.zeros((len(images), 3, nh, nw), np.float32)  # padding 0 is the mean colour
    placements = []
    for i, (image, order) in enumerate(zip(images, orders, strict=True)):
        swap = order != manifest.channel_order
        image = three_channels(image)
        p = place(image.shape[:2], (nh, nw), resize_mode)
        if (p.height, p.width) != image.shape[:2]:
            image = cv2.resize(image, (p.width, p.height), interpolation=cv2.INTER_LINEAR)
        region = to_blob(image, mean, scale, swap)
        batch[i, :, p.top : p.top + p.height, p.left : p.left + p.width] = region
        placements.append(p)
    return batch, placements


def restore(plane: np.ndarray, placement: Placement) -> np.ndarray:
    """A network-size uint8 plane (ids or confidence) cropped to the image and resized back.

    Nearest neighbour (pixel-centre exact) because class ids must never be interpolated.
    """
    p = placement
    region = plane[p.top : p.top + p.height, p.left : p.left + p.width]
    ih, iw = p.image_size
    if region.shape != (ih, iw):
        region = cv2.resize(region, (iw, ih), interpolation=cv2.INTER_NEAREST_EXACT)
    return np.ascontiguousarray(region)
