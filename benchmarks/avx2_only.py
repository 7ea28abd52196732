"""Run a command as on a CPU with AVX2 but without AVX-512, VNNI or AMX.

int8 on ONNX Runtime is as fast as the CPU's int8 instructions: with VNNI a u8 x s8 product
is one instruction, with AVX2 only it takes three. This measures the AVX2 kernels on a
machine that has more, by hiding the newer features from CPUID (``avx2_only.c``), the
instruction every library asks before it picks its kernels. The core stays what it is:
figures measured this way are those of the AVX2 kernels on this core, not of another CPU.
``/proc/cpuinfo`` still lists every feature; the bench JSON records the mask under
``cpuid_mask``.

    python benchmarks/avx2_only.py bisenet bench bisenet_ros/weights/bisenetv2_camvid.pt \\
        --frames ../shared/datasets/camvid/test/images \\
        --calibration ../shared/datasets/camvid/train/images --backends onnxruntime \\
        --precisions fp32 int8 --sizes 512x1024 360x480 --threads 2 --json bench.json

Needs Linux's CPUID faulting (flag ``cpuid_fault``) and gcc.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bisenet_ros.inference.backends.cpu_int8 import cpuinfo_fields
from bisenet_ros.inference.bench import CPUID_MASK_ENV

SHIM = Path(__file__).with_suffix(".c")
MASK = "avx2-only: AVX-512, VNNI and AMX hidden from CPUID by benchmarks/avx2_only.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    args = parser.parse_args()
    if not args.command:
        parser.error("name the command to run")
    if "cpuid_fault" not in cpuinfo_fields().get("flags", "").split():
        parser.error(
            "this CPU or hypervisor has no CPUID faulting (no cpuid_fault flag in "
            "/proc/cpuinfo), so its features cannot be hidden: measure on an AVX2-only CPU"
        )
    gcc = shutil.which("gcc")
    if gcc is None:
        parser.error("gcc not found: install it (apt install gcc) to build avx2_only.c")
    with tempfile.TemporaryDirectory() as build:
        library = Path(build) / "avx2_only.so"
        subprocess.run([gcc, "-O2", "-shared", "-fPIC", "-o", library, SHIM], check=True)
        preload = " ".join(filter(None, [str(library), os.environ.get("LD_PRELOAD")]))
        env = os.environ | {"LD_PRELOAD": preload, CPUID_MASK_ENV: MASK}
        env.pop("PYTHONFAULTHANDLER", None)  # its SIGSEGV handler would replace the shim's
        print(MASK, file=sys.stderr, flush=True)
        try:
            return subprocess.call(args.command, env=env)
        except FileNotFoundError:
            parser.error(f"command not found: {args.command[0]}")


if __name__ == "__main__":
    sys.exit(main())
