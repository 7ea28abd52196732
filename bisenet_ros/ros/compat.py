"""The one place where the supported ROS 2 distributions (Humble, Jazzy, Kilted) differ for
us, and where we reach into rclpy's private parts.

Humble's rclpy (3.3) keeps the subscription event callbacks in ``rclpy.qos_event``; Iron and
later moved them to ``rclpy.event_handler``. (Other differences are avoided instead: the node
keeps its parameter copy in the on-set callback, which every distribution has, and assigns
message fields values of the exact type Humble's always-on field checks require.)

Private rclpy names (checked in Humble 3.3, Jazzy and Kilted) each have a fallback: a change
in rclpy loses only what they add, never the node.
"""

from __future__ import annotations

try:
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

try:  # what rclpy.init raises for a malformed --ros-args or an unreadable parameter file
    from rclpy.impl.implementation_singleton import rclpy_implementation

    RCLError: type[Exception] = rclpy_implementation.RCLError
except (ImportError, AttributeError):
    RCLError = RuntimeError  # RCLError's base: such a mistake is then a traceback, not a line

__all__ = ["RCLError", "SubscriptionEventCallbacks", "parameter_overrides"]


def parameter_overrides(node) -> dict:
    """The values every parameter file and ``-p`` set for this node, declared or not.

    rclpy has no public accessor; without its private one the node only loses its warning
    about misspelt parameter names.
    """
    return dict(getattr(node, "_parameter_overrides", {}))
