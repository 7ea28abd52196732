"""Labels in 3D: an aligned depth image back-projected through the camera's intrinsics into
one point per label pixel, carrying that pixel's class id and confidence.

Planning stacks (Nav2's semantic segmentation layer, semantic mappers) need each label pixel
tied to a point; an organized cloud of exactly the label image's size does that by position.
Points are in the camera's optical frame (x right, y down, z forward, REP 103); pixels
without valid depth are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# depth image encodings (REP 118) -> metres per unit
DEPTH_SCALE = {"16UC1": 0.001, "32FC1": 1.0}
# pixels per band of organized_points: a band's intermediates (about 20 bytes per pixel)
# fit in a core's L2 cache; bands of 32K to 64K pixels were fastest at 640x480 and 1280x720
BAND_PIXELS = 65536


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels, for the image size the points are made at."""

    fx: float
    fy: float
    cx: float
    cy: float


def point_fields(with_confidence: bool) -> list[tuple[str, int, str]]:
    """(name, byte offset, numpy type) of each field of a point: a 16-byte record."""
    fields = [("x", 0, "<f4"), ("y", 4, "<f4"), ("z", 8, "<f4"), ("label", 12, "u1")]
    return fields + [("confidence", 13, "u1")] if with_confidence else fields


def point_dtype(with_confidence: bool) -> np.dtype:
    names, offsets, formats = zip(*point_fields(with_confidence), strict=True)
    return np.dtype({"names": names, "offsets": offsets, "formats": formats, "itemsize": 16})


def depth_in_metres(depth: np.ndarray, encoding: str, size: tuple[int, int]) -> np.ndarray:
    """An HxW depth image (16UC1 millimetres or 32FC1 metres) as float32 metres at ``size``
    (width, height), resized nearest so no depth is invented between two surfaces."""
    metres = np.multiply(depth, np.float32(DEPTH_SCALE[encoding]), dtype=np.float32)
    if (metres.shape[1], metres.shape[0]) != size:
        metres = cv2.resize(metres, size, interpolation=cv2.INTER_NEAREST)
    return metres


def measured(depth_m: np.ndarray, max_depth_m: float) -> np.ndarray:
    """A float32 copy of ``depth_m`` with NaN where there is no measurement (0, NaN,
    negative, infinite or beyond ``max_depth_m``).

    OpenCV's thresholds set those to 0 and the division turns 0 into NaN (0 / 0): half the
    time of numpy's ``where`` on a 1280x720 image, which counts at 30 Hz.
    """
    _, z = cv2.threshold(depth_m, 0.0, 0.0, cv2.THRESH_TOZERO)  # NaN, <= 0 -> 0
    cv2.threshold(z, max_depth_m, 0.0, cv2.THRESH_TOZERO_INV, dst=z)  # > max, inf -> 0
    with np.errstate(invalid="ignore"):
        z /= z > 0
    return z


def organized_points(
    depth_m: np.ndarray,
    labels: np.ndarray,
    confidence: np.ndarray | None,
    intrinsics: Intrinsics,
    max_depth_m: float,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """One point per pixel of ``labels`` (HxW), as an HxW structured array (``point_dtype``).

    ``depth_m``: HxW metres along the optical axis, the same size as ``labels``. Depth 0,
    NaN, negative or beyond ``max_depth_m`` is no measurement: that point's x, y, z are NaN.
    ``out``: an array from ``record_array`` to build into, reused when it has this size.

    The cloud is built in bands of rows, about ``BAND_PIXELS`` pixels each, so that each
    band's intermediate arrays stay in the CPU's cache: in the node on the development Xeon,
    2.1 ms against 2.4 ms for the whole image at once at 640x480, 5.0 against 6.0 ms at
    1280x720 (median of this call).
    """
    if depth_m.shape != labels.shape:
        raise ValueError(f"depth {depth_m.shape} and labels {labels.shape} differ in size")
    height, width = labels.shape
    k = intrinsics
    # float32 throughout (intrinsics from a CameraInfo are float64): the records are 16 bytes
    rays_x = ((np.arange(width) - k.cx) / k.fx).astype(np.float32)[None, :]
    rays_y = ((np.arange(height) - k.cy) / k.fy).astype(np.float32)[:, None]
    out = record_array(height, width, out)
    rows = max(1, BAND_PIXELS // width)
    for top in range(0, height, rows):
        band = slice(top, top + rows)
        _build_band(
            depth_m[band].astype(np.float32, copy=False),
            labels[band],
            None if confidence is None else confidence[band],
            rays_x,
            rays_y[band],
            max_depth_m,
            out[band],
        )
    return out.view(point_dtype(confidence is not None))[..., 0]


def _build_band(depth_m, labels, confidence, rays_x, rays_y, max_depth_m, out) -> None:
    """``organized_points`` for a band of rows, into ``out`` (that band of the records)."""
    z = measured(depth_m, max_depth_m)
    # label and confidence share the record's last 4 bytes: [label, confidence, 0, 0]
    zeros = np.zeros_like(labels)
    tail = cv2.merge([labels, zeros if confidence is None else confidence, zeros, zeros])
    # OpenCV interleaves the columns into 16-byte records 3x faster than numpy's stack
    cv2.merge([rays_x * z, rays_y * z, z, tail.view("<f4")[..., 0]], dst=out)


def record_array(height: int, width: int, reuse: np.ndarray | None = None) -> np.ndarray:
    """An HxWx4 float32 array for ``organized_points`` to build into: ``reuse`` when it has
    that size. The node keeps one per camera: a fresh 15 MB array for every 1280x720 frame
    cost it about 7,700 page faults and 10 to 30 ms per frame on a 2-core EPYC."""
    if reuse is not None and reuse.shape == (height, width, 4):
        return reuse
    return np.empty((height, width, 4), np.float32)
