"""The node's other ways in: `bisenet node` and `segment_node --ros-args` from the shipped YAML,
a missing model, the Fast DDS profile, and the shipped parameter and RViz files.

(`ros2 launch` itself runs in test_launch.py.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy")

from bisenet_ros.ros import params as P  # noqa: E402
from bisenet_ros.ros.outputs import TOGGLE, TYPES  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def frame(street_frames):
    return street_frames[0]


def test_yaml_documents_every_parameter_with_its_default():
    data = yaml.safe_load((REPO / "config" / "segment.yaml").read_text())
    values = data["/**"]["ros__parameters"]
    assert set(values) == set(P.SPECS)
    for name, spec in P.SPECS.items():
        assert values[name] == spec.default, name
        assert type(values[name]) is type(spec.default), name
    assert set(TOGGLE.values()) <= P.DYNAMIC


def test_rviz_config_shows_node_outputs():
    config = yaml.safe_load((REPO / "config" / "segment.rviz").read_text())
    displays = config["Visualization Manager"]["Displays"]
    topics = {d["Topic"]["Value"] for d in displays}
    assert {
        "/segment_node/overlay",
        "/segment_node/labels_color",
        "/segment_node/drivable_mask",
    } <= topics
    assert all(t.rsplit("/", 1)[-1] in TYPES for t in topics)


@pytest.fixture(scope="module")
def probe(ros_env):
    from conftest import probe_node

    with probe_node("launch_probe") as probe:
        yield probe


def segmentation_answers(probe, command: list[str], inputs: dict, frame, workdir) -> str:
    """Start ``command``, publish ``frame`` on each image topic of ``inputs`` until its
    labels topic answers; the command's log."""
    log = workdir / "node.log"
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        for image_topic, labels_topic in inputs.items():
            probe.record(labels_topic)
            camera = probe.camera(image_topic)
            assert probe.wait_for_subscribers(camera, timeout=60), log.read_text()[-3000:]
            assert probe.wait_for_publishers(labels_topic, timeout=30), log.read_text()[-3000:]
            answer = probe.publish_until_answered(
                camera, lambda: probe.frame(frame, "rgb8", "yaml"), labels_topic
            )
            assert answer, f"no labels on {labels_topic}:\n{log.read_text()[-3000:]}"
            probe.node.destroy_publisher(camera)
    finally:
        process.send_signal(2)
        code = process.wait(30)
    assert code == 0, log.read_text()[-3000:]
    return log.read_text()


def test_bisenet_node_and_segment_node_start_from_the_launch_yaml(
    probe,
    model_file,
    model_backend,
    frame,
    tmp_path,
):
    yaml_file = str(REPO / "config" / "segment.yaml")
    bisenet = [
        sys.executable, "-m", "bisenet_ros.cli", "node", "--params-file", yaml_file,
        "--model", str(model_file), "--backend", model_backend, "--",
        "-r", "image:=/yaml_cam/image", "-p", "warmup_iterations:=0",
    ]  # fmt: skip
    log = segmentation_answers(
        probe, bisenet, {"/yaml_cam/image": "/segmentation"}, frame, tmp_path
    )
    assert str(model_file) in log and "weights:" in log

    entry = shutil.which("segment_node", path=os.path.dirname(sys.executable))
    if entry is None:
        pytest.skip("no segment_node console script beside this interpreter")
    ros = [
        entry, "--ros-args", "--params-file", yaml_file, "-p", f"model_path:={model_file}",
        "-p", f"backend:={model_backend}", "-p", "warmup_iterations:=0",
        "-r", "image:=/yaml_cam2/image", "-r", "~/labels:=/segmentation",
    ]  # fmt: skip
    segmentation_answers(probe, ros, {"/yaml_cam2/image": "/segmentation"}, frame, tmp_path)


def test_bisenet_node_names_several_cameras_labels_as_the_launch_file_does(
    probe, model_file, model_backend, frame, tmp_path
):
    """cameras: [front, rear] in the parameter file: labels on /segmentation/<camera>, the
    launch file's names (test_launch.py checks the same through `ros2 launch`)."""
    two = tmp_path / "two.yaml"
    two.write_text("/**:\n  ros__parameters:\n    cameras: [front, rear]\n")
    bisenet = [
        sys.executable, "-m", "bisenet_ros.cli", "node", "--params-file", str(two),
        "--model", str(model_file), "--backend", model_backend, "--",
        "-p", "warmup_iterations:=0",
    ]  # fmt: skip
    inputs = {"/front/image": "/segmentation/front", "/rear/image": "/segmentation/rear"}
    segmentation_answers(probe, bisenet, inputs, frame, tmp_path)


@pytest.mark.parametrize("content", [None, "cameras: [front"])
def test_bisenet_node_with_a_missing_or_broken_params_file_is_one_line(ros_env, tmp_path, content):
    path = tmp_path / "params.yaml"
    if content is not None:
        path.write_text(content)
    run = subprocess.run(
        [sys.executable, "-m", "bisenet_ros.cli", "node", "--params-file", str(path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    (line,) = [x for x in run.stderr.splitlines() if "error:" in x]
    assert line.startswith("bisenet node: error: ") and str(path) in line, run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "name, says", [("no_such_model.pt", "does not exist"), ("models", "is a folder")]
)
def test_missing_model_fails_fast_with_the_path(ros_env, tmp_path, name, says):
    (tmp_path / "models").mkdir()
    missing = tmp_path / name
    run = subprocess.run(
        [sys.executable, "-m", "bisenet_ros.ros.segment_node", "--ros-args",
         "-p", f"model_path:={missing}", "-r", "__node:=missing_model_node"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1
    assert f"model_path {missing} {says}" in run.stderr + run.stdout


@pytest.mark.parametrize(
    "ros_args, said",
    [
        (["-p", "threads:=abc"], "'threads' to 'abc' of type 'STRING', expecting type 'INTEGER'"),
        (["-p", "threads:=-5"], "Parameter threads out of range"),
        (["-p", "cameras:=front"], "expecting type 'STRING_ARRAY'"),
        (["--params-file", "broken.yaml"], "Couldn't parse params file"),
        (["--params-file", "no_such.yaml"], "Couldn't parse params file"),
    ],
)
def test_a_parameter_mistake_is_one_error_line(ros_env, tmp_path, ros_args, said):
    """Wrong type, out of range, a broken or missing parameter file: exit 2 with one
    `segment_node: error:` line naming the mistake and where the types are, no traceback."""
    (tmp_path / "broken.yaml").write_text('/**:\n  ros__parameters:\n    threads: [1, "a"\n')
    run = subprocess.run(
        [sys.executable, "-m", "bisenet_ros.ros.segment_node", "--ros-args", *ros_args],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    (line,) = [x for x in run.stderr.splitlines() if "error:" in x]
    assert line.startswith("segment_node: error: ") and said in line, run.stderr
    assert "segment.yaml" in line and "Traceback" not in run.stderr + run.stdout


def test_fastdds_profile_applied_only_when_the_user_has_none(tmp_path, monkeypatch):
    import xml.etree.ElementTree as ET

    from bisenet_ros.ros.transport import (
        PROFILE_VARIABLE,
        USER_SETTINGS,
        apply_default_profile,
        profile_path,
        profile_variables,
    )

    ns = {"f": "http://www.eprosima.com"}
    root = ET.parse(profile_path()).getroot()
    (shm,) = [d for d in root.iterfind(".//f:transport_descriptor", ns)
              if d.findtext("f:type", namespaces=ns) == "SHM"]  # fmt: skip
    assert int(shm.findtext("f:segment_size", namespaces=ns)) == 32 * 1024 * 1024
    assert root.find(".//f:participant", ns).get("is_default_profile") == "true"

    monkeypatch.chdir(tmp_path)
    env = {}
    assert "32 MiB" in apply_default_profile(env)
    (variable,) = profile_variables()  # the installed Fast DDS generation's
    assert env == {variable: str(profile_path())}
    for name in USER_SETTINGS:
        env = {name: "mine"}
        assert f"from {name}=mine" in apply_default_profile(env) and env == {name: "mine"}
    env = {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}
    apply_default_profile(env)
    assert not set(PROFILE_VARIABLE.values()) & set(env)


@pytest.mark.parametrize(
    "library, variables",
    [
        ("libfastrtps.so.2.6.9", ["FASTRTPS_DEFAULT_PROFILES_FILE"]),  # Humble, Jazzy
        ("libfastdds.so.3.2.2", ["FASTDDS_DEFAULT_PROFILES_FILE"]),  # Kilted
    ],
)
def test_fastdds_profile_variable_follows_the_installed_generation(tmp_path, library, variables):
    from bisenet_ros.ros.transport import apply_default_profile

    (tmp_path / library).touch()  # what the loader would find first on LD_LIBRARY_PATH
    env = {"LD_LIBRARY_PATH": str(tmp_path)}
    line = apply_default_profile(env)
    assert [name for name in env if name.endswith("PROFILES_FILE")] == variables
    assert f"via {variables[0]}" in line


def test_humble_guard_hides_what_humble_lacks_from_our_code(ros_env):
    """The guard every test process runs under (conftest) refuses bisenet_ros the rclpy APIs
    that Humble does not have, in this process and in the processes tests start."""
    code = (
        "import rclpy.node\n"
        "for line in ('import rclpy.event_handler',\n"
        "             'rclpy.node.Node.add_post_set_parameters_callback(None, print)'):\n"
        "    try:\n"
        "        exec(line, {'__name__': 'bisenet_ros.probe', 'rclpy': rclpy})\n"
        "    except (ImportError, AttributeError) as error:\n"
        "        print('refused:', error)\n"
        "import rclpy.event_handler\n"  # rclpy itself and other code keep them
        "import bisenet_ros.ros.segment_node\n"  # and our node imports under the guard
        "print('node imports')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("refused:") == 2 and "Humble" in run.stdout, run.stdout
    assert "node imports" in run.stdout
