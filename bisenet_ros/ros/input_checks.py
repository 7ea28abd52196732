"""What makes an arriving frame unusable, and the sentence that tells the user the fix.

The node runs these checks in the subscription callback, before a frame may replace the one
waiting for the worker: a bad frame is then counted under its own reason (and never displaces
a good one), whatever the camera's rate.

Time: a header stamp is compared with the node's clock (``use_sim_time`` makes that
``/clock``). A stamp already older than ``max_input_age_ms`` on arrival, or ahead by as much,
means the two clocks are not comparable (a bag replayed without ``use_sim_time``, a camera
stamping with its own clock) rather than a slow node; a frame that only grows too old
while it waits for the worker is the node's fault and is counted as ``too_old``.
"""

from __future__ import annotations

from sensor_msgs.msg import CompressedImage

from bisenet_ros.image_decoding import check_compressed, check_raw

from .camera_stats import Problem
from .image_cdr import RawImage, parse_image

OWN_CLOCK_FIX = "max_input_age_ms:=0 (or synchronise the camera's clock: chrony, PTP)"


def checked_message(msg: bytes | CompressedImage, max_pixels: int) -> RawImage | CompressedImage:
    """The frame's fields once its header shows nothing wrong; ImageError otherwise."""
    if isinstance(msg, CompressedImage):
        check_compressed(msg, max_pixels)
        return msg
    image = parse_image(msg)  # raw subscriptions hand over the serialized bytes
    check_raw(image, max_pixels)
    return image


def age_ms(msg: RawImage | CompressedImage, now_ns: int) -> float | None:
    """How old the header stamp is on the node's clock; None for an unstamped (zero) frame."""
    stamp = msg.header.stamp
    if stamp.sec == 0 and stamp.nanosec == 0:
        return None
    return (now_ns - (stamp.sec * 1_000_000_000 + stamp.nanosec)) / 1e6


def arrival_problem(
    age: float | None, max_age_ms: float, clock_idle_s: float | None
) -> Problem | None:
    """Why a frame's stamp makes it unusable on arrival, or None.

    ``clock_idle_s``: under use_sim_time, seconds since /clock last moved the node's clock
    (inf before the first /clock message); None on the system clock.
    """
    if max_age_ms <= 0 or age is None:
        return None
    if clock_idle_s == float("inf"):
        return Problem(
            "no_clock",
            "use_sim_time is true but no /clock message has arrived, so frame ages cannot be "
            "judged: replay bags with `ros2 bag play --clock`, or set max_input_age_ms:=0",
        )
    if age > max_age_ms:
        return Problem(
            "stamp_in_past",
            f"header stamp {age / 1000:.3f} s behind the node's clock on arrival "
            f"(max_input_age_ms={max_age_ms:g}). Replaying a bag? Set use_sim_time:=true and "
            "play it with `ros2 bag play --clock`. A camera with its own clock? Set "
            f"{OWN_CLOCK_FIX}. A slow link? Raise max_input_age_ms",
        )
    if -age <= max_age_ms:
        return None
    if clock_idle_s is not None and clock_idle_s * 1000 > max_age_ms:
        return Problem(
            "clock_stalled",
            f"header stamp {-age / 1000:.3f} s ahead of /clock, which has not moved for "
            f"{clock_idle_s:.1f} s while frames keep coming (use_sim_time): the bag player "
            "is paused or publishes /clock too rarely; resume it, or play with `ros2 bag play "
            "--clock 100` (a faster /clock), or raise max_input_age_ms",
        )
    return Problem(
        "stamp_in_future",
        f"header stamp {-age / 1000:.3f} s ahead of the node's clock "
        f"(max_input_age_ms={max_age_ms:g}): the camera stamps with its own clock; set "
        f"{OWN_CLOCK_FIX}",
    )


def pickup_problem(age: float | None, max_age_ms: float) -> Problem | None:
    """Why a frame that arrived in time is too old once the worker takes it, or None."""
    if max_age_ms <= 0 or age is None or age <= max_age_ms:
        return None
    return Problem(
        "too_old",
        f"frame {age:.0f} ms old when the worker took it (max_input_age_ms={max_age_ms:g}): "
        "inference is slower than that; use a faster backend or precision, a smaller model "
        "input, or raise max_input_age_ms",
    )


SUPERSEDED = Problem(
    "superseded",
    "frames arrive faster than the model runs: a waiting frame is replaced by the newest one "
    "(by design; lower the camera rate to avoid the wasted transport)",
)

DEACTIVATED = Problem(
    "deactivated",
    "the node was deactivated while this frame waited for the worker (by design: a frame from "
    "before deactivation is never answered after activation)",
)
