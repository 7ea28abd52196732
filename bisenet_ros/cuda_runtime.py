"""The few CUDA runtime calls a TensorRT engine needs, bound with ctypes.

A Jetson that runs an engine often has neither PyTorch nor cuda-python, but always has the
CUDA runtime library: JetPack's ``/usr/local/cuda``, or the ``nvidia-cuda-runtime`` wheel that
pip installs beside TensorRT or PyTorch. Device buffers, one stream, copies and the device's
identity are all the TensorRT path asks of it. The C signatures bound here are the same in
CUDA 11, 12 and 13.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
from pathlib import Path

import numpy as np

LIBRARY_NAMES = ("libcudart.so", "libcudart.so.12", "libcudart.so.13", "libcudart.so.11.0")
# where JetPack and NVIDIA's CUDA installers put it, off the loader's path unless configured
CUDA_LIBRARY_DIRS = ("/usr/local/cuda/lib64", "/usr/local/cuda/targets/*/lib")
HOST_TO_DEVICE, DEVICE_TO_HOST = 1, 2  # cudaMemcpyKind
MULTIPROCESSOR_COUNT, CAPABILITY_MAJOR, CAPABILITY_MINOR = 16, 75, 76  # cudaDeviceAttr
PROPERTIES_BYTES = 8192  # more than any CUDA version's cudaDeviceProp; its name comes first
NAME_BYTES = 256


class CudaError(RuntimeError):
    """A CUDA runtime call failed, or there is no CUDA runtime or device to call."""


def _cuda_dir_libraries() -> list[Path]:
    """libcudart in ``/usr/local/cuda`` (JetPack's, and NVIDIA's installers')."""
    found = []
    for pattern in CUDA_LIBRARY_DIRS:
        for folder in sorted(Path("/").glob(pattern.lstrip("/"))):
            found += sorted(folder.glob("libcudart.so*"), reverse=True)
    return found


def _wheel_libraries() -> list[Path]:
    """libcudart from the ``nvidia-*`` wheels pip installs (not on the loader's path)."""
    spec = importlib.util.find_spec("nvidia")
    if spec is None or spec.submodule_search_locations is None:
        return []
    found = []
    for root in spec.submodule_search_locations:
        found += sorted(Path(root).glob("*/lib/libcudart.so*"), reverse=True)
    return found


def load_library() -> ctypes.CDLL:
    """The CUDA runtime library: the loader's own search, then ``/usr/local/cuda``, then pip's
    ``nvidia`` wheels; the first one the installed driver can run (a runtime newer than the
    driver fails every call with "insufficient driver")."""
    system = ctypes.util.find_library("cudart")
    candidates = [*([system] if system else []), *LIBRARY_NAMES,
                  *map(str, _cuda_dir_libraries()), *map(str, _wheel_libraries())]  # fmt: skip
    too_new = []
    for name in dict.fromkeys(candidates):
        try:
            library = ctypes.CDLL(name)
        except OSError:
            continue
        driver, runtime = _versions(library)
        if driver and runtime > driver:
            too_new.append(f"{name} (CUDA {_dotted(runtime)})")
            continue
        return library
    if too_new:
        raise CudaError(
            f"every CUDA runtime library found is newer than the driver ({_dotted(driver)}): "
            f"{', '.join(too_new)}; install the runtime that matches the driver (pip "
            "nvidia-cuda-runtime-cu12 for a CUDA 12 driver) or update the driver"
        )
    raise CudaError(
        "no CUDA runtime library (libcudart.so) found: on a Jetson add /usr/local/cuda/lib64 "
        "to LD_LIBRARY_PATH; elsewhere `pip install nvidia-cuda-runtime-cu12`"
    )


def _versions(library: ctypes.CDLL) -> tuple[int, int]:
    """(driver, runtime) CUDA versions as 12040 for 12.4; driver 0: no driver loaded."""
    driver, runtime = ctypes.c_int(), ctypes.c_int()
    library.cudaDriverGetVersion(ctypes.byref(driver))
    library.cudaRuntimeGetVersion(ctypes.byref(runtime))
    return driver.value, runtime.value


def _dotted(version: int) -> str:
    return f"{version // 1000}.{version % 1000 // 10}"


class CudaRuntime:
    """Device memory, streams and copies on the current CUDA device; every failure raises
    ``CudaError`` with the runtime's own message."""

    def __init__(self, library: ctypes.CDLL | None = None) -> None:
        self._lib = library if library is not None else load_library()
        self._lib.cudaGetErrorString.restype = ctypes.c_char_p
        self._lib.cudaGetErrorString.argtypes = [ctypes.c_int]
        self._lib.cudaMemcpyAsync.argtypes = [
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p
        ]  # fmt: skip
        for call in ("cudaFree", "cudaFreeHost", "cudaStreamDestroy", "cudaStreamSynchronize"):
            getattr(self._lib, call).argtypes = [ctypes.c_void_p]

    def _check(self, status: int, call: str) -> None:
        if status != 0:
            message = self._lib.cudaGetErrorString(status).decode()
            raise CudaError(f"{call} failed: {message} (CUDA error {status})")

    def _int(self, call: str, *args: int) -> int:
        value = ctypes.c_int()
        self._check(getattr(self._lib, call)(ctypes.byref(value), *args), call)
        return value.value

    def require_device(self) -> None:
        """Raise ``CudaError`` naming the cause unless a CUDA device is usable."""
        if self._int("cudaDriverGetVersion") == 0:
            raise CudaError("no NVIDIA driver is loaded, so there is no CUDA device")
        if self._int("cudaGetDeviceCount") == 0:
            raise CudaError("the NVIDIA driver sees no CUDA device")

    def device_identity(self) -> str:
        """Name, compute capability, SM count and memory of the current device: what a
        TensorRT engine depends on (every Jetson Orin module is named "Orin", sm 8.7)."""
        self.require_device()
        device = self._int("cudaGetDevice")
        properties = ctypes.create_string_buffer(PROPERTIES_BYTES)
        get_properties = getattr(self._lib, "cudaGetDeviceProperties_v2", None)
        if get_properties is None:  # CUDA 11 and 13 have only this name (13: the new layout)
            get_properties = self._lib.cudaGetDeviceProperties
        self._check(get_properties(properties, device), "cudaGetDeviceProperties")
        name = properties.raw[:NAME_BYTES].split(b"\0", 1)[0].decode()
        major = self._int("cudaDeviceGetAttribute", CAPABILITY_MAJOR, device)
        minor = self._int("cudaDeviceGetAttribute", CAPABILITY_MINOR, device)
        sms = self._int("cudaDeviceGetAttribute", MULTIPROCESSOR_COUNT, device)
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        self._check(self._lib.cudaMemGetInfo(ctypes.byref(free), ctypes.byref(total)),
                    "cudaMemGetInfo")  # fmt: skip
        return f"{name}, sm {major}.{minor}, {sms} SMs, {total.value >> 20} MiB"

    def malloc(self, nbytes: int) -> int:
        pointer = ctypes.c_void_p()
        self._check(self._lib.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(nbytes)),
                    f"cudaMalloc({nbytes} bytes)")  # fmt: skip
        return pointer.value

    def free(self, pointer: int) -> None:
        self._check(self._lib.cudaFree(pointer), "cudaFree")

    def host_alloc(self, nbytes: int) -> tuple[int, np.ndarray]:
        """Pinned (page-locked) host memory, which the copy engines read and write directly
        (a pageable array is staged through a driver buffer first): (pointer, uint8 view).
        Free it with ``free_host`` once the view is no longer used."""
        pointer = ctypes.c_void_p()
        self._check(self._lib.cudaHostAlloc(ctypes.byref(pointer), ctypes.c_size_t(nbytes), 0),
                    f"cudaHostAlloc({nbytes} bytes)")  # fmt: skip
        view = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(pointer.value))
        return pointer.value, view

    def free_host(self, pointer: int) -> None:
        self._check(self._lib.cudaFreeHost(pointer), "cudaFreeHost")

    def create_stream(self) -> int:
        stream = ctypes.c_void_p()
        self._check(self._lib.cudaStreamCreate(ctypes.byref(stream)), "cudaStreamCreate")
        return stream.value

    def destroy_stream(self, stream: int) -> None:
        self._check(self._lib.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def synchronize(self, stream: int) -> None:
        self._check(self._lib.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def copy_to_device(self, pointer: int, array: np.ndarray, stream: int) -> None:
        """Queue a copy of ``array`` (C-contiguous) into device memory at ``pointer``; the
        array must live until ``synchronize(stream)``."""
        if not array.flags.c_contiguous:
            raise ValueError("copy_to_device needs a C-contiguous array")
        status = self._lib.cudaMemcpyAsync(pointer, array.ctypes.data, array.nbytes,
                                           HOST_TO_DEVICE, stream)  # fmt: skip
        self._check(status, "cudaMemcpyAsync (host to device)")

    def copy_to_host(self, array: np.ndarray, pointer: int, stream: int) -> None:
        """Queue a copy of ``array.nbytes`` bytes from ``pointer`` into ``array`` (C-contiguous,
        writable); its values are there after ``synchronize(stream)``."""
        if not (array.flags.c_contiguous and array.flags.writeable):
            raise ValueError("copy_to_host needs a writable C-contiguous array")
        status = self._lib.cudaMemcpyAsync(array.ctypes.data, pointer, array.nbytes,
                                           DEVICE_TO_HOST, stream)  # fmt: skip
        self._check(status, "cudaMemcpyAsync (device to host)")


def cuda_problem() -> str | None:
    """Why no CUDA device is usable through the runtime library, or None (never raises)."""
    try:
        CudaRuntime().require_device()
    except CudaError as error:
        return str(error)
    return None


def cuda_device_usable() -> bool:
    """Whether a CUDA runtime library loads and sees a device (never raises)."""
    return cuda_problem() is None
