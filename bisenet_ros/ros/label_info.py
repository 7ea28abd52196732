"""``~/label_info``: the model's class table as ``vision_msgs/LabelInfo``, the standard way
planning stacks (Nav2's semantic segmentation layer) turn class names into label ids.

vision_msgs is an optional dependency: without it the node runs and says what is missing.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from bisenet_ros.manifest import Manifest

try:
    from vision_msgs.msg import LabelInfo, VisionClass
except ImportError:  # the node goes on without ~/label_info
    LabelInfo = VisionClass = None

# a subscriber that joins late still gets the table (what the Nav2 layer subscribes with)
QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
MISSING = (
    "vision_msgs is not installed, so ~/label_info (the class table planning stacks such as "
    "Nav2's semantic_segmentation_layer read) is not published; install it: apt install "
    "ros-$ROS_DISTRO-vision-msgs (~/info still carries the class names)"
)


def label_info(manifest: Manifest, threshold: float, header) -> LabelInfo:
    """Every class id and name of the model; ``threshold``: the node's confidence_threshold."""
    msg = LabelInfo(threshold=float(threshold))
    msg.header = header
    msg.class_map = [
        VisionClass(class_id=i, class_name=name) for i, name in enumerate(manifest.class_names)
    ]
    return msg
