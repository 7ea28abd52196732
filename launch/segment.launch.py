"""Launch segment_node for one or more cameras, optionally with RViz.

    ros2 launch bisenet_ros segment.launch.py image_topic:=image_raw cameras:="['/camera']"
    ros2 launch bisenet_ros segment.launch.py model_path:=/models/bisenetv2.engine rviz:=true

Without `launch` (pip-installed ROS), the same node from the same YAML:
    bisenet node --params-file config/segment.yaml
"""

import os

import yaml
from ament_index_python.packages import (
    PackageNotFoundError,
    get_package_prefix,
    get_package_share_directory,
)
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.launch_context import LaunchContext
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from bisenet_ros.ros.transport import default_profile_env
from launch import LaunchDescription

SHARE = get_package_share_directory("bisenet_ros")
ARGUMENTS = [
    ("cameras", "['']", "camera namespaces served by one model, e.g. \"['/front', '/rear']\""),
    ("image_topic", "image", "image topic under each camera namespace"),
    ("input_transport", "raw", "raw (sensor_msgs/Image) or compressed (<image_topic>/compressed)"),
    ("params_file", os.path.join(SHARE, "config", "segment.yaml"), "node parameter file"),
    ("model_path", "", "model (.pt/.pth, .onnx, .engine); empty: the bundled CamVid model"),
    ("backend", "auto", "auto | tensorrt | torch | onnxruntime"),
    ("precision", "fp32", "fp32 | fp16 | int8"),
    ("labels_topic", "/segmentation", "class ids; several cameras: <labels_topic>/<camera>"),
    ("namespace", "", "namespace of the node"),
    ("rviz", "false", "start RViz with config/segment.rviz"),
    ("use_sim_time", "false", "use /clock (bag playback)"),
    ("log_level", "info", "debug | info | warn | error"),
]


def _outputs_remapped(cameras: list[str], labels_topic: str) -> list[tuple[str, str]]:
    """Class ids on ``labels_topic`` for one camera, on ``<labels_topic>/<camera>`` for several."""
    if len(cameras) == 1:
        return [("~/labels", labels_topic)]
    names = [c.strip("/") for c in cameras]
    return [(f"~/{n}/labels", f"{labels_topic.rstrip('/')}/{n}") for n in names]


def _flag(context: LaunchContext, name: str) -> bool:
    value = LaunchConfiguration(name).perform(context).strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"{name}:={value!r} is not a boolean: use {name}:=true or {name}:=false")
    return value == "true"


def _cameras(context: LaunchContext) -> list[str]:
    text = LaunchConfiguration("cameras").perform(context)
    cameras = yaml.safe_load(text)
    if isinstance(cameras, str):
        cameras = [cameras]
    if not (isinstance(cameras, list) and cameras and all(isinstance(c, str) for c in cameras)):
        example = "\"['/front', '/rear']\""
        raise ValueError(f"cameras:={text!r} is not a list of namespaces, e.g. {example}")
    return cameras


def _actions(context: LaunchContext) -> list:
    """The processes to start, decided once every argument is known and valid.

    Every check happens here, before anything starts, so a bad argument or a missing RViz
    never leaves a node running without its launch.
    """
    rviz = _flag(context, "rviz")
    sim_time = _flag(context, "use_sim_time")
    if rviz:
        try:
            get_package_prefix("rviz2")
        except PackageNotFoundError:
            raise RuntimeError(
                "rviz:=true but the rviz2 package is not installed (apt install "
                "ros-$ROS_DISTRO-rviz2); nothing was started. Launch with rviz:=false "
                "and run RViz elsewhere with config/segment.rviz"
            ) from None
    cameras = _cameras(context)
    config = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}
    actions = [
        Node(
            package="bisenet_ros",
            executable="segment_node",
            name="segment_node",
            namespace=config["namespace"],
            output="screen",
            parameters=[
                config["params_file"],
                {
                    "cameras": cameras,
                    "image_topic": ParameterValue(config["image_topic"], value_type=str),
                    "input_transport": ParameterValue(config["input_transport"], value_type=str),
                    "model_path": ParameterValue(config["model_path"], value_type=str),
                    "backend": ParameterValue(config["backend"], value_type=str),
                    "precision": ParameterValue(config["precision"], value_type=str),
                    "use_sim_time": sim_time,
                },
            ],
            remappings=_outputs_remapped(cameras, config["labels_topic"].perform(context)),
            arguments=["--ros-args", "--log-level", config["log_level"]],
            # stop with the launch even when it is killed (SIGTERM leaves children running)
            additional_env={"BISENET_EXIT_WITH_PARENT": "1"},
        )
    ]
    if rviz:
        actions.append(
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                output="screen",
                arguments=["-d", os.path.join(SHARE, "config", "segment.rviz")],
                parameters=[{"use_sim_time": sim_time}],
            )
        )
    return actions


def generate_launch_description() -> LaunchDescription:
    actions = [DeclareLaunchArgument(n, default_value=d, description=t) for n, d, t in ARGUMENTS]
    # Fast DDS drops best-effort images over 0.5 MB unless configured: the shipped profile,
    # through the variable the installed Fast DDS reads, for every process started here,
    # unless the user chose a transport set-up.
    for name, value in default_profile_env().items():
        actions.append(SetEnvironmentVariable(name, value))
    actions.append(OpaqueFunction(function=_actions))
    return LaunchDescription(actions)
