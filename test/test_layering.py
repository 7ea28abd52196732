"""The package's imports go one way: base <- models <- export <- inference <- ros, with
training beside export. Every import is checked, function-local ones included."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bisenet_ros"
BASE = {
    "manifest", "atomic", "onnx_metadata", "image_files", "preprocess", "cuda_runtime",
    "stop_request", "arguments", "image_decoding", "choices", "bundled",
}  # fmt: skip
# layer -> the layers it may import from (besides itself)
ALLOWED = {
    "base": set(),
    "models": {"base"},
    "export": {"base", "models"},
    "training": {"base", "models"},
    "inference": {"base", "models", "export"},
    "ros": {"base", "models", "export", "inference"},
    "cli": {"base", "models", "export", "training", "inference", "ros"},
}


def layer(module: str) -> str | None:
    """The layer of a module given as 'bisenet_ros.x.y', or None outside the package."""
    parts = module.split(".")
    if parts[0] != "bisenet_ros":
        return None
    if len(parts) == 1 or parts[1] in BASE:
        return "base"
    if parts[1] == "msg":  # the generated messages belong to the ROS layer
        return "ros"
    return parts[1]


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in ``path``."""
    package = ["bisenet_ros", *path.relative_to(PACKAGE).parent.parts]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            if not node.module:  # `from . import x`: x is the module
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = layer(".".join(["bisenet_ros", *path.relative_to(PACKAGE).with_suffix("").parts]))
        for line, module in imports(path):
            other = layer(module)
            if other is not None and other != own and other not in ALLOWED[own]:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {own} imports {module}")
    return found


def test_imports_follow_the_layers():
    assert violations() == []


def test_the_check_sees_a_wrong_import(tmp_path, monkeypatch):
    """The checker itself: an export module importing inference is reported."""
    package = tmp_path / "bisenet_ros"
    (package / "export").mkdir(parents=True)
    (package / "export" / "bad.py").write_text(
        "def f():\n    from ..inference.segmenter import Segmenter\n"
    )
    monkeypatch.setattr(__import__(__name__), "PACKAGE", package)
    assert violations() == [
        "bisenet_ros/export/bad.py:2: export imports bisenet_ros.inference.segmenter"
    ]
