"""A plain ROS workspace: the repository in ws/src/bisenet_ros, `colcon build`, no Makefile.

What a user with a ROS 2 install does; here the "installation" is the test's own venv with the
ROS 2 wheels (AMENT_PREFIX_PATH/CMAKE_PREFIX_PATH point at it, as sourcing a setup file
would). Then `ros2 run bisenet_ros segment_node` from the workspace's install answers a frame.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

pytest.importorskip("rclpy")

REPO = Path(__file__).resolve().parents[1]
ROS2 = shutil.which("ros2")
# what a checkout holds at its top besides the package: environments, builds, outputs
NOT_SOURCE = (".git", ".venv", "build", "install", "log", "runs", "out", "demo_output", ".gpu_data")


def _source_only(folder: str, names: list[str]) -> set[str]:
    """copytree's ignore: the top level's non-source folders (any leg's), caches anywhere."""
    top = Path(folder) == REPO
    return {
        n for n in names
        if n in ("__pycache__", ".pytest_cache", ".ruff_cache") or n.endswith(".egg-info")
        or (top and n.split("-")[0] in NOT_SOURCE)
    }  # fmt: skip


def _without_repo_install(value: str) -> str:
    """A path list without this checkout's own Makefile-built install."""
    return os.pathsep.join(
        p for p in value.split(os.pathsep) if p and not p.startswith(str(REPO / "install"))
    )


@pytest.mark.skipif(ROS2 is None, reason="no `ros2` command: run `make ros2-tools`")
def test_colcon_workspace_build_runs_the_node(ros_env, camvid_dir, tmp_path):
    from conftest import probe_node

    venv = sys.prefix
    workspace = tmp_path / "ws"
    shutil.copytree(REPO, workspace / "src" / "bisenet_ros", ignore=_source_only)
    env = {
        k: _without_repo_install(v) if k in ("PYTHONPATH", "LD_LIBRARY_PATH") else v
        for k, v in os.environ.items()
        if k not in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH", "COLCON_PREFIX_PATH")
    }
    env |= {"AMENT_PREFIX_PATH": venv, "CMAKE_PREFIX_PATH": venv}
    build = subprocess.run(
        ["colcon", "build", "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}"],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    log = tmp_path / "node.log"
    command = (
        "source install/setup.bash && exec ros2 run bisenet_ros segment_node --ros-args "
        "-r __ns:=/ws -p warmup_iterations:=1 -p max_input_age_ms:=0.0"
    )
    with open(log, "w") as out:
        node = subprocess.Popen(
            ["bash", "-c", command], cwd=workspace, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    frame = cv2.imread(str(sorted((camvid_dir / "test" / "images").glob("*.jpg"))[0]))
    try:
        with probe_node("workspace_probe") as probe:
            probe.record("/ws/segment_node/labels")
            camera = probe.camera("/ws/image")
            assert probe.wait_for_subscribers(camera, timeout=90), log.read_text()[-3000:]
            answer = probe.publish_until_answered(
                camera, lambda: probe.frame(frame, "bgr8"), "/ws/segment_node/labels"
            )
            assert answer is not None, log.read_text()[-3000:]
    finally:
        os.killpg(node.pid, signal.SIGINT)  # Ctrl-C: to `ros2 run` and the node alike
        try:
            code = node.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)  # a failed test leaves nothing running
            raise
    text = log.read_text()
    assert code == 0, text[-3000:]
    # the node ran from the workspace's install, on the model installed with it
    assert f"weights: {workspace / 'install'}" in text, text[-3000:]
