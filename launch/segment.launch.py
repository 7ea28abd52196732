"""Launch segment_node for one or more cameras, optionally with RViz.

    ros2 launch bisenet_ros segment.launch.py image_topic:=image_raw cameras:="['/camera']"
    ros2 launch bisenet_ros segment.launch.py params_file:=robot.yaml max_input_age_ms:=0

Every segment_node parameter is also a launch argument. The parameter file (params_file,
default config/segment.yaml) sets the node's parameters; a launch argument overrides it only
when it is given on the command line. `ros2 launch bisenet_ros segment.launch.py -s` lists
them all.

Without `launch` (pip-installed ROS), the same node from the same YAML:
    bisenet node --params-file config/segment.yaml
"""

import difflib
import os

import launch.logging
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

from bisenet_ros.ros.node_launch import (
    LABELS_TOPIC,
    file_parameters,
    labels_remappings,
    parameter_value,
)
from bisenet_ros.ros.params import SPECS, descriptor
from bisenet_ros.ros.transport import default_profile_env
from launch import LaunchDescription

SHARE = get_package_share_directory("bisenet_ros")
NOT_GIVEN = "<params_file>"  # a node parameter's launch default: the parameter file's value
ARGUMENTS = [  # the launch file's own arguments; the node's parameters follow them
    ("params_file", os.path.join(SHARE, "config", "segment.yaml"), "node parameter file"),
    ("labels_topic", LABELS_TOPIC, "class ids; several cameras: <labels_topic>/<camera>"),
    ("namespace", "", "namespace of the node"),
    ("rviz", "false", "start RViz with config/segment.rviz"),
    ("use_sim_time", NOT_GIVEN, "use /clock (bag playback); default: the file's, else false"),
    ("log_level", "info", "debug | info | warn | error"),
]


def _flag(context: LaunchContext, name: str, default: bool = False) -> bool:
    value = LaunchConfiguration(name).perform(context).strip().lower()
    if value == NOT_GIVEN:
        return default
    if value not in ("true", "false"):
        raise ValueError(f"{name}:={value!r} is not a boolean: use {name}:=true or {name}:=false")
    return value == "true"


def _given(context: LaunchContext) -> dict:
    """The node parameters given as launch arguments, typed like the node declares them."""
    given = {}
    for name in SPECS:
        text = LaunchConfiguration(name).perform(context)
        if text != NOT_GIVEN:
            given[name] = parameter_value(name, text)
    return given


def _warn_unknown(context: LaunchContext) -> None:
    """A launch argument that is neither ours nor the node's is ignored: say so, with the
    nearest real name (an including launch file's own arguments are far from ours)."""
    ours = [name for name, _, _ in ARGUMENTS] + list(SPECS)
    for name in sorted(set(context.launch_configurations) - set(ours)):
        close = difflib.get_close_matches(name, ours, n=1, cutoff=0.8)
        if close:
            launch.logging.get_logger("segment.launch.py").warning(
                f"{name} is not an argument of segment.launch.py and is ignored; did you "
                f"mean {close[0]}? (-s lists them all)"
            )


def _actions(context: LaunchContext) -> list:
    """The processes to start, decided once every argument is known and valid.

    Every check happens here, before anything starts, so a bad argument, a missing
    parameter file or a missing RViz never leaves a node running without its launch.
    """
    params_file = LaunchConfiguration("params_file").perform(context)
    namespace = LaunchConfiguration("namespace").perform(context)
    try:
        from_file = file_parameters(params_file, namespace)
    except (OSError, ValueError) as error:
        raise RuntimeError(f"params_file:={params_file}: {error}; nothing was started") from None
    given = _given(context)
    sim_time = _flag(context, "use_sim_time", bool(from_file.get("use_sim_time", False)))
    if LaunchConfiguration("use_sim_time").perform(context) != NOT_GIVEN:
        given["use_sim_time"] = sim_time
    rviz = _flag(context, "rviz")
    if rviz:
        try:
            get_package_prefix("rviz2")
        except PackageNotFoundError:
            raise RuntimeError(
                "rviz:=true but the rviz2 package is not installed (apt install "
                "ros-$ROS_DISTRO-rviz2); nothing was started. Launch with rviz:=false "
                "and run RViz elsewhere with config/segment.rviz"
            ) from None
    cameras = given.get("cameras", from_file.get("cameras", SPECS["cameras"].default))
    labels_topic = LaunchConfiguration("labels_topic").perform(context)
    # strings stay strings (launch_ros would read image_topic:=123 as a number)
    overrides = {
        name: ParameterValue(value, value_type=str) if isinstance(value, str) else value
        for name, value in given.items()
    }
    _warn_unknown(context)
    actions = [
        Node(
            package="bisenet_ros",
            executable="segment_node",
            name="segment_node",
            namespace=namespace,
            output="screen",
            parameters=[params_file, overrides] if overrides else [params_file],
            remappings=labels_remappings(cameras, labels_topic),
            arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
            # stop with the launch even when it is killed (SIGTERM leaves children running)
            additional_env={"BISENET_EXIT_WITH_PARENT": "1"},
        ),
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
    actions += [
        DeclareLaunchArgument(
            name, default_value=NOT_GIVEN, description=descriptor(name, spec).description
        )
        for name, spec in SPECS.items()
    ]
    # Fast DDS drops best-effort images over 0.5 MB unless configured: the shipped profile,
    # through the variable the installed Fast DDS reads, for every process started here,
    # unless the user chose a transport set-up.
    for name, value in default_profile_env().items():
        actions.append(SetEnvironmentVariable(name, value))
    actions.append(OpaqueFunction(function=_actions))
    return LaunchDescription(actions)
