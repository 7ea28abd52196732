"""What the node publishes for each camera: topics, their types and switches, and the
messages that are not plain images (drivable grid, scaled camera_info, points, ~/info)."""

from __future__ import annotations

import array

import numpy as np
from nav_msgs.msg import OccupancyGrid
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from bisenet_ros.inference.drivable import GroundGrid
from bisenet_ros.inference.points import (
    Intrinsics,
    depth_in_metres,
    organized_points,
    point_fields,
)
from bisenet_ros.manifest import Manifest
from bisenet_ros.msg import SegmentationInfo

from .image_cdr import serialize_image, serialize_points

# image topic (under ~/ or ~/<camera>/) -> the view of inference.views it carries
IMAGE_TOPICS = {
    "labels": "labels",
    "labels_color": "color",
    "overlay": "overlay",
    "confidence": "confidence",
    "drivable_mask": "drivable",
}
TYPES = {topic: Image for topic in IMAGE_TOPICS} | {
    "drivable_grid": OccupancyGrid,
    "camera_info": CameraInfo,
    "info": SegmentationInfo,
}
# topic -> the parameter that switches it; ~/info is always published
TOGGLE = {
    "labels": "publish_labels",
    "labels_color": "publish_color",
    "overlay": "publish_overlay",
    "confidence": "publish_confidence",
    "drivable_mask": "publish_drivable_mask",
    "drivable_grid": "publish_drivable_grid",
    "camera_info": "publish_camera_info",
    "points": "publish_points",
}
POINTS = PointCloud2  # ~/points exists only for cameras with a depth_topic


def views_for(topics: set[str]) -> set[str]:
    """The views to render for these topics (the grid is made from the drivable mask, the
    points carry the labels and the confidence)."""
    views = {IMAGE_TOPICS[t] for t in topics if t in IMAGE_TOPICS}
    if "drivable_grid" in topics:
        views.add("drivable")
    if "points" in topics:
        views |= {"labels", "confidence"}
    return views


def image_messages(topics: set[str], views: dict, header) -> dict[str, bytes]:
    """Serialized Images for the wanted image topics (a view may be missing: confidence)."""
    messages = {}
    for topic, view in IMAGE_TOPICS.items():
        if topic in topics and view in views:
            encoding = "rgb8" if views[view].ndim == 3 else "mono8"
            messages[topic] = serialize_image(views[view], encoding, header)
    return messages


def camera_messages(
    topics: set[str], views: dict, header, info, size, ground: GroundGrid, grid_frame_id: str
) -> dict:
    """Every message of one frame for ``topics``: the images, the drivable grid and the
    camera_info scaled to the output ``size`` (the last two need the camera's ``info``)."""
    messages = image_messages(topics, views, header)
    if "drivable_grid" in topics:
        messages["drivable_grid"] = drivable_grid(
            info, header, views["drivable"], ground, grid_frame_id
        )
    if "camera_info" in topics:
        messages["camera_info"] = scaled_camera_info(info, header, size)
    return messages


def drivable_grid(
    info: CameraInfo, header, mask: np.ndarray, ground: GroundGrid, frame_id: str
) -> OccupancyGrid:
    """The drivable mask projected onto flat ground with the camera's intrinsics."""
    sx, sy = mask.shape[1] / max(info.width, 1), mask.shape[0] / max(info.height, 1)
    k = info.k
    cells = ground.project(mask, k[0] * sx, k[4] * sy, k[2] * sx, k[5] * sy)
    grid = OccupancyGrid()
    grid.header.stamp = header.stamp
    grid.header.frame_id = frame_id or header.frame_id
    grid.info.map_load_time = header.stamp
    grid.info.resolution = float(ground.resolution_m)
    grid.info.height, grid.info.width = cells.shape
    grid.info.origin.position.x, grid.info.origin.position.y = ground.origin
    grid.info.origin.orientation.w = 1.0
    grid.data = array.array("b", cells.tobytes())  # int8[]: the type Humble checks for
    return grid


def scaled_camera_info(info: CameraInfo, header, size: tuple[int, int]) -> CameraInfo:
    """camera_info for the published views: intrinsics scaled to their (width, height)."""
    sx, sy = size[0] / max(info.width, 1), size[1] / max(info.height, 1)
    out = CameraInfo()
    out.header = header
    out.width, out.height = size
    out.distortion_model, out.d, out.r = info.distortion_model, info.d, info.r
    k, p = np.array(info.k, float), np.array(info.p, float)
    k[[0, 1, 2]] *= sx
    k[[3, 4, 5]] *= sy
    p[[0, 1, 2, 3]] *= sx
    p[[4, 5, 6, 7]] *= sy
    out.k, out.p = k.tolist(), p.tolist()
    return out


def points_message(
    views: dict,
    header,
    info: CameraInfo,
    size: tuple[int, int],
    depth,
    max_depth_m: float,
    records: np.ndarray,
) -> bytes:
    """~/points: ``depth`` ((values, encoding) at the input size) back-projected at the
    output ``size`` with the camera's intrinsics, one point per label pixel, serialized.
    ``records``: the camera's ``record_array`` of that size, built into."""
    k = scaled_camera_info(info, header, size).k
    metres = depth_in_metres(*depth, size)
    confidence = views.get("confidence")
    intrinsics = Intrinsics(k[0], k[4], k[2], k[5])
    points = organized_points(
        metres, views["labels"], confidence, intrinsics, max_depth_m, out=records
    )
    return serialize_points(points, point_fields(confidence is not None), header)


def segmentation_info(
    header,
    manifest: Manifest,
    model_name: str,
    runtime: tuple[str, str],
    drivable_ids: list[int],
    output_size: tuple[int, int],
    timing: dict[str, float],
    counts: tuple[int, int, int],
) -> SegmentationInfo:
    """~/info: what the labels mean, how they were made and the camera's counters.

    ``runtime``: (backend, precision); ``counts``: (processed, dropped, rejected).
    """
    info = SegmentationInfo()
    info.header = header
    info.model_name = model_name
    info.architecture = manifest.arch
    info.backend, info.precision = runtime
    info.class_names = list(manifest.class_names)
    info.palette = bytes(v for c in manifest.palette for v in c)
    info.drivable_class_ids = bytes(drivable_ids)
    info.input_height, info.input_width = manifest.input_size
    info.output_width, info.output_height = output_size
    info.preprocess_ms = float(timing.get("preprocess_ms", 0.0))
    info.inference_ms = float(timing.get("inference_ms", 0.0))
    info.postprocess_ms = float(timing.get("postprocess_ms", 0.0))
    info.total_latency_ms = float(timing["total_latency_ms"])
    info.frames_processed, info.frames_dropped, info.frames_rejected = counts
    return info
