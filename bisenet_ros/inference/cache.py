"""Where derived model files (exported ONNX, int8 graphs, TensorRT engines) are kept.

Derived files are expensive to make and cheap to key, so each lives under a name made from
the hash of everything it depends on. The default is ``~/.cache/bisenet_ros`` (or
``$XDG_CACHE_HOME/bisenet_ros``), never ``/tmp``, so they survive reboots.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_dir(override: str | Path | None = None) -> Path:
    """The cache root: ``override``, ``$BISENET_ROS_CACHE``, else the XDG cache directory."""
    if override is not None:
        root = Path(override)
    elif os.environ.get("BISENET_ROS_CACHE"):
        root = Path(os.environ["BISENET_ROS_CACHE"])
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root = Path(base) / "bisenet_ros"
    root.mkdir(parents=True, exist_ok=True)
    return root


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def key_of(**parts: object) -> str:
    """A short stable key for a set of named parts (order-independent)."""
    text = "\n".join(f"{k}={parts[k]}" for k in sorted(parts))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
