"""What ``segment.launch.py`` and ``bisenet node`` share to start segment_node the same way:
the node's parameters as a parameter file sets them, launch arguments turned into typed
parameter values, and the remapping of each camera's labels.

A launch argument overrides the parameter file only when it is given, so a user's own file
is never overridden by launch defaults.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .params import SPECS

NODE_NAME = "segment_node"
LABELS_TOPIC = "/segmentation"  # where planners find the class ids (one camera)


def file_parameters(path: str | Path, namespace: str = "") -> dict:
    """segment_node's parameters in a ROS 2 parameter file, as rcl would apply them to the
    node in ``namespace``: every section whose node name matches (``/**``, ``segment_node``,
    ``/ns/segment_node``, wildcards), later sections winning. FileNotFoundError or ValueError
    when the file is missing or not a parameter file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameter file {path} does not exist")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"parameter file {path} is not YAML: {error}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ValueError(f"parameter file {path}: expected '<node name>: ros__parameters:'")
    fqn = f"{namespace.rstrip('/')}/{NODE_NAME}" if namespace.strip("/") else f"/{NODE_NAME}"
    if not fqn.startswith("/"):
        fqn = "/" + fqn
    values: dict = {}
    for key, parameters in _sections(content):
        if _matches(key, fqn):
            values.update(parameters)
    return values


def _sections(content: dict, prefix: str = ""):
    """(node name pattern, its parameters) for each ``ros__parameters`` in the file, the
    nested form (``ns: {node: {ros__parameters: ...}}``) included."""
    for key, value in content.items():
        if not isinstance(value, dict):
            continue
        name = f"{prefix}/{str(key).strip('/')}"
        if isinstance(value.get("ros__parameters"), dict):
            yield name, value["ros__parameters"]
        yield from _sections({k: v for k, v in value.items() if k != "ros__parameters"}, name)


def _matches(pattern: str, fqn: str) -> bool:
    """rcl's node-name matching: ``/**`` any namespaces, ``*`` one token; a name without a
    leading slash is absolute, as rcl reads it."""
    regex = ""
    for token in pattern.strip("/").split("/"):
        if token == "**":
            regex += "(/[^/]+)*"
        else:
            regex += "/" + re.escape(token).replace(r"\*", "[^/]+")
    return re.fullmatch(regex, fqn) is not None


def parameter_value(name: str, text: str) -> object:
    """A launch argument's text as the value of node parameter ``name``, typed like its
    default; ValueError naming the argument and the type it needs."""
    default = SPECS[name].default
    if isinstance(default, str):
        return text
    value = yaml.safe_load(text) if text.strip() else None
    if isinstance(default, list) and isinstance(default[0], str) and isinstance(value, str):
        value = [value]  # cameras:=front is cameras:="['front']"
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        value = float(value) if ok else value
    elif isinstance(default[0], str):
        ok, kind = (
            isinstance(value, list) and all(isinstance(v, str) for v in value),
            ("a list of names, e.g. \"['/front', '/rear']\""),
        )
    else:
        ok = isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
        kind = 'a list of integers, e.g. "[0, 3]"'
    if not ok:
        raise ValueError(f"{name}:={text!r} is not {kind}")
    return value


def labels_remappings(cameras: list[str], labels_topic: str) -> list[tuple[str, str]]:
    """Class ids on ``labels_topic`` for one camera, on ``<labels_topic>/<camera>`` for
    several; nothing for an empty ``labels_topic`` (they stay at ``~/labels``)."""
    if not labels_topic:
        return []
    if len(cameras) == 1:
        return [("~/labels", labels_topic)]
    names = [c.strip("/") for c in cameras]
    return [(f"~/{n}/labels", f"{labels_topic.rstrip('/')}/{n}") for n in names]
