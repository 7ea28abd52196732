"""The QoS profiles of the node's topics: keep-last and volatile, reliability as set."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def reliability_qos(reliability: str, depth: int) -> QoSProfile:
    """Keep-last, volatile QoS with the given reliability: sensor data style by default."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=(
            ReliabilityPolicy.BEST_EFFORT
            if reliability == "best_effort"
            else ReliabilityPolicy.RELIABLE
        ),
        durability=DurabilityPolicy.VOLATILE,
    )
