"""Whether this CPU multiplies int8 in one instruction, which is what makes int8 pay on it.

ONNX Runtime's integer convolutions (MLAS) use VNNI (``avx512_vnni``, ``avx_vnni``), AMX
(``amx_int8``) or ARM's dot product (``asimddp``) where the CPU has them. Without them, on
x86 with AVX2 only, a u8 x s8 product takes three instructions and saturates in 16 bits, and
what int8 gains depends on the core: at 512x1024 the whole network ran 0.96x fp32 on one
AVX2-only AMD EPYC, 1.27x on another, a first-generation one, and 1.58x with the same AVX2
kernels on an Intel Xeon core (docs/inference.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

INT8_DOT_PRODUCT = ("amx_int8", "avx512_vnni", "avx_vnni", "asimddp")


def cpuinfo_fields(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """The first processor's ``key: value`` lines of ``cpuinfo``; empty where there is no
    such file. Under a hypervisor the model name can be as vague as "AMD EPYC"; the family
    and model numbers still tell the cores apart."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def int8_dot_product(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The first of ``INT8_DOT_PRODUCT`` the CPU lists in ``cpuinfo`` (x86 ``flags``, ARM
    ``Features``), or None; None too where there is no such file."""
    fields = cpuinfo_fields(cpuinfo)
    listed = set(fields.get("flags", "").split()) | set(fields.get("Features", "").split())
    return next((flag for flag in INT8_DOT_PRODUCT if flag in listed), None)


def log_int8_speed(cpuinfo: Path = Path("/proc/cpuinfo")) -> None:
    """Say once at load whether int8 will pay on this CPU, and what to do where it will not."""
    found = int8_dot_product(cpuinfo)
    if found:
        log.info("int8 on onnxruntime: this CPU has %s, int8 products in one instruction", found)
    elif cpuinfo.is_file():
        log.warning(
            "int8 on onnxruntime: this CPU lists none of %s in %s, so its int8 products take "
            "several instructions and what int8 gains depends on the core (0.96x to 1.27x "
            "fp32 on AVX2-only AMD EPYCs, 1.58x with the same kernels on an Intel Xeon core, "
            "docs/inference.md); measure both here with `bisenet bench` (--precisions fp32 "
            "int8), or run int8 on a CPU with VNNI (Intel Cascade Lake or Alder Lake and "
            "later, AMD Zen 4 and later) or ARM's dot product",
            ", ".join(INT8_DOT_PRODUCT),
            cpuinfo,
        )
