"""Launch segment_node for one or more cameras, optionally with RViz.

    ros2 launch bisenet_ros segment.launch.py image_topic:=image_raw cameras:="['/camera']"
    ros2 launch bisenet_ros segment.launch.py model_path:=/models/bisenetv2.engine rviz:=true

Without `launch` (pip-installed ROS), the same node from the same YAML:
    bisenet node --params-file config/segment.yaml
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription

SHARE = get_package_share_directory("bisenet_ros")
# Fast DDS drops best-effort images over 0.5 MB unless configured: apply the shipped
# profile to every process started here, unless the user chose a transport set-up.
USER_TRANSPORT_SETTINGS = (
    "FASTDDS_DEFAULT_PROFILES_FILE",
    "FASTRTPS_DEFAULT_PROFILES_FILE",
    "FASTDDS_BUILTIN_TRANSPORTS",
)

ARGUMENTS = [
    ("cameras", "['']", "camera namespaces served by one model, e.g. \"['/front', '/rear']\""),
    ("image_topic", "image", "image topic under each camera namespace"),
    ("input_transport", "raw", "raw (sensor_msgs/Image) or compressed (<image_topic>/compressed)"),
    ("params_file", os.path.join(SHARE, "config", "segment.yaml"), "node parameter file"),
    ("model_path", "", "model (.pt/.pth, .onnx, .engine); empty: the bundled CamVid model"),
    ("backend", "auto", "auto | tensorrt | torch | onnxruntime"),
    ("precision", "fp32", "fp32 | fp16 | int8"),
    ("labels_topic", "/segmentation", "where ~/labels (class ids) is remapped to"),
    ("namespace", "", "namespace of the node"),
    ("rviz", "false", "start RViz with config/segment.rviz"),
    ("use_sim_time", "false", "use /clock (bag playback)"),
    ("log_level", "info", "debug | info | warn | error"),
]


def generate_launch_description() -> LaunchDescription:
    config = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}
    actions = [DeclareLaunchArgument(n, default_value=d, description=t) for n, d, t in ARGUMENTS]
    if not any(os.environ.get(name) for name in USER_TRANSPORT_SETTINGS):
        actions.append(
            SetEnvironmentVariable(
                "FASTDDS_DEFAULT_PROFILES_FILE",
                os.path.join(SHARE, "config", "fastdds_profile.xml"),
            )
        )
    sim_time = ParameterValue(config["use_sim_time"], value_type=bool)
    actions.append(
        Node(
            package="bisenet_ros",
            executable="segment_node",
            name="segment_node",
            namespace=config["namespace"],
            output="screen",
            parameters=[
                config["params_file"],
                {
                    "cameras": config["cameras"],  # YAML list, parsed by launch_ros
                    "image_topic": ParameterValue(config["image_topic"], value_type=str),
                    "input_transport": ParameterValue(config["input_transport"], value_type=str),
                    "model_path": ParameterValue(config["model_path"], value_type=str),
                    "backend": ParameterValue(config["backend"], value_type=str),
                    "precision": ParameterValue(config["precision"], value_type=str),
                    "use_sim_time": sim_time,
                },
            ],
            remappings=[("~/labels", config["labels_topic"])],
            arguments=["--ros-args", "--log-level", config["log_level"]],
        )
    )
    actions.append(
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            output="screen",
            arguments=["-d", os.path.join(SHARE, "config", "segment.rviz")],
            parameters=[{"use_sim_time": sim_time}],
            condition=IfCondition(config["rviz"]),
        )
    )
    return LaunchDescription(actions)
