"""Real-time semantic segmentation (BiSeNetV1/V2) for ROS 2 robots and vehicles."""

from pkgutil import extend_path

# The generated messages (bisenet_ros.msg) live in the colcon install, the rest of the package
# in this source tree too; extending the path lets either copy find the other's modules.
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
