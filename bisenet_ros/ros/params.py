"""The node's parameters (declared up front, with descriptions and ranges) and the checks
that refuse values which cannot work.

``DYNAMIC`` parameters apply to the next frame without a restart. All others are read when
the node is configured: they may be changed while it is unconfigured (cleanup, set,
configure) and are rejected with a reason otherwise.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
)

from bisenet_ros.bundled import BUNDLED_MODEL
from bisenet_ros.choices import BACKENDS, PRECISIONS, RESIZE_MODES
from bisenet_ros.inference.drivable import DrivableConfig, GroundGrid
from bisenet_ros.inference.views import ViewSettings
from bisenet_ros.manifest import Manifest

CHOICES = {
    "backend": BACKENDS,
    "precision": PRECISIONS,
    "resize_mode": RESIZE_MODES,
    "input_transport": ("raw", "compressed"),
    "input_reliability": ("best_effort", "reliable"),
    "output_reliability": ("best_effort", "reliable"),
}


@dataclass(frozen=True)
class Spec:
    default: object
    description: str
    low: float | None = None
    high: float | None = None
    dynamic: bool = False


_MIB_PIXELS = 1 << 20
# ~/drivable_grid is projected every frame: 2 M cells take 0.4 s on one desktop core
MAX_GRID_CELLS = 1 << 20
SPECS: dict[str, Spec] = {
    "autostart": Spec(True, "configure and activate at start-up, like a plain node"),
    # model
    "model_path": Spec("", f"model file (.pt/.pth, .onnx, .engine); empty: {BUNDLED_MODEL.name}"),
    "backend": Spec("auto", "inference runtime; auto picks the fastest present"),
    "precision": Spec("fp32", "network precision (fp16: not torch on the CPU; int8: not torch)"),
    "resize_mode": Spec("stretch", "how frames reach the network input size"),
    "threads": Spec(0, "CPU threads for inference; 0: the runtime's default", 0, 256),
    "warmup_iterations": Spec(
        3, "inferences run at configure so the first frame is not slow", 0, 100
    ),
    # inputs
    "cameras": Spec([""], "camera namespaces served by one model; '' is the node's namespace"),
    "image_topic": Spec("image", "image topic under each camera namespace"),
    "input_transport": Spec("raw", "raw: <image_topic>; compressed: <image_topic>/compressed"),
    "subscribe_camera_info": Spec(
        True, "subscribe camera_info (scaled copy, drivable grid, points)"
    ),
    "depth_topic": Spec(
        "",
        "depth image aligned to the colour camera, under each camera namespace (16UC1 mm or "
        "32FC1 m, the colour image's size); '': no ~/points",
    ),
    "depth_max_offset_ms": Spec(
        10.0,
        "pair a frame with the depth image stamped at most this far from it (aligned depth "
        "carries the colour frame's stamp; 10 ms is under a third of a 30 Hz frame period)",
        0.0,
        1000.0,
        True,
    ),
    "depth_max_m": Spec(20.0, "depth beyond this is no measurement (NaN point)", 0.1, 1000.0, True),
    "input_reliability": Spec("best_effort", "input QoS reliability (REP 2003: best_effort)"),
    "input_depth": Spec(1, "input QoS history depth", 1, 100),
    "max_input_pixels": Spec(
        64 * _MIB_PIXELS, "frames with more pixels are rejected unread", 1, 1 << 30
    ),
    "max_input_age_ms": Spec(
        500.0,
        "frames whose header stamp is further than this from the node's clock, either way, "
        "are dropped (bags: use_sim_time); 0: off (a camera with its own clock)",
        0.0,
        60000.0,
        True,
    ),
    "no_input_warning_s": Spec(
        3.0, "warn when a publisher exists but no frame arrived for this long", 0.5, 600.0, True
    ),
    "expected_rate_hz": Spec(
        0.0,
        "diagnostics warn when a camera's output rate falls below this; 0: off",
        0.0,
        1000.0,
        True,
    ),
    # outputs
    "output_width": Spec(0, "width of published views; 0: the input's", 0, 16384),
    "output_height": Spec(0, "height of published views; 0: the input's", 0, 16384),
    "output_reliability": Spec("reliable", "output QoS reliability (reliable reaches RViz)"),
    "publish_labels": Spec(True, "publish ~/labels (mono8 class ids)", dynamic=True),
    "publish_color": Spec(True, "publish ~/labels_color (rgb8)", dynamic=True),
    "publish_overlay": Spec(True, "publish ~/overlay (rgb8)", dynamic=True),
    "publish_confidence": Spec(True, "publish ~/confidence (mono8, 255 = certain)", dynamic=True),
    "publish_drivable_mask": Spec(True, "publish ~/drivable_mask (mono8 0/255)", dynamic=True),
    "publish_drivable_grid": Spec(
        False, "publish ~/drivable_grid (needs camera_info)", dynamic=True
    ),
    "publish_camera_info": Spec(True, "publish ~/camera_info scaled to the output", dynamic=True),
    "publish_points": Spec(
        True, "publish ~/points (needs depth_topic and camera_info)", dynamic=True
    ),
    "overlay_alpha": Spec(0.5, "weight of the colour mask in ~/overlay", 0.0, 1.0, True),
    "confidence_threshold": Spec(
        0.0,
        "pixels less confident than this are unlabelled (255) and not drivable",
        0.0,
        1.0,
        True,
    ),
    # drivable area
    "drivable_class_ids": Spec(
        [-1], "drivable class ids; [-1]: the model manifest's", dynamic=True
    ),
    "drivable_min_region_px": Spec(
        200, "drop drivable regions smaller than this", 0, 1 << 24, True
    ),
    "drivable_fill_holes_px": Spec(200, "fill holes smaller than this", 0, 1 << 24, True),
    "drivable_connected_to_bottom": Spec(
        True, "keep only regions touching the image bottom", dynamic=True
    ),
    "grid_resolution_m": Spec(0.1, "drivable grid cell size", 0.01, 10.0),
    "grid_width_m": Spec(10.0, "drivable grid extent left-right", 0.1, 1000.0),
    "grid_length_m": Spec(20.0, "drivable grid extent forward", 0.1, 1000.0),
    "camera_height_m": Spec(1.0, "camera height above flat ground", 0.01, 100.0),
    "camera_pitch_rad": Spec(0.0, "camera pitch, positive looking down", -1.57, 1.57),
    "grid_frame_id": Spec("", "frame of ~/drivable_grid; empty: the image frame_id"),
}
DYNAMIC = frozenset(name for name, spec in SPECS.items() if spec.dynamic)


def descriptor(name: str, spec: Spec) -> ParameterDescriptor:
    """A ParameterDescriptor with description, choices and range for ``ros2 param describe``."""
    text = spec.description
    if name in CHOICES:
        text += f" (one of {', '.join(CHOICES[name])})"
    if not spec.dynamic:
        text += " [read at configure]"
    desc = ParameterDescriptor(description=text)
    if spec.low is not None and isinstance(spec.default, float):
        desc.floating_point_range = [FloatingPointRange(from_value=spec.low, to_value=spec.high)]
    elif spec.low is not None:
        desc.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high))]
    if isinstance(spec.default, list) and spec.default and isinstance(spec.default[0], str):
        desc.type = ParameterType.PARAMETER_STRING_ARRAY
    elif isinstance(spec.default, list):
        desc.type = ParameterType.PARAMETER_INTEGER_ARRAY
    return desc


def check_choice(name: str, value: object) -> str | None:
    """Why ``value`` is not acceptable for ``name``, or None."""
    if name in CHOICES and value not in CHOICES[name]:
        return f"{name} must be one of {CHOICES[name]}, not {value!r}"
    if name == "cameras" and len(set(value)) != len(value):
        return f"cameras lists a namespace twice: {list(value)}"
    return None


def unknown_parameter(name: str) -> str:
    """What to tell a user who set ``name``, which the node does not have."""
    close = difflib.get_close_matches(name, SPECS, n=1)
    hint = f"did you mean {close[0]}?" if close else "config/segment.yaml lists them all"
    return f"{name} is not a segment_node parameter and is ignored; {hint}"


def first_problem(values: dict) -> str | None:
    """Why the current values cannot be configured (a bad choice, huge outputs), or None."""
    problems = (check_choice(name, values[name]) for name in SPECS)
    return next(filter(None, (*problems, output_problem(values), grid_problem(values))), None)


def output_problem(values: dict) -> str | None:
    """Why the published views would be bigger than any frame the node accepts, or None."""
    width, height = values["output_width"], values["output_height"]
    limit = values["max_input_pixels"]
    if width * height <= limit:  # 0 (the input's size) passes
        return None
    return (
        f"output_width x output_height = {width}x{height} is over max_input_pixels ({limit}), "
        "the largest frame the node accepts: views that size would take gigabytes a frame"
    )


def grid_problem(values: dict) -> str | None:
    """Why the drivable grid is too big to project every frame, or None."""
    rows, cols = ground_grid(values).shape
    if rows * cols <= MAX_GRID_CELLS:
        return None
    return (
        f"the drivable grid would be {rows} x {cols} cells, over {MAX_GRID_CELLS} (1024 x 1024): "
        "raise grid_resolution_m or lower grid_width_m / grid_length_m"
    )


def view_settings(values: dict, manifest: Manifest) -> ViewSettings:
    """How views are made, from the node's current parameter values."""
    ids = list(values["drivable_class_ids"])
    drivable = DrivableConfig(
        class_ids=list(manifest.drivable_ids) if ids == [-1] else ids,
        min_region_px=values["drivable_min_region_px"],
        fill_holes_px=values["drivable_fill_holes_px"],
        connected_to_bottom=values["drivable_connected_to_bottom"],
    )
    return ViewSettings(
        drivable,
        output_size=(values["output_width"], values["output_height"]),
        confidence_threshold=values["confidence_threshold"],
        overlay_alpha=values["overlay_alpha"],
    )


def ground_grid(values: dict) -> GroundGrid:
    """The flat-ground projection of ~/drivable_grid, from the parameter values."""
    return GroundGrid(
        resolution_m=values["grid_resolution_m"],
        width_m=values["grid_width_m"],
        length_m=values["grid_length_m"],
        camera_height_m=values["camera_height_m"],
        camera_pitch_rad=values["camera_pitch_rad"],
    )


def drivable_ids_problem(ids: list[int], manifest: Manifest) -> str | None:
    """Why ``drivable_class_ids`` cannot name classes of the model, or None."""
    ids = list(ids)
    if ids == [-1] or (ids and not manifest.unknown_class_ids(ids)):
        return None
    return (
        f"drivable_class_ids {ids} are not class ids of the model (0 to "
        f"{manifest.num_classes - 1}): list its drivable classes, or [-1] for those its "
        "manifest names"
    )


def refusal(name: str, value: object, manifest: Manifest | None) -> str | None:
    """Why a parameter change is refused now, or None if it is accepted.

    ``manifest``: the loaded model's, None while the node is unconfigured (configure checks
    the class ids then).
    """
    configured = manifest is not None
    if name in SPECS and name not in DYNAMIC and configured:
        return (
            f"{name} is read at configure: deactivate and clean up the node, set it, then "
            "configure again (or restart)"
        )
    if name == "drivable_class_ids" and configured:
        return drivable_ids_problem(value, manifest)
    return check_choice(name, value)
