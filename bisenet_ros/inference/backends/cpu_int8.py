"""Whether this CPU multiplies int8 in one instruction, which is what makes int8 pay on it.

ONNX Runtime's integer convolutions (MLAS) use VNNI (``avx512_vnni``, ``avx_vnni``), AMX
(``amx_int8``) or ARM's dot product (``asimddp``) where the CPU has them. Without them, on
x86 with AVX2 only, a u8 x s8 product takes three instructions and saturates in 16 bits:
measured on an AMD EPYC (AVX2, 2 threads), a 64-channel 3x3 convolution at 256x512 took
152 ms in int8 and 157 ms in fp32, and the whole network at 512x1024 ran 1.0x-1.3x fp32
(docs/inference.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

INT8_DOT_PRODUCT = ("amx_int8", "avx512_vnni", "avx_vnni", "asimddp")


def int8_dot_product(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The first of ``INT8_DOT_PRODUCT`` the CPU lists in ``cpuinfo`` (x86 ``flags``, ARM
    ``Features``), or None; None too where there is no such file."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    listed = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            listed.update(value.split())
    return next((flag for flag in INT8_DOT_PRODUCT if flag in listed), None)


def log_int8_speed(cpuinfo: Path = Path("/proc/cpuinfo")) -> None:
    """Say once at load whether int8 will pay on this CPU, and what to do where it will not."""
    found = int8_dot_product(cpuinfo)
    if found:
        log.info("int8 on onnxruntime: this CPU has %s, int8 products in one instruction", found)
    elif cpuinfo.is_file():
        log.warning(
            "int8 on onnxruntime: this CPU lists none of %s in %s, so its int8 convolutions "
            "run at about fp32 speed and int8 only costs agreement; use precision fp32 on "
            "it, or int8 on a CPU with VNNI (Intel Cascade Lake or Alder Lake and later, "
            "AMD Zen 4 and later) or ARM's dot product",
            ", ".join(INT8_DOT_PRODUCT),
            cpuinfo,
        )
