"""Drivable area: a clean 0/255 mask from class ids, and its flat-ground occupancy grid.

Raw per-pixel labels are speckled; a planner wants one coherent region in front of the
vehicle. The mask keeps the drivable classes (optionally only confident pixels), fills
small holes, drops small specks and, by default, keeps only regions touching the image
bottom (the ground right in front of the camera).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FREE, OCCUPIED, UNKNOWN = 0, 100, -1


@dataclass
class DrivableConfig:
    """Which classes are drivable and how the mask is cleaned (areas in pixels)."""

    class_ids: list[int]
    min_region_px: int = 200
    fill_holes_px: int = 200
    connected_to_bottom: bool = True


def _components(binary: np.ndarray, connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        binary.astype(np.uint8), connectivity=connectivity
    )
    return labels, stats[:count]


def drivable_mask(ids: np.ndarray, config: DrivableConfig) -> np.ndarray:
    """HxW uint8 mask, 255 where drivable, 0 elsewhere (unlabelled pixels, 255, never are)."""
    if ids.ndim != 2:
        raise ValueError(f"expected HxW class ids, got shape {ids.shape}")
    mask = np.isin(ids, np.asarray(config.class_ids, dtype=ids.dtype))
    height, width = mask.shape

    if config.fill_holes_px > 0:  # background regions enclosed by the mask and small enough
        labels, stats = _components(~mask, 4)
        x, y, w, h, area = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3], stats[:, 4]
        inner = (x > 0) & (y > 0) & (x + w < width) & (y + h < height)
        hole = inner & (area <= config.fill_holes_px)
        hole[0] = False  # label 0 is the mask itself
        mask |= hole[labels]

    if config.min_region_px > 0 or config.connected_to_bottom:
        labels, stats = _components(mask, 8)
        keep = stats[:, 4] >= config.min_region_px
        if config.connected_to_bottom:
            touching = np.zeros(len(stats), bool)
            touching[labels[-1]] = True
            keep &= touching
        keep[0] = False  # label 0 is the background
        mask = keep[labels]
    return mask.astype(np.uint8) * 255


@dataclass
class GroundGrid:
    """A flat-ground grid in front of the camera, in the ``nav_msgs/OccupancyGrid`` layout.

    The grid frame sits on the ground below the camera: x forward, y left (REP 103); cell
    (row j, column i) covers x = i * resolution, y = j * resolution - width / 2, so the grid
    origin is ``(0, -width_m / 2)``. ``camera_pitch_rad`` is positive looking down.
    """

    resolution_m: float = 0.1
    width_m: float = 10.0
    length_m: float = 20.0
    camera_height_m: float = 1.0
    camera_pitch_rad: float = 0.0

    @property
    def shape(self) -> tuple[int, int]:
        """(rows along y, columns along x)."""
        return round(self.width_m / self.resolution_m), round(self.length_m / self.resolution_m)

    @property
    def origin(self) -> tuple[float, float]:
        """(x, y) of the grid's corner cell edge in the grid frame."""
        return 0.0, -self.width_m / 2.0

    def pixel_of_cells(
        self, image_size: tuple[int, int], fx: float, fy: float, cx: float, cy: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image (u, v) of every cell centre on the ground, and whether it falls in the image."""
        if self.camera_height_m <= 0 or self.resolution_m <= 0:
            raise ValueError("camera_height_m and resolution_m must be positive")
        rows, cols = self.shape
        x = (np.arange(cols) + 0.5) * self.resolution_m
        y = (np.arange(rows) + 0.5) * self.resolution_m - self.width_m / 2.0
        x, y = np.meshgrid(x, y)  # (rows, cols)
        h, s, c = self.camera_height_m, np.sin(self.camera_pitch_rad), np.cos(self.camera_pitch_rad)
        # Ground point in the optical frame (z along the axis, x right, y down), camera pitched.
        zc = x * c + h * s
        xc = -y
        yc = h * c - x * s
        ahead = zc > 1e-6
        zc = np.where(ahead, zc, 1.0)
        u = np.floor(fx * xc / zc + cx).astype(np.int64)
        v = np.floor(fy * yc / zc + cy).astype(np.int64)
        inside = ahead & (u >= 0) & (u < image_size[1]) & (v >= 0) & (v < image_size[0])
        return u, v, inside

    def project(self, mask: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
        """int8 grid (rows, cols): 0 free where the mask is drivable, 100 occupied, -1 unseen.

        ``mask`` must be at the resolution the intrinsics describe.
        """
        u, v, inside = self.pixel_of_cells(mask.shape[:2], fx, fy, cx, cy)
        grid = np.full(u.shape, UNKNOWN, np.int8)
        seen = mask[v[inside], u[inside]] > 0
        grid[inside] = np.where(seen, FREE, OCCUPIED)
        return grid
