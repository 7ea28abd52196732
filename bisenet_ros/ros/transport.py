"""Fast DDS transport set-up for large best-effort images.

Fast DDS's default shared-memory segment (0.5 MB) silently drops best-effort samples larger
than it (ros2/rmw_fastrtps#739): a 640x480 rgb8 frame already does not fit, and every
camera driver publishes best effort. The fix must be present in the camera's process too,
because the *sending* participant allocates the sample in its own segment.
"""

from __future__ import annotations

import os
from pathlib import Path

from .params import package_file

PROFILE_NAME = "fastdds_profile.xml"
# Variables with which a user has already chosen a Fast DDS transport configuration.
USER_SETTINGS = (
    "FASTDDS_DEFAULT_PROFILES_FILE",
    "FASTRTPS_DEFAULT_PROFILES_FILE",
    "FASTDDS_BUILTIN_TRANSPORTS",
)


def profile_path() -> Path:
    """The shipped profile (installed share directory, else the source checkout)."""
    return package_file("config", PROFILE_NAME)


def apply_default_profile(environ: os._Environ | dict = os.environ) -> str:
    """Point Fast DDS at the shipped profile unless the user configured transports.

    Must run before ``rclpy.init()`` creates the participant. Returns a line for the log.
    """
    chosen = [name for name in USER_SETTINGS if environ.get(name)]
    if chosen:
        return f"Fast DDS transports from the user's {chosen[0]}={environ[chosen[0]]}"
    if Path("DEFAULT_FASTRTPS_PROFILES.xml").is_file():
        return "Fast DDS transports from ./DEFAULT_FASTRTPS_PROFILES.xml"
    if environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") != "rmw_fastrtps_cpp":
        return f"RMW {environ['RMW_IMPLEMENTATION']}: no Fast DDS profile applied"
    path = profile_path()
    if not path.is_file():
        return f"Fast DDS profile {path} missing: large best-effort images may not arrive"
    environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(path)
    return f"Fast DDS transports from {path} (32 MiB shared memory + UDPv4)"


def no_input_hint(topic: str, publishers: int, seconds: float) -> str:
    """What to tell a user whose subscription is matched but receives nothing."""
    return (
        f"{publishers} publisher(s) on {topic} but no frame for {seconds:.0f} s. If the "
        "publisher is sending, its frames are probably larger than Fast DDS's default 0.5 MB "
        "shared-memory segment and dropped (best effort). Fix: in the CAMERA's shell too, "
        f"export FASTDDS_DEFAULT_PROFILES_FILE={profile_path()} (or "
        "FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA), or set input_reliability:=reliable, "
        "or use input_transport:=compressed."
    )
