"""``bisenet node`` and ``bisenet demo``: the ROS side of the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..arguments import number
from ..choices import BACKENDS, PRECISIONS
from .node_launch import LABELS_TOPIC

REPO_SHARED = Path(__file__).resolve().parents[3] / "shared"


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    node = subparsers.add_parser(
        "node",
        help="run segment_node (same YAML as the launch file, no `launch` needed)",
        description="Start segment_node from a parameter file; anything after the options "
        "is passed on as ROS arguments (e.g. -r image:=/camera/image_raw).",
    )
    node.add_argument("--params-file", help="node parameters (default: config/segment.yaml)")
    node.add_argument("--model", help="model file (overrides model_path)")
    node.add_argument("--backend", choices=BACKENDS)
    node.add_argument("--precision", choices=PRECISIONS)
    node.add_argument(
        "--labels-topic", default=LABELS_TOPIC, help="remap of ~/labels ('' keeps it)"
    )
    node.add_argument("ros_args", nargs=argparse.REMAINDER, help="extra ROS arguments")
    node.set_defaults(run=run_node)

    demo = subparsers.add_parser(
        "demo",
        help="play CamVid frames through segment_node; write an overlay video and measurements",
    )
    demo.add_argument(
        "--camvid", default=str(REPO_SHARED / "datasets" / "camvid"), help="CamVid folder"
    )
    demo.add_argument("--model", default="", help="model file (default: the bundled model)")
    demo.add_argument("--backend", default="auto", help="auto picks the fastest backend present")
    demo.add_argument(
        "--frames",
        type=number(int, 1),
        default=300,
        help="frames to play (at most the 233 test frames; 300 = 10 s)",
    )
    demo.add_argument(
        "--rate", type=number(float, 0.1, 1000.0), default=30.0, help="camera rate in Hz"
    )
    demo.add_argument("--output-dir", default="demo_output")
    demo.add_argument(
        "--startup-timeout",
        type=number(float, 1.0),
        default=300.0,
        help="seconds for model load/export",
    )
    demo.set_defaults(run=run_demo)


def node_arguments(args: argparse.Namespace) -> list[str]:
    """The ROS command line ``bisenet node`` hands to segment_node's main()."""
    from .node_launch import file_parameters, labels_remappings
    from .package_files import package_file
    from .params import SPECS

    params_file = args.params_file or str(package_file("config", "segment.yaml"))
    cameras = file_parameters(params_file).get("cameras", SPECS["cameras"].default)
    ros = ["--ros-args", "--params-file", params_file]
    for name, value in (
        ("model_path", args.model),
        ("backend", args.backend),
        ("precision", args.precision),
    ):
        if value:
            ros += ["-p", f"{name}:={value}"]
    for leaf, topic in labels_remappings(cameras, args.labels_topic):
        ros += ["-r", f"{leaf}:={topic}"]
    extra = [a for a in args.ros_args if a not in ("--", "--ros-args")]
    return ["segment_node", *ros, *extra]


def run_node(args: argparse.Namespace) -> int:
    try:
        arguments = node_arguments(args)
    except (OSError, ValueError) as error:  # the parameter file: a usage error, as rcl's
        print(f"bisenet node: error: {error}", file=sys.stderr)
        return 2
    from .segment_node import main

    return main(arguments)


def run_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(args)
