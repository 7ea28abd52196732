"""Test-time guards, loaded by every Python process the tests start and by the test process.

1. ROS 2 Humble's missing rclpy APIs, made missing here.

Humble (rclpy 3.3, Jetsons on JetPack 6) has no ``rclpy.event_handler`` and no
``Node.add_post_set_parameters_callback``; Jazzy and Kilted have both. Loaded by every Python
process the tests start (``test/conftest.py`` puts this folder on ``PYTHONPATH``, and Python
imports ``sitecustomize`` at start-up) and by the test process itself, it makes bisenet_ros
code that uses either fail as it would on Humble. rclpy's own internal use is left alone.

2. With ``BISENET_TEST_NO_TORCH=1``, PyTorch is not importable (as on a Jetson without it):
``import torch`` fails and ``importlib.util.find_spec("torch")`` says it is absent.
``BISENET_TEST_NO_ONNX=1`` does the same to ``onnx`` (a Jetson that only runs engines), and
``BISENET_TEST_NO_VISION_MSGS=1`` to ``vision_msgs`` (a ROS install without it).
"""

import builtins
import importlib.abc
import importlib.machinery
import os
import sys

HIDDEN_MODULE = "rclpy.event_handler"
HIDDEN_METHOD = "add_post_set_parameters_callback"


def _is_ours(module_name: str) -> bool:
    return module_name == "bisenet_ros" or module_name.startswith("bisenet_ros.")


def _called_from_bisenet_ros() -> bool:
    """Whether the code calling the function that calls this is bisenet_ros code."""
    return _is_ours(sys._getframe(2).f_globals.get("__name__", ""))


_import = builtins.__import__


def _guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
    """``import rclpy.event_handler`` and ``from rclpy import event_handler`` fail in our code
    (rclpy imports the module itself, so hiding it from the finders would not be enough)."""
    if level == 0 and globals and _is_ours(globals.get("__name__", "")):
        wanted = {name} | {f"{name}.{item}" for item in fromlist or ()}
        if HIDDEN_MODULE in wanted:
            raise ModuleNotFoundError(
                f"No module named {HIDDEN_MODULE!r} (ROS 2 Humble, test guard)"
            )
    return _import(name, globals, locals, fromlist, level)


class _PatchNode(importlib.abc.MetaPathFinder):
    """Strips the post-set callback API, for our callers, from rclpy's Node when it loads."""

    def find_spec(self, name, path, target=None):
        if name != "rclpy.node":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None:
            spec.loader = _PatchingLoader(spec.loader)
        return spec


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        original = getattr(module.Node, HIDDEN_METHOD, None)
        if original is None:
            return

        def guarded(node, *args, **kwargs):
            if _called_from_bisenet_ros():
                raise AttributeError(f"'Node' object has no attribute {HIDDEN_METHOD!r} (Humble)")
            return original(node, *args, **kwargs)

        setattr(module.Node, HIDDEN_METHOD, guarded)


if builtins.__import__ is _import and "rclpy.node" not in sys.modules:
    builtins.__import__ = _guarded_import
    sys.meta_path.insert(0, _PatchNode())

for _hidden in ("torch", "onnx", "vision_msgs"):
    if os.environ.get(f"BISENET_TEST_NO_{_hidden.upper()}") == "1":
        sys.modules[_hidden] = None  # the import system's own "not importable" mark
