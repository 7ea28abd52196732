"""Real-time semantic segmentation (BiSeNetV1/V2) for ROS 2 robots and vehicles."""

__version__ = "0.1.0"
