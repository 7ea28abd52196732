"""The TensorRT API calls in this project, checked against each supported version's API.

TensorRT cannot be installed here, so this reads the code: every TensorRT name it uses must
exist in 8.6, 10.x and 11.x, except inside export/tensorrt_versions.py, the one module where
version-dependent choices live; names removed in 10.x (the binding API, implicit batch) or
in 11.x (weak typing, calibrators) may appear only there, behind the version they belong to.
The facts come from NVIDIA's migration guides (8.x -> 10.x, 10.x -> 11.x "Removed Python
APIs and Replacements") and the 8.6 Python API reference. The second half runs our version
branching against stand-in modules that expose only each version's enum members: it checks
our branching, not TensorRT.
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from bisenet_ros.export.tensorrt_versions import UnsupportedTensorRT, tensorrt_version

PACKAGE = Path(__file__).resolve().parents[1] / "bisenet_ros"
TENSORRT_MODULES = [
    PACKAGE / "export" / "tensorrt.py",
    PACKAGE / "export" / "tensorrt_versions.py",
    PACKAGE / "inference" / "backends" / "tensorrt_backend.py",
]
VERSIONS_MODULE = PACKAGE / "export" / "tensorrt_versions.py"

# TensorRT names (attributes of the module or of its objects) that some supported version
# lacks: name -> the versions that have it.
NOT_IN_EVERY_VERSION = {
    # removed in 11.x (weak typing, implicit quantization)
    "BuilderFlag.FP16": {"8.6", "10"},
    "BuilderFlag.INT8": {"8.6", "10"},
    "BuilderFlag.BF16": {"10"},
    "BuilderFlag.FP8": {"10"},
    "BuilderFlag.OBEY_PRECISION_CONSTRAINTS": {"8.6", "10"},
    "BuilderFlag.PREFER_PRECISION_CONSTRAINTS": {"8.6", "10"},
    "BuilderFlag.DIRECT_IO": {"8.6", "10"},
    "int8_calibrator": {"8.6", "10"},
    "set_calibration_profile": {"8.6", "10"},
    "get_calibration_profile": {"8.6", "10"},
    "set_quantization_flag": {"8.6", "10"},
    "IInt8Calibrator": {"8.6", "10"},
    "IInt8EntropyCalibrator": {"8.6", "10"},
    "IInt8EntropyCalibrator2": {"8.6", "10"},
    "IInt8MinMaxCalibrator": {"8.6", "10"},
    "IInt8LegacyCalibrator": {"8.6", "10"},
    "platform_has_fast_fp16": {"8.6", "10"},
    "platform_has_fast_int8": {"8.6", "10"},
    "device_memory_size": {"8.6", "10"},
    # new in 10.x
    "NetworkDefinitionCreationFlag.STRONGLY_TYPED": {"10", "11"},
    "DataType.INT64": {"10", "11"},
    "DataType.INT4": {"10", "11"},
    # deprecated (ignored) in 10.x, not relied on in 11.x
    "NetworkDefinitionCreationFlag.EXPLICIT_BATCH": {"8.6", "10"},
}
# removed in 10.x: the binding API and implicit batch, in no supported version but 8.6
REMOVED_IN_10 = {
    "get_binding_shape", "get_binding_dtype", "get_binding_index", "get_binding_name",
    "binding_is_input", "num_bindings", "max_batch_size", "execute", "execute_async",
    "execute_v2", "execute_async_v2", "set_binding_shape", "build_engine", "build_cuda_engine",
    "max_workspace_size", "get_profile_shape", "has_implicit_batch_dimension",
}  # fmt: skip


def tensorrt_names(path: Path) -> list[tuple[int, str]]:
    """(line, name) for every attribute read in the module: ``obj.method`` as ``method``,
    ``trt.Enum.MEMBER`` as ``Enum.MEMBER``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            outer = node.value.attr + "." if isinstance(node.value, ast.Attribute) else ""
            found.append((node.lineno, outer + node.attr))
    return found


def misuses(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        for line, name in tensorrt_names(path):
            where = f"{path.name}:{line}: {name}"
            if name in REMOVED_IN_10 and path != VERSIONS_MODULE:
                found.append(f"{where} was removed in TensorRT 10")
            elif name in NOT_IN_EVERY_VERSION and path != VERSIONS_MODULE:
                versions = ", ".join(sorted(NOT_IN_EVERY_VERSION[name]))
                found.append(f"{where} exists only in TensorRT {versions}")
    return found


def test_tensorrt_calls_exist_in_every_supported_version():
    assert misuses(TENSORRT_MODULES) == []


def test_the_scan_sees_a_removed_call(tmp_path):
    """The checker itself: TensorRT 10's calibrator in a build module is reported."""
    bad = tmp_path / "build.py"
    bad.write_text("def build(trt, config):\n    config.int8_calibrator = None\n")
    assert misuses([bad]) == ["build.py:2: int8_calibrator exists only in TensorRT 10, 8.6"]


# --- our version branching, against stand-ins ---------------------------------------------

ENUMS = {  # enum -> members, per version, as far as our code touches them
    "8.6": {
        "BuilderFlag": ["FP16", "INT8", "TF32"],
        "NetworkDefinitionCreationFlag": ["EXPLICIT_BATCH"],
    },
    "10": {
        "BuilderFlag": ["FP16", "INT8", "TF32", "BF16"],
        "NetworkDefinitionCreationFlag": ["EXPLICIT_BATCH", "STRONGLY_TYPED"],
    },
    "11": {"BuilderFlag": ["TF32"], "NetworkDefinitionCreationFlag": ["STRONGLY_TYPED"]},
}


def stand_in(version: str) -> SimpleNamespace:
    """A module with only that version's members; the flags' values are their positions."""
    enums = {
        enum: SimpleNamespace(**{m: i for i, m in enumerate(members)})
        for enum, members in ENUMS[version].items()
    }
    return SimpleNamespace(**enums)


@pytest.mark.parametrize("version", ["8.6.2", "10.3.0", "10.13.2", "11.4.0"])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_version_branching_uses_only_that_versions_api(version, precision):
    """Our branching only (stand-ins, not TensorRT): every flag it asks for exists there."""
    trt = stand_in(version.split(".")[0] if not version.startswith("8") else "8.6")
    support = tensorrt_version(version)
    flags = support.network_flags(trt)
    to_set = support.flags_to_set(trt, precision)
    to_clear = support.flags_to_clear(trt, precision)
    graph = support.graph_precision(precision)
    if version.startswith("11"):
        assert flags == 0 and to_set == [] and graph == precision
    else:
        explicit = 1 << trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH
        assert flags == (explicit if version.startswith("8") else 0)
        lowered = precision == "fp16" and version.startswith("8")  # fp32 graph + FP16 flag
        assert graph == ("fp32" if lowered else precision)
        expected = {"fp32": [], "fp16": ["FP16"], "int8": ["FP16", "INT8"]}[precision]
        assert to_set == [getattr(trt.BuilderFlag, f) for f in expected]
    assert to_clear == ([trt.BuilderFlag.TF32] if precision == "fp32" else [])


@pytest.mark.parametrize("version", ["7.2.3", "8.5.3", "8.4.1", "9.3.0", "12.0.0", "x"])
def test_other_versions_are_refused_in_one_sentence(version):
    with pytest.raises(UnsupportedTensorRT) as error:
        tensorrt_version(version)
    message = str(error.value)
    assert "\n" not in message and version in message
    if version != "x":
        assert "8.6, 10.x and 11.x" in message
