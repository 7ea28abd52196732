"""A strict stand-in for one TensorRT release, made from that release's Python bindings
(``../shared/reference/tensorrt_api/api.json``: every class member and enum value of 8.6,
10.3, 10.16 and 11.1, from NVIDIA's binding sources).

Touching a member the release does not have raises AttributeError naming the release; the
calls this project makes also have their arguments checked (count and kind, from NVIDIA's
API reference), so an argument swapped or dropped fails too. It plays a small engine (one
float input, uint8 ``ids`` and ``confidence`` outputs) well enough for ``build_engine`` and
``TensorRTBackend`` to run through: it checks how the code calls TensorRT, not TensorRT.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np

API = Path(__file__).resolve().parents[2] / "shared" / "reference" / "tensorrt_api" / "api.json"
VERSIONS = {"release_8.6": "8.6.1", "release_10.3": "10.3.0", "release_10.16": "10.16.0",
            "release_11.1": "11.1.0"}  # fmt: skip


class EnumValue:
    def __init__(self, enum: str, name: str, value: int) -> None:
        self.enum, self.name, self.value = enum, name, value

    def __int__(self) -> int:
        return self.value

    def __index__(self) -> int:
        return self.value

    def __hash__(self) -> int:
        return hash((self.enum, self.name))

    def __eq__(self, other) -> bool:
        return isinstance(other, EnumValue) and (self.enum, self.name) == (other.enum, other.name)

    def __repr__(self) -> str:
        return f"{self.enum}.{self.name}"


class Enum:
    """An enum type: only the release's members exist."""

    def __init__(self, release: str, name: str, members: list[str]) -> None:
        self._release, self._name = release, name
        self._members = {m: EnumValue(name, m, i) for i, m in enumerate(members)}

    def __getattr__(self, member: str) -> EnumValue:
        if member.startswith("_"):
            raise AttributeError(member)
        if member not in self._members:
            raise AttributeError(f"TensorRT {self._release}: {self._name}.{member} does not exist")
        return self._members[member]


def _kind(value, kind) -> bool:
    if kind == "shape":
        return isinstance(value, tuple | list) and all(
            isinstance(v, int | np.integer) for v in value
        )
    if isinstance(kind, str):  # an enum's name
        return isinstance(value, EnumValue) and value.enum == kind
    return isinstance(value, kind)


# (class, member) -> the kinds of its positional arguments, for the calls this project makes
SIGNATURES = {
    ("Logger", "__init__"): ("Severity",),
    ("Builder", "__init__"): ("Logger",),
    ("Builder", "create_network"): (int,),
    ("Builder", "create_builder_config"): (),
    ("Builder", "create_optimization_profile"): (),
    ("Builder", "build_serialized_network"): ("INetworkDefinition", "IBuilderConfig"),
    ("OnnxParser", "__init__"): ("INetworkDefinition", "Logger"),
    ("OnnxParser", "parse"): (bytes,),
    ("OnnxParser", "get_error"): (int,),
    ("IBuilderConfig", "set_memory_pool_limit"): ("MemoryPoolType", int),
    ("IBuilderConfig", "set_flag"): ("BuilderFlag",),
    ("IBuilderConfig", "clear_flag"): ("BuilderFlag",),
    ("IBuilderConfig", "add_optimization_profile"): ("IOptimizationProfile",),
    ("IOptimizationProfile", "set_shape"): (str, "shape", "shape", "shape"),
    ("INetworkDefinition", "get_input"): (int,),
    ("Runtime", "__init__"): ("Logger",),
    ("Runtime", "deserialize_cuda_engine"): (bytes,),
    ("ICudaEngine", "create_execution_context"): (),
    ("ICudaEngine", "get_tensor_name"): (int,),
    ("ICudaEngine", "get_tensor_mode"): (str,),
    ("ICudaEngine", "get_tensor_dtype"): (str,),
    ("ICudaEngine", "get_tensor_profile_shape"): (str, int),
    ("IExecutionContext", "set_input_shape"): (str, "shape"),
    ("IExecutionContext", "get_tensor_shape"): (str,),
    ("IExecutionContext", "set_tensor_address"): (str, int),
    ("IExecutionContext", "execute_async_v3"): (int,),
}


class Strict:
    """An object of TensorRT class ``cls``: members outside the release raise."""

    def __init__(self, module: StandIn, cls: str, **state) -> None:
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_cls", cls)
        object.__setattr__(self, "_state", state)

    def __getattr__(self, member: str):
        module, cls = self._module, self._cls
        if member.startswith("_"):
            raise AttributeError(member)
        if member not in module.api["classes"][cls]:
            raise AttributeError(f"TensorRT {module.release}: {cls}.{member} does not exist")
        behaviour = getattr(module.engine, f"{cls}_{member}", None)
        if behaviour is None:
            raise AttributeError(f"the stand-in does not play {cls}.{member}")
        if not callable(behaviour):
            return behaviour

        def call(*args):
            module.check(cls, member, args)
            module.calls.append(f"{cls}.{member}")
            return behaviour(self, *args)

        return call

    def __setattr__(self, member: str, value) -> None:
        if member not in self._module.api["classes"][self._cls]:
            raise AttributeError(
                f"TensorRT {self._module.release}: {self._cls}.{member} does not exist"
            )
        self._state[member] = value


class StandIn(ModuleType):
    """The ``tensorrt`` module of one release."""

    def __init__(self, release: str, input_shape: tuple[int, int, int], max_batch: int = 2) -> None:
        super().__init__("tensorrt")
        self.release = release
        self.api = json.loads(API.read_text())[release]
        self.__version__ = VERSIONS[release]
        self.calls: list[str] = []
        self.engine = Engine(self, input_shape, max_batch)
        for enum, members in self.api["enums"].items():
            setattr(self, enum, Enum(release, enum, members))
        severity = self.api["enums"]["Severity"]
        for name in ("Logger", "Builder", "OnnxParser", "Runtime"):
            setattr(self, name, self._constructor(name))
        # pybind exports Severity's values into Logger's scope: trt.Logger.WARNING
        for member in severity:
            setattr(self.Logger, member, getattr(self.Severity, member))

    def _constructor(self, cls: str):
        module = self

        class Constructor:
            def __new__(cls_, *args):
                module.check(cls, "__init__", args)
                return Strict(module, cls, args=args)

        Constructor.__name__ = cls
        return Constructor

    def check(self, cls: str, member: str, args: tuple) -> None:
        kinds = SIGNATURES.get((cls, member))
        if kinds is None:
            raise AssertionError(f"{cls}.{member} has no known signature in the stand-in")
        if len(args) != len(kinds):
            raise TypeError(f"{cls}.{member} takes {len(kinds)} arguments, got {len(args)}")
        for position, (value, kind) in enumerate(zip(args, kinds, strict=True)):
            ok = (isinstance(value, Strict) and value._cls == kind) if kind in SIGNATURES_CLASSES \
                else _kind(value, kind)  # fmt: skip
            if not ok:
                raise TypeError(f"{cls}.{member}: argument {position + 1} is {value!r}, not {kind}")


SIGNATURES_CLASSES = {"Logger", "INetworkDefinition", "IBuilderConfig", "IOptimizationProfile"}


class Engine:
    """What the stand-in's objects do: one float input, ids and confidence out."""

    def __init__(self, module: StandIn, input_shape: tuple[int, int, int], max_batch: int) -> None:
        self.module = module
        self.input_shape = tuple(input_shape)
        self.max_batch = max_batch
        self.batch = max_batch
        self.names = ["input", "ids", "confidence"]
        self.parses = True  # False: the parser refuses the graph with one error

    # builder side
    def Builder_create_network(self, builder, flags):
        return Strict(self.module, "INetworkDefinition")

    def Builder_create_builder_config(self, builder):
        return Strict(self.module, "IBuilderConfig")

    def Builder_create_optimization_profile(self, builder):
        return Strict(self.module, "IOptimizationProfile")

    def Builder_build_serialized_network(self, builder, network, config):
        return b"stand-in engine"

    def OnnxParser_parse(self, parser, data):
        return self.parses

    @property
    def OnnxParser_num_errors(self):
        return 0 if self.parses else 1

    def OnnxParser_get_error(self, parser, index):
        return "stand-in: unsupported operator"

    def IBuilderConfig_set_memory_pool_limit(self, config, pool, size):
        pass

    def IBuilderConfig_set_flag(self, config, flag):
        pass

    def IBuilderConfig_clear_flag(self, config, flag):
        pass

    def IBuilderConfig_add_optimization_profile(self, config, profile):
        return 0

    def IOptimizationProfile_set_shape(self, profile, name, smallest, usual, largest):
        pass

    def INetworkDefinition_get_input(self, network, index):
        return Strict(self.module, "ITensor")

    @property
    def ITensor_name(self):
        return "input"

    # runtime side
    def Runtime_deserialize_cuda_engine(self, runtime, data):
        return Strict(self.module, "ICudaEngine")

    def ICudaEngine_create_execution_context(self, engine):
        return Strict(self.module, "IExecutionContext")

    @property
    def ICudaEngine_num_io_tensors(self):
        return len(self.names)

    def ICudaEngine_get_tensor_name(self, engine, index):
        return self.names[index]

    def ICudaEngine_get_tensor_mode(self, engine, name):
        mode = "INPUT" if name == "input" else "OUTPUT"
        return getattr(self.module.TensorIOMode, mode)

    def ICudaEngine_get_tensor_dtype(self, engine, name):
        return getattr(self.module.DataType, "FLOAT" if name == "input" else "UINT8")

    def ICudaEngine_get_tensor_profile_shape(self, engine, name, profile):
        return [(1, *self.input_shape), (1, *self.input_shape),
                (self.max_batch, *self.input_shape)]  # fmt: skip

    def IExecutionContext_set_input_shape(self, context, name, shape):
        if tuple(shape[1:]) != self.input_shape or not 1 <= shape[0] <= self.max_batch:
            return False
        self.batch = shape[0]
        return True

    def IExecutionContext_get_tensor_shape(self, context, name):
        if name == "input":
            return (self.batch, *self.input_shape)
        return (self.batch, *self.input_shape[1:])

    def IExecutionContext_set_tensor_address(self, context, name, pointer):
        pass

    def IExecutionContext_execute_async_v3(self, context, stream):
        return True


class FakeCuda:
    """The CUDA runtime calls the backend makes, on host memory, counting what is live."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.device: dict[int, int] = {}
        self.host: dict[int, np.ndarray] = {}
        self.streams: set[int] = set()
        self._next = 1
        self._fail_after = fail_after

    def _pointer(self) -> int:
        self._next += 1
        return self._next

    def require_device(self) -> None:
        pass

    def device_identity(self) -> str:
        return "Stand-in GPU, sm 8.7, 16 SMs, 15656 MiB"

    def malloc(self, nbytes: int) -> int:
        if self._fail_after is not None and len(self.device) >= self._fail_after:
            from bisenet_ros.cuda_runtime import CudaError

            raise CudaError(f"cudaMalloc({nbytes} bytes) failed: out of memory (CUDA error 2)")
        pointer = self._pointer()
        self.device[pointer] = nbytes
        return pointer

    def free(self, pointer: int) -> None:
        del self.device[pointer]

    def host_alloc(self, nbytes: int) -> tuple[int, np.ndarray]:
        pointer = self._pointer()
        self.host[pointer] = np.zeros(nbytes, np.uint8)
        return pointer, self.host[pointer]

    def free_host(self, pointer: int) -> None:
        del self.host[pointer]

    def create_stream(self) -> int:
        stream = self._pointer()
        self.streams.add(stream)
        return stream

    def destroy_stream(self, stream: int) -> None:
        self.streams.remove(stream)

    def copy_to_device(self, pointer: int, array: np.ndarray, stream: int) -> None:
        assert pointer in self.device and array.nbytes <= self.device[pointer]
        assert any(np.shares_memory(array, h) for h in self.host.values()), "not pinned"

    def copy_to_host(self, array: np.ndarray, pointer: int, stream: int) -> None:
        assert pointer in self.device and array.nbytes <= self.device[pointer]
        assert any(np.shares_memory(array, h) for h in self.host.values()), "not pinned"
        array[...] = 1

    def synchronize(self, stream: int) -> None:
        assert stream in self.streams
