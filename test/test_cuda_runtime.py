"""The CUDA runtime binding the TensorRT backend runs engines with (no PyTorch needed).

The real libcudart is loaded and called: here, without an NVIDIA driver, every call must
fail with the runtime's own reason; on a machine with a GPU, memory must round-trip.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from bisenet_ros import cuda_runtime
from bisenet_ros.cuda_runtime import CudaError, CudaRuntime, cuda_device_usable, load_library


def usable_runtime() -> CudaRuntime | None:
    try:
        runtime = CudaRuntime()
        runtime.require_device()
    except CudaError:
        return None
    return runtime


def test_without_a_driver_every_call_says_why():
    try:
        runtime = CudaRuntime()
    except CudaError as error:
        pytest.skip(f"no CUDA runtime library here: {error}")
    if usable_runtime() is not None:
        pytest.skip("a CUDA device is usable here")
    assert not cuda_device_usable()
    with pytest.raises(CudaError, match="no NVIDIA driver|sees no CUDA device"):
        runtime.require_device()
    with pytest.raises(CudaError, match="no NVIDIA driver|sees no CUDA device"):
        runtime.device_identity()
    with pytest.raises(CudaError, match=r"cudaMalloc\(64 bytes\) failed: .+ \(CUDA error \d+\)"):
        runtime.malloc(64)


def test_the_pip_wheel_library_is_found(monkeypatch):
    """Without the loader's own copy, the ``nvidia-cuda-runtime`` wheel's libcudart loads."""
    wheels = cuda_runtime._wheel_libraries()
    if not wheels:
        pytest.skip("no nvidia-cuda-runtime wheel installed in this environment")
    monkeypatch.setattr(cuda_runtime.ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(cuda_runtime, "LIBRARY_NAMES", ())
    monkeypatch.setattr(cuda_runtime, "CUDA_LIBRARY_DIRS", ())
    library = load_library()
    assert library._name in map(str, wheels)
    version = ctypes.c_int()
    assert library.cudaRuntimeGetVersion(ctypes.byref(version)) == 0 and version.value >= 11000


def test_the_cuda_install_folder_is_searched(monkeypatch, tmp_path):
    """JetPack's /usr/local/cuda/lib64 is off the loader's path unless configured: found
    there (a folder of that layout holding a real libcudart)."""
    wheels = cuda_runtime._wheel_libraries()
    if not wheels:
        pytest.skip("no nvidia-cuda-runtime wheel to lay out as a CUDA install")
    folder = tmp_path / "cuda" / "targets" / "aarch64-linux" / "lib"
    folder.mkdir(parents=True)
    (folder / wheels[0].name).symlink_to(wheels[0])
    monkeypatch.setattr(cuda_runtime.ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(cuda_runtime, "LIBRARY_NAMES", ())
    monkeypatch.setattr(cuda_runtime, "CUDA_LIBRARY_DIRS", (f"{tmp_path}/cuda/targets/*/lib",))
    monkeypatch.setattr(cuda_runtime, "_wheel_libraries", lambda: [])
    assert load_library()._name == str(folder / wheels[0].name)


def test_no_library_names_the_fix(monkeypatch):
    monkeypatch.setattr(cuda_runtime.ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(cuda_runtime, "LIBRARY_NAMES", ("libcudart-absent.so",))
    monkeypatch.setattr(cuda_runtime, "CUDA_LIBRARY_DIRS", ())
    monkeypatch.setattr(cuda_runtime, "_wheel_libraries", lambda: [])
    with pytest.raises(CudaError, match="no CUDA runtime library .*nvidia-cuda-runtime"):
        CudaRuntime()
    assert not cuda_device_usable()


def test_copies_round_trip_through_device_memory():
    runtime = usable_runtime()
    if runtime is None:
        pytest.skip("no CUDA device here (needs an NVIDIA GPU and driver)")
    assert ", sm " in runtime.device_identity()
    stream = runtime.create_stream()
    sent = np.random.default_rng(0).standard_normal((2, 3, 5, 7)).astype(np.float32)
    back = np.empty_like(sent)
    pointer = runtime.malloc(sent.nbytes)
    try:
        runtime.copy_to_device(pointer, sent, stream)
        runtime.copy_to_host(back, pointer, stream)
        runtime.synchronize(stream)
    finally:
        runtime.free(pointer)
        runtime.destroy_stream(stream)
    np.testing.assert_array_equal(back, sent)
    with pytest.raises(ValueError, match="C-contiguous"):
        runtime.copy_to_device(pointer, sent.transpose(0, 1, 3, 2), stream)
