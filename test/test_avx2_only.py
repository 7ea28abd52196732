"""benchmarks/avx2_only.py runs a program that sees no AVX-512 or VNNI on a CPU that has them:
numpy, which picks its kernels from CPUID as ONNX Runtime does, is asked what it found."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bisenet_ros.inference.backends.cpu_int8 import cpuinfo_fields

TOOL = Path(__file__).resolve().parents[1] / "benchmarks" / "avx2_only.py"
FEATURES = """
try:
    from numpy._core._multiarray_umath import __cpu_features__ as found
except ImportError:  # numpy 1.x
    from numpy.core._multiarray_umath import __cpu_features__ as found
from bisenet_ros.inference.bench import machine
print(found["AVX2"], found["AVX512F"], found["AVX512VNNI"], "cpuid_mask" in machine())
"""


def seen(*wrapper: str) -> str:
    command = [*wrapper, sys.executable, "-c", FEATURES]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_avx512_and_vnni_are_hidden_and_avx2_is_kept():
    flags = cpuinfo_fields().get("flags", "").split()
    if "cpuid_fault" not in flags:
        pytest.skip("this CPU or hypervisor has no CPUID faulting (cpuid_fault)")
    if not {"avx2", "avx512f", "avx512_vnni"} <= set(flags):
        pytest.skip("this CPU has no AVX-512 VNNI to hide")
    if shutil.which("gcc") is None:
        pytest.skip("no gcc to build benchmarks/avx2_only.c")
    assert seen() == "True True True False"  # what the CPU has
    assert seen(sys.executable, str(TOOL)) == "True False False True"


def test_no_command_is_one_error_line():
    run = subprocess.run([sys.executable, str(TOOL)], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].endswith("error: name the command to run")
    assert "Traceback" not in run.stderr
