"""Shared fixtures: real data beside the checkout, and an isolated rclpy context.

Data folders default to ``../shared/...`` relative to the repository and can be moved with
``BISENET_CAMVID_DIR`` / ``BISENET_RUGD_DIR``; tests that need them skip when they are absent.

Every test process and every process the tests start runs as on ROS 2 Humble where the APIs
differ (``guards/``: the rclpy APIs Humble lacks are hidden from bisenet_ros) and with
``ROS_PYTHON_CHECK_FIELDS=1`` (message field types checked on assignment, as Humble always
does), so that code which would break on a Jetson breaks here.

ROS tests run in a DDS domain of their own (``ROS_DOMAIN_ID`` derived from the process id,
or ``BISENET_TEST_DOMAIN_ID``), limited to this machine, so parallel test runs and robots on
the network never see each other's topics. Processes the tests start inherit it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

GUARDS = Path(__file__).resolve().parent / "guards"
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(GUARDS), *filter(None, [os.environ.get("PYTHONPATH")])]
)
os.environ["ROS_PYTHON_CHECK_FIELDS"] = "1"
_guards = importlib.util.spec_from_file_location("guards", GUARDS / "sitecustomize.py")
_guards.loader.exec_module(importlib.util.module_from_spec(_guards))

TEST_DOMAIN_ID = int(os.environ.get("BISENET_TEST_DOMAIN_ID", 1 + os.getpid() % 100))
os.environ["ROS_DOMAIN_ID"] = str(TEST_DOMAIN_ID)
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

# `make test` sets this: there, the ROS environment (install/setup.bash) must be complete and a
# missing message package is an error, not a skip.
REQUIRE_ROS = os.environ.get("BISENET_REQUIRE_ROS") == "1"


# Where the real data lives: beside the checkout, or where the variables say. Tests take it
# from the fixtures below (which skip when it is absent) or, outside fixtures, from these.
CAMVID_PATH = Path(os.environ.get("BISENET_CAMVID_DIR", SHARED / "datasets" / "camvid")).resolve()
RUGD_PATH = Path(
    os.environ.get("BISENET_RUGD_DIR", SHARED / "reference" / "rugd_bisenetv2")
).resolve()


def rugd_class_table(rugd_dir: Path) -> tuple[list[str], list[tuple[int, int, int]]]:
    """The RUGD reference's class names (one per line) and RGB colours (``r g b`` per line)."""
    names = [n.strip() for n in (rugd_dir / "rugd_names.txt").read_text().splitlines()]
    lines = (rugd_dir / "rugd_colors.txt").read_text().split("\n")
    colors = [tuple(int(v) for v in line.split()[:3]) for line in lines if line.strip()]
    names = [n for n in names if n]
    assert len(colors) == len(names)
    return names, colors


def _data_dir(path: Path, env: str, what: str) -> Path:
    if not path.is_dir():
        pytest.skip(f"{what} not found at {path} (set {env} to its folder)")
    return path


@pytest.fixture(scope="session")
def camvid_dir() -> Path:
    """Real CamVid frames and labels (``../shared/datasets/camvid``)."""
    return _data_dir(CAMVID_PATH, "BISENET_CAMVID_DIR", "CamVid dataset")


@pytest.fixture(scope="session")
def rugd_dir() -> Path:
    """Real RUGD BiSeNetV2 weights and reference output (``../shared/reference/rugd_bisenetv2``)."""
    return _data_dir(RUGD_PATH, "BISENET_RUGD_DIR", "RUGD BiSeNetV2 reference")


@pytest.fixture(scope="session")
def rugd_checkpoint(rugd_dir, tmp_path_factory):
    """Factory: the real RUGD BiSeNetV2 weights, with their class table, as a project
    checkpoint that runs at ``input_size`` (H, W); made once per size and session."""
    pytest.importorskip("torch")  # the jazzy-py310 leg runs without PyTorch
    made: dict[tuple[int, int], Path] = {}

    def make(input_size: tuple[int, int]) -> Path:
        from bisenet_ros.manifest import Manifest
        from bisenet_ros.models import load_checkpoint, save_checkpoint

        if input_size not in made:
            names, colors = rugd_class_table(rugd_dir)
            manifest = Manifest.default("bisenetv2", 25).with_classes(names, colors)
            manifest.input_size = tuple(input_size)
            model, manifest = load_checkpoint(
                rugd_dir / "bisenetv2_rugd25_coincheung_fp16.pth", manifest=manifest
            )
            folder = tmp_path_factory.mktemp("rugd_checkpoint")
            made[input_size] = save_checkpoint(folder / "rugd.pt", model, manifest)
        return made[input_size]

    return make


@pytest.fixture(scope="session")
def model_file(tmp_path_factory) -> Path:
    """A tiny CamVid-class model (random weights) for tests where file handling and plumbing
    matter, not accuracy: a BiSeNetV2 checkpoint in the project format, or, where PyTorch is
    not installed (the jazzy-py310 leg), a one-convolution ONNX graph with the exported
    graphs' inputs, outputs and manifest."""
    from bisenet_ros.manifest import CAMVID, Manifest

    manifest = Manifest(
        arch="bisenetv2",
        class_names=[n for n, _ in CAMVID],
        palette=[c for _, c in CAMVID],
        input_size=(96, 128),
        drivable_ids=[3],
    )
    folder = tmp_path_factory.mktemp("model")
    if importlib.util.find_spec("torch") is None:
        return _tiny_onnx(manifest, folder / "tiny.onnx")
    import torch

    from bisenet_ros.models import build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model("bisenetv2", manifest.num_classes).eval()
    return save_checkpoint(folder / "tiny.pt", model, manifest)


def _tiny_onnx(manifest, path: Path) -> Path:
    """A 3x3 convolution to class scores, then the exported graphs' tail: uint8 ids (argmax,
    through float) and uint8 confidence (max softmax x 255)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from bisenet_ros.onnx_metadata import set_manifest_metadata

    classes, (height, width) = manifest.num_classes, manifest.input_size
    # small weights: scores close together, so no pixel is certain (confidence below 255)
    weights = 0.05 * np.random.default_rng(0).standard_normal((classes, 3, 3, 3))
    weights = weights.astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["scores"], pads=[1, 1, 1, 1]),
        helper.make_node("ArgMax", ["scores"], ["top"], axis=1, keepdims=0),
        helper.make_node("Cast", ["top"], ["top_float"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["top_float"], ["ids"], to=TensorProto.UINT8),
        helper.make_node("Softmax", ["scores"], ["probs"], axis=1),
        helper.make_node("ReduceMax", ["probs"], ["best"], axes=[1], keepdims=0),
        helper.make_node("Mul", ["best", "scale"], ["scaled"]),
        helper.make_node("Round", ["scaled"], ["rounded"]),
        helper.make_node("Cast", ["rounded"], ["confidence"], to=TensorProto.UINT8),
    ]
    initializers = [
        numpy_helper.from_array(weights, "w"),
        numpy_helper.from_array(np.array(255.0, np.float32), "scale"),
    ]
    image = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, height, width])
    outputs = [
        helper.make_tensor_value_info(name, TensorProto.UINT8, ["batch", height, width])
        for name in ("ids", "confidence")
    ]
    graph = helper.make_graph(nodes, "tiny", [image], outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    set_manifest_metadata(model, manifest)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def model_backend(model_file) -> str:
    """The backend the node tests run ``model_file`` on."""
    return "torch" if model_file.suffix == ".pt" else "onnxruntime"


def _ros_missing() -> str | None:
    """Why rclpy or this package's generated messages cannot be imported, or None."""
    for module in ("rclpy", "bisenet_ros.msg"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if found:
            continue
        why = f"{module} is not importable"
        package = importlib.util.find_spec("bisenet_ros")
        if module == "bisenet_ros.msg" and package and package.origin:
            if Path(package.origin).parent == REPO / "bisenet_ros":
                why += (
                    f": bisenet_ros was imported from the source tree {REPO / 'bisenet_ros'},"
                    " which has no generated msg/ (`python -m` puts the current directory"
                    " first: run `pytest`, not `python -m pytest`)"
                )
        return f"{why}; run the tests with `make test` (or source install/setup.bash)"
    return None


@pytest.fixture(scope="session")
def ros_env() -> None:
    """rclpy and the generated messages are importable, else skip (fail under `make test`)."""
    missing = _ros_missing()
    if missing:
        if REQUIRE_ROS:
            pytest.fail(missing, pytrace=False)
        pytest.skip(missing)


@contextlib.contextmanager
def running_context():
    """An initialised rclpy context of its own (test domain), shut down on leaving."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context, domain_id=TEST_DOMAIN_ID)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)


@contextlib.contextmanager
def probe_node(name: str = "probe"):
    """A ``TestProbe`` on a context of its own, with the shipped Fast DDS profile."""
    from probe import TestProbe

    from bisenet_ros.ros.transport import apply_default_profile

    apply_default_profile()
    with running_context() as context:
        probe = TestProbe(name, context=context)
        try:
            yield probe
        finally:
            probe.close()


@pytest.fixture
def ros_context(ros_env):
    """An initialised rclpy context of its own (test domain), shut down after the test."""
    with running_context() as context:
        yield context


@pytest.fixture(scope="session")
def street_frames(camvid_dir) -> list:
    """Three real CamVid test frames, RGB, resized to 320x240: what the node tests send."""
    import cv2

    paths = sorted((camvid_dir / "test" / "images").glob("*.jpg"))[:3]
    return [cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (320, 240))
            for p in paths]  # fmt: skip


@pytest.fixture(scope="session")
def node_params(model_file, model_backend) -> dict:
    """The node tests' base parameters: the tiny model on one thread, one warm-up, and no
    age check (a loaded CI machine must not turn tests into drops)."""
    return {"model_path": str(model_file), "backend": model_backend, "threads": 1,
            "warmup_iterations": 1, "max_input_age_ms": 0.0}  # fmt: skip


@pytest.fixture(scope="session")
def tiny_segmenter(model_file, model_backend):
    """The Segmenter the node tests' nodes run (model_file, one thread): the reference their
    outputs are compared with, bit for bit."""
    from bisenet_ros.inference import Segmenter

    return Segmenter.from_file(model_file, backend=model_backend, threads=1)


def pytest_addoption(parser):
    parser.addoption(
        "--shuffle",
        type=int,
        metavar="SEED",
        help="run the test files in a random order, and each file's tests in a random order "
        "(seeded): shows that no test depends on another having run before it",
    )


def pytest_collection_modifyitems(config, items):
    seed = config.getoption("--shuffle")
    if seed is None:
        return
    import random

    rng = random.Random(seed)
    modules: dict[str, list] = {}
    for item in items:  # one bucket per file, so that module fixtures start once
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    buckets = list(modules.values())
    rng.shuffle(buckets)
    for bucket in buckets:
        rng.shuffle(bucket)
    items[:] = [item for bucket in buckets for item in bucket]
    print(f"test order shuffled with seed {seed}")


# --- model files never run code: what an attacker (or mmengine) pickles ---------------

PAYLOAD_MODULE = '''
import os


class Planted:
    """What an attacker pickles: unpickling it calls os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class TrainingMeta:
    """Stands for mmengine's config objects in an mmsegmentation checkpoint's meta."""

    def __init__(self):
        self.config = "model = dict(type='BiSeNetV2')"
'''


@pytest.fixture
def foreign_classes(tmp_path, monkeypatch):
    """A module of classes that exist while saving, like an attacker's or mmengine's, and
    are gone (not importable) when the file is loaded, as on a user's machine."""
    import importlib
    import sys

    (tmp_path / "foreign_module.py").write_text(PAYLOAD_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("foreign_module")
    yield module
    sys.modules.pop("foreign_module", None)
