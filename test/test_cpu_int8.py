"""The int8 speed note at load: read from the CPU's own flag list, x86 and ARM."""

from __future__ import annotations

import logging

import pytest

from bisenet_ros.inference.backends.cpu_int8 import (
    cpuinfo_fields,
    int8_dot_product,
    log_int8_speed,
)

EPYC_AVX2 = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 1\n"
    "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n\n"
    "processor\t: 1\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n"
    "flags\t\t: fpu avx2 avx512_vnni\n"
)
XEON_VNNI = "processor\t: 0\nflags\t\t: avx2 avx512f avx512bw avx512_vnni\n"
ORIN = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 atomics asimddp\n"


def test_the_int8_instruction_is_read_from_the_cpu_flags(tmp_path):
    for text, expected in ((EPYC_AVX2, None), (XEON_VNNI, "avx512_vnni"), (ORIN, "asimddp")):
        (tmp_path / "cpuinfo").write_text(text)
        assert int8_dot_product(tmp_path / "cpuinfo") == expected
    assert int8_dot_product(tmp_path / "missing") is None


def test_the_cpu_is_read_from_its_first_processor(tmp_path):
    """A vague model name ("AMD EPYC" under KVM) still comes with its family and model."""
    (tmp_path / "cpuinfo").write_text(EPYC_AVX2)
    fields = cpuinfo_fields(tmp_path / "cpuinfo")
    assert (fields["model name"], fields["cpu family"], fields["model"]) == ("AMD EPYC", "23", "1")
    assert cpuinfo_fields(tmp_path / "missing") == {}


def test_a_cpu_without_vnni_is_warned_about_once_with_the_fix(tmp_path, caplog):
    (tmp_path / "cpuinfo").write_text(EPYC_AVX2)
    with caplog.at_level(logging.INFO):
        log_int8_speed(tmp_path / "cpuinfo")
    (record,) = caplog.records
    assert record.levelname == "WARNING" and "avx512_vnni" in record.message
    assert "bisenet bench" in record.message and "--precisions fp32 int8" in record.message
    caplog.clear()
    (tmp_path / "cpuinfo").write_text(ORIN)
    with caplog.at_level(logging.INFO):
        log_int8_speed(tmp_path / "cpuinfo")
    assert [r.levelname for r in caplog.records] == ["INFO"]
    assert "asimddp" in caplog.records[0].message


def test_loading_an_int8_graph_says_what_this_cpu_has(caplog, tmp_path, camvid_dir):
    """The real backend on this machine's real /proc/cpuinfo."""
    pytest.importorskip("onnx")
    from bisenet_ros.bundled import BUNDLED_ONNX
    from bisenet_ros.export.quantize import quantize_onnx
    from bisenet_ros.inference.backends.onnxruntime_backend import OnnxRuntimeBackend

    graph = quantize_onnx(BUNDLED_ONNX, tmp_path / "int8.onnx", camvid_dir / "val" / "images", 2)
    with caplog.at_level(logging.INFO):
        OnnxRuntimeBackend(graph, "int8")
    notes = [r for r in caplog.records if r.message.startswith("int8 on onnxruntime")]
    found = int8_dot_product()
    assert len(notes) == 1
    assert (found in notes[0].message) if found else ("bisenet bench" in notes[0].message)
