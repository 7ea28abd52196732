"""The one place where the supported ROS 2 distributions (Humble, Jazzy, Kilted) differ for us.

Humble's rclpy (3.3) keeps the subscription event callbacks in ``rclpy.qos_event``; Iron and
later moved them to ``rclpy.event_handler``. (Other differences are avoided instead: the node
keeps its parameter copy in the on-set callback, which every distribution has, and assigns
message fields values of the exact type Humble's always-on field checks require.)
"""

try:
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

__all__ = ["SubscriptionEventCallbacks"]
