"""Fast DDS transport set-up for large best-effort images.

Fast DDS's default shared-memory segment (0.5 MB) silently drops best-effort samples larger
than it (ros2/rmw_fastrtps#739): a 640x480 rgb8 frame already does not fit, and every
camera driver publishes best effort. The fix must be present in the camera's process too,
because the *sending* participant allocates the sample in its own segment.
"""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

from .package_files import package_file

PROFILE_NAME = "fastdds_profile.xml"
# The variable each Fast DDS generation reads the profile from: 2.x (Humble, Jazzy) only the
# old name; 3.x (Kilted) the new one, and the old one with a deprecation warning.
PROFILE_VARIABLE = {2: "FASTRTPS_DEFAULT_PROFILES_FILE", 3: "FASTDDS_DEFAULT_PROFILES_FILE"}
# Variables with which a user has already chosen a Fast DDS transport configuration.
USER_SETTINGS = (*PROFILE_VARIABLE.values(), "FASTDDS_BUILTIN_TRANSPORTS")


def profile_path() -> Path:
    """The shipped profile (installed share directory, else the source checkout)."""
    return package_file("config", PROFILE_NAME)


def fastdds_generation(environ: os._Environ | dict = os.environ) -> int | None:
    """2 or 3: the major version of the Fast DDS library the RMW will load, None if not found.

    Told by the library's file name (3.x: ``libfastdds.so.3``; 2.x: ``libfastrtps.so.2``) in
    the directories the loader and the ROS environment use.
    """
    dirs = [d for d in environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d]
    dirs += [
        os.path.join(p, "lib") for p in environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p
    ]
    dirs.append(os.path.join(sys.prefix, "lib"))
    for folder in dirs:
        if glob.glob(os.path.join(folder, "libfastdds.so.3*")):
            return 3
        if glob.glob(os.path.join(folder, "libfastrtps.so.2*")):
            return 2
    return None


def profile_variables(environ: os._Environ | dict = os.environ) -> list[str]:
    """The variable(s) to set so that the installed Fast DDS reads the profile."""
    generation = fastdds_generation(environ)
    return [PROFILE_VARIABLE[generation]] if generation else list(PROFILE_VARIABLE.values())


def _profile_decision(environ: os._Environ | dict) -> tuple[dict[str, str], str]:
    """(variables to add so Fast DDS uses the shipped profile, a log line saying what it uses)."""
    chosen = [name for name in USER_SETTINGS if environ.get(name)]
    if chosen:
        return {}, f"Fast DDS transports from {chosen[0]}={environ[chosen[0]]}"
    if Path("DEFAULT_FASTRTPS_PROFILES.xml").is_file():
        return {}, "Fast DDS transports from ./DEFAULT_FASTRTPS_PROFILES.xml"
    if environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") != "rmw_fastrtps_cpp":
        return {}, f"RMW {environ['RMW_IMPLEMENTATION']}: no Fast DDS profile applied"
    path = profile_path()
    if not path.is_file():
        return {}, f"Fast DDS profile {path} missing: large best-effort images may not arrive"
    names = profile_variables(environ)
    via = " and ".join(names)
    line = f"Fast DDS transports from {path} via {via} (32 MiB shared memory + UDPv4)"
    return {name: str(path) for name in names}, line


def default_profile_env(environ: os._Environ | dict = os.environ) -> dict[str, str]:
    """What to add to an environment so that Fast DDS uses the shipped profile: nothing when
    the user chose a transport set-up (either variable name, built-in transports) or RMW."""
    return _profile_decision(environ)[0]


def apply_default_profile(environ: os._Environ | dict = os.environ) -> str:
    """Point Fast DDS at the shipped profile unless the user configured transports.

    Must run before ``rclpy.init()`` creates the participant. Returns a line for the log that
    says what Fast DDS will really read.
    """
    added, line = _profile_decision(environ)
    environ.update(added)
    return line


def no_input_hint(topic: str, publishers: int, seconds: float) -> str:
    """What to tell a user whose subscription is matched but receives nothing."""
    variable = " or ".join(profile_variables())
    return (
        f"{publishers} publisher(s) on {topic} but no frame for {seconds:.0f} s. If the "
        "publisher is sending, its frames are probably larger than Fast DDS's default 0.5 MB "
        "shared-memory segment and dropped (best effort). Fix: in the CAMERA's shell too, "
        f"export {variable}={profile_path()} (or "
        "FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA), or set input_reliability:=reliable, "
        "or use input_transport:=compressed."
    )


def incompatible_qos_hint(topic: str, reliability: str, policy: str) -> str:
    """What to tell a user whose camera's QoS cannot reach the subscription."""
    return (
        f"a publisher on {topic} has QoS incompatible with input_reliability={reliability} "
        f"(policy {policy}): its frames will not arrive; set input_reliability:=best_effort "
        "(accepts every publisher)"
    )
