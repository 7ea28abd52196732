"""The launch file's wiring, checked without `launch` (not installable here), and the same
node started from the same YAML by `bisenet node` and `segment_node --ros-args`.

The launch file is parsed with ``ast``: every executable it starts must exist, every file it
names must be shipped, every parameter it sets must be declared by the node, every argument
it uses must be declared. What this cannot show: that `ros2 launch` runs it (no `launch`).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy")

from test_node import frames  # noqa: E402,F401  (module fixtures)

from bisenet_ros.ros import params as P  # noqa: E402
from bisenet_ros.ros.segment_node import TOGGLE, VIEWS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch" / "segment.launch.py"
REQUIRED_ARGUMENTS = {
    "cameras", "image_topic", "input_transport", "params_file", "model_path", "backend",
    "precision", "rviz", "use_sim_time", "log_level",
}  # fmt: skip
OUTPUTS = {*VIEWS, "drivable_grid", "camera_info", "info"}


@pytest.fixture(scope="module")
def tree() -> ast.Module:
    return ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))


def calls(tree: ast.Module, name: str) -> list[ast.Call]:
    """Calls of ``name`` or ``something.name``."""
    found = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    return [n for n in found if name in (getattr(n.func, "id", ""), getattr(n.func, "attr", ""))]


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def arguments(tree: ast.Module) -> dict[str, str]:
    """name -> default of the ARGUMENTS table the launch file declares."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ARGUMENTS":
            return {row.elts[0].value: row.elts[1] for row in node.value.elts}
    raise AssertionError("no ARGUMENTS table in the launch file")


def test_it_is_a_launch_file(tree):
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert "generate_launch_description" in functions
    assert calls(tree, "LaunchDescription") and calls(tree, "DeclareLaunchArgument")


def test_executables_exist(tree):
    nodes = {
        (keyword(c, "package").value, keyword(c, "executable").value) for c in calls(tree, "Node")
    }
    assert nodes == {("bisenet_ros", "segment_node"), ("rviz2", "rviz2")}
    # segment_node: the colcon launcher (CMakeLists.txt) and the pip console script (setup.py)
    assert "launchers/segment_node" in (REPO / "CMakeLists.txt").read_text()
    assert "bisenet_ros.ros.segment_node:main" in (REPO / "setup.py").read_text()
    from bisenet_ros.ros.segment_node import main

    assert callable(main)


def test_files_it_names_are_shipped(tree):
    named = [
        n.args[-1].value for n in calls(tree, "join")
        if len(n.args) == 3 and getattr(n.args[0], "id", "") == "SHARE"
    ]  # fmt: skip
    assert set(named) == {"segment.yaml", "fastdds_profile.xml", "segment.rviz"}
    for name in named:
        assert (REPO / "config" / name).is_file(), name
    assert "install(DIRECTORY launch config" in (REPO / "CMakeLists.txt").read_text()


def test_arguments_declared_and_used(tree):
    declared = arguments(tree)
    assert REQUIRED_ARGUMENTS <= set(declared)
    used = {
        n.slice.value for n in ast.walk(tree)
        if isinstance(n, ast.Subscript) and getattr(n.value, "id", "") == "config"
    }  # fmt: skip
    assert used == set(declared), (
        f"unused: {set(declared) - used}, undeclared: {used - set(declared)}"
    )
    for name in ("backend", "precision", "input_transport"):
        assert declared[name].value in P.CHOICES[name]


def test_parameters_it_sets_are_declared_by_the_node(tree):
    (node,) = [c for c in calls(tree, "Node") if keyword(c, "executable").value == "segment_node"]
    overrides = next(e for e in keyword(node, "parameters").elts if isinstance(e, ast.Dict))
    names = {k.value for k in overrides.keys}
    assert names - {"use_sim_time"} <= set(P.SPECS), names - set(P.SPECS)
    (remap,) = keyword(node, "remappings").elts
    assert remap.elts[0].value == "~/labels" and "labels" in OUTPUTS


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
    assert all(t.rsplit("/", 1)[-1] in OUTPUTS for t in topics)


@pytest.fixture(scope="module")
def probe(ros_env):
    from conftest import probe_node

    with probe_node("launch_probe") as probe:
        yield probe


def segmentation_answers(probe, command: list[str], image_topic: str, frame, workdir) -> str:
    """Start ``command``, publish ``frame`` on ``image_topic``, wait for /segmentation."""
    log = workdir / "node.log"
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        probe.record("/segmentation")
        camera = probe.camera(image_topic)
        assert probe.wait_for_subscribers(camera, timeout=60), log.read_text()[-3000:]
        assert probe.wait_for_publishers("/segmentation", timeout=30), log.read_text()[-3000:]
        for _ in range(20):
            msg = probe.frame(frame, "rgb8", "yaml")
            camera.publish(msg)
            if probe.wait_for("/segmentation", msg.header.stamp, timeout=1.0):
                break
        else:
            raise AssertionError(f"no labels on /segmentation:\n{log.read_text()[-3000:]}")
        probe.node.destroy_publisher(camera)
    finally:
        process.send_signal(2)
        code = process.wait(30)
    assert code == 0, log.read_text()[-3000:]
    return log.read_text()


def test_bisenet_node_and_segment_node_start_from_the_launch_yaml(
    probe,
    model_file,
    frames,  # noqa: F811
    tmp_path,
):
    yaml_file = str(REPO / "config" / "segment.yaml")
    bisenet = [
        sys.executable, "-m", "bisenet_ros.cli", "node", "--params-file", yaml_file,
        "--model", str(model_file), "--backend", "torch", "--",
        "-r", "image:=/yaml_cam/image", "-p", "warmup_iterations:=0",
    ]  # fmt: skip
    log = segmentation_answers(probe, bisenet, "/yaml_cam/image", frames[0], tmp_path)
    assert str(model_file) in log and "weights:" in log

    entry = shutil.which("segment_node", path=os.path.dirname(sys.executable))
    if entry is None:
        pytest.skip("no segment_node console script beside this interpreter")
    ros = [
        entry, "--ros-args", "--params-file", yaml_file, "-p", f"model_path:={model_file}",
        "-p", "backend:=torch", "-p", "warmup_iterations:=0",
        "-r", "image:=/yaml_cam2/image", "-r", "~/labels:=/segmentation",
    ]  # fmt: skip
    segmentation_answers(probe, ros, "/yaml_cam2/image", frames[0], tmp_path)


def test_missing_model_fails_fast_with_the_path(ros_env, tmp_path):
    missing = tmp_path / "no_such_model.pt"
    run = subprocess.run(
        [sys.executable, "-m", "bisenet_ros.ros.segment_node", "--ros-args",
         "-p", f"model_path:={missing}", "-r", "__node:=missing_model_node"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1
    assert f"model_path {missing} does not exist" in run.stderr + run.stdout


def test_fastdds_profile_applied_only_when_the_user_has_none(tmp_path, monkeypatch):
    import xml.etree.ElementTree as ET

    from bisenet_ros.ros.transport import apply_default_profile, profile_path

    ns = {"f": "http://www.eprosima.com"}
    root = ET.parse(profile_path()).getroot()
    (shm,) = [d for d in root.iterfind(".//f:transport_descriptor", ns)
              if d.findtext("f:type", namespaces=ns) == "SHM"]  # fmt: skip
    assert int(shm.findtext("f:segment_size", namespaces=ns)) == 32 * 1024 * 1024
    assert root.find(".//f:participant", ns).get("is_default_profile") == "true"

    monkeypatch.chdir(tmp_path)
    env = {}
    assert "32 MiB" in apply_default_profile(env)
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(profile_path())
    for name in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS"):
        env = {name: "mine"}
        assert "user's" in apply_default_profile(env) and env == {name: "mine"}
    env = {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}
    apply_default_profile(env)
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in env
