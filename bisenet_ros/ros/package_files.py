"""Files of the ROS package (parameter files, the Fast DDS profile, message definitions),
wherever it is installed."""

from __future__ import annotations

from pathlib import Path


def package_file(*parts: str) -> Path:
    """A file of the ROS package: the installed share directory, else the source checkout."""
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory("bisenet_ros"), *parts)
        if installed.exists():
            return installed
    except (ImportError, LookupError, ValueError):
        pass
    return Path(__file__).resolve().parents[2].joinpath(*parts)
