"""Read and write checkpoints: CoinCheung/BiSeNet, mmsegmentation, and the project's own format.

Loading is strict: every tensor of the network must come from the file with the right
shape, and every tensor of the file must land somewhere, or a ``CheckpointError`` names
the offenders. (The public implementations load with ``strict=False``, which silently
leaves half a network random when names drift.) The only tolerated gaps are explicit:
auxiliary heads the caller did not ask for are dropped, auxiliary heads the file lacks
start fresh, and a different ``num_classes`` re-initialises the classifiers; each is logged.
"""

from __future__ import annotations

import logging
import pickle
import re
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_path
from ..manifest import Manifest
from .builder import build_model

log = logging.getLogger(__name__)

FORMAT = "bisenet_ros"
STATE_FORMAT = "bisenet_ros.train_state"  # bisenet train's last.pt: weights, manifest, optimizer...
FORMAT_VERSION = 1

# Final 1x1 classifier convolutions, in our (CoinCheung) names.
CLASSIFIER = re.compile(
    r"^(head\.conv_out\.1|aux\w+\.conv_out\.1|aux\w+\.conv_seg|conv_out\w*\.conv_out)\.(weight|bias)$"
)
AUX_HEAD = re.compile(r"^(aux\w+|conv_out16|conv_out32)\.")
MAIN_CLASSIFIER = {"bisenetv1": "conv_out.conv_out.weight", "bisenetv2": "head.conv_out.1.weight"}


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the network."""


# --- mmsegmentation names -> ours --------------------------------------------------------

_MMSEG_V2_PREFIXES = [
    ("backbone.semantic.stage1.conv_first.", "segment.S1S2.conv."),
    ("backbone.semantic.stage1.convs.", "segment.S1S2.left."),
    ("backbone.semantic.stage1.fuse_last.", "segment.S1S2.fuse."),
    ("backbone.semantic.stage4_CEBlock.gap.1.", "segment.S5_5.bn."),
    ("backbone.semantic.stage4_CEBlock.", "segment.S5_5."),
    ("backbone.bga.detail_dwconv.0.depthwise_conv.conv.", "bga.left1.0."),
    ("backbone.bga.detail_dwconv.0.depthwise_conv.bn.", "bga.left1.1."),
    ("backbone.bga.detail_dwconv.0.pointwise_conv.conv.", "bga.left1.2."),
    ("backbone.bga.detail_down.0.conv.", "bga.left2.0."),
    ("backbone.bga.detail_down.0.bn.", "bga.left2.1."),
    ("backbone.bga.semantic_conv.0.conv.", "bga.right1.0."),
    ("backbone.bga.semantic_conv.0.bn.", "bga.right1.1."),
    ("backbone.bga.semantic_dwconv.0.depthwise_conv.conv.", "bga.right2.0."),
    ("backbone.bga.semantic_dwconv.0.depthwise_conv.bn.", "bga.right2.1."),
    ("backbone.bga.semantic_dwconv.0.pointwise_conv.conv.", "bga.right2.2."),
    ("backbone.bga.conv.conv.", "bga.conv.0."),
    ("backbone.bga.conv.bn.", "bga.conv.1."),
    ("decode_head.convs.0.", "head.conv."),
    ("decode_head.conv_seg.", "head.conv_out.1."),
    ("auxiliary_head.0.", "aux2."),
    ("auxiliary_head.1.", "aux3."),
    ("auxiliary_head.2.", "aux4."),
    ("auxiliary_head.3.", "aux5_4."),
]
# Inside a gather-and-expansion layer: (stride-2 layer?, mmseg suffix, our suffix).
_MMSEG_GE_PARTS = [
    (True, "dwconv.0.conv.", "dwconv1.0."),
    (True, "dwconv.0.bn.", "dwconv1.1."),
    (True, "dwconv.1.conv.", "dwconv2.0."),
    (True, "dwconv.1.bn.", "dwconv2.1."),
    (True, "shortcut.0.depthwise_conv.conv.", "shortcut.0."),
    (True, "shortcut.0.depthwise_conv.bn.", "shortcut.1."),
    (True, "shortcut.0.pointwise_conv.conv.", "shortcut.2."),
    (True, "shortcut.0.pointwise_conv.bn.", "shortcut.3."),
    (False, "dwconv.0.conv.", "dwconv.0."),
    (False, "dwconv.0.bn.", "dwconv.1."),
]
_MMSEG_STAGES = {"2": "S3", "3": "S4", "4": "S5_4"}

_MMSEG_V1_PREFIXES = [
    ("backbone.context_path.backbone.", "cp.resnet."),
    ("backbone.context_path.gap_conv.1.", "cp.conv_avg."),
    ("backbone.context_path.conv_head32.", "cp.conv_head32."),
    ("backbone.context_path.conv_head16.", "cp.conv_head16."),
    ("backbone.spatial_path.layer1.", "sp.conv1."),
    ("backbone.spatial_path.layer2.", "sp.conv2."),
    ("backbone.spatial_path.layer3.", "sp.conv3."),
    ("backbone.spatial_path.layer4.", "sp.conv_out."),
    ("backbone.ffm.conv1.", "ffm.convblk."),
    ("backbone.ffm.conv_atten.0.conv.", "ffm.conv."),
    ("backbone.ffm.conv_atten.0.bn.", "ffm.bn."),
    ("decode_head.convs.0.", "conv_out.conv."),
    ("decode_head.conv_seg.", "conv_out.conv_out."),
    ("auxiliary_head.0.convs.0.", "conv_out16.conv."),
    ("auxiliary_head.0.conv_seg.", "conv_out16.conv_out."),
    ("auxiliary_head.1.convs.0.", "conv_out32.conv."),
    ("auxiliary_head.1.conv_seg.", "conv_out32.conv_out."),
] + [
    (f"backbone.context_path.arm{n}.{theirs}", f"cp.arm{n}.{ours}")
    for n in (16, 32)
    for theirs, ours in [
        ("conv_layer.", "conv."),
        ("atten_conv_layer.1.conv.", "conv_atten."),
        ("atten_conv_layer.1.bn.", "bn_atten."),
    ]
]


def _rename_prefix(key: str, table: list[tuple[str, str]]) -> str | None:
    for theirs, ours in table:
        if key.startswith(theirs):
            return ours + key[len(theirs) :]
    return None


def mmseg_v2_name(key: str) -> str:
    """Our name for an mmsegmentation BiSeNetV2 parameter (unchanged if no rule applies)."""
    m = re.match(r"^backbone\.detail\.detail_branch\.(\d)\.(\d+)\.(.*)$", key)
    if m:
        return f"detail.S{int(m[1]) + 1}.{m[2]}.{m[3]}"
    m = re.match(r"^backbone\.semantic\.stage([234])\.(\d+)\.(.*)$", key)
    if m:
        stage, index, rest = _MMSEG_STAGES[m[1]], m[2], m[3]
        for stride2, theirs, ours in _MMSEG_GE_PARTS:
            if stride2 == (index == "0") and rest.startswith(theirs):
                rest = ours + rest[len(theirs) :]
                break
        else:
            rest = re.sub(r"^conv2\.0\.conv\.", "conv2.0.", rest)
            rest = re.sub(r"^conv2\.0\.bn\.", "conv2.1.", rest)
        return f"segment.{stage}.{index}.{rest}"
    return _rename_prefix(key, _MMSEG_V2_PREFIXES) or key


def mmseg_v1_name(key: str) -> str:
    """Our name for an mmsegmentation BiSeNetV1 parameter (unchanged if no rule applies)."""
    return _rename_prefix(key, _MMSEG_V1_PREFIXES) or key


# --- reading ----------------------------------------------------------------------------


# Globals a training state (``last.pt``) holds besides tensors: numpy's RNG state arrays.
NUMPY_ARRAY_GLOBALS = ("numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct",
                       "numpy.ndarray", "numpy.dtype", "numpy.dtypes.UInt32DType")  # fmt: skip


def _inert(name: str) -> type:
    """A stand-in for the pickled class or function ``name``: building it runs nothing."""

    class Inert:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def __setstate__(self, state) -> None:
            pass

        def __repr__(self) -> str:
            return f"<not loaded: {name}>"

    Inert.__name__ = Inert.__qualname__ = name.rsplit(".", 1)[-1]
    return Inert


def _real(name: str) -> object | None:
    module, _, attribute = name.rpartition(".")
    try:
        return getattr(__import__(module, fromlist=[attribute]), attribute)
    except (ImportError, AttributeError):
        return None


def safe_torch_load(path: str | Path, allow: tuple[str, ...] = ()) -> object:
    """``torch.load`` that never runs code from the file.

    PyTorch's weights-only unpickler reads tensors and plain containers. Anything else in
    the pickle (mmsegmentation's training ``meta``, or a planted ``os.system``) is named by
    ``get_unsafe_globals_in_checkpoint`` without being loaded and is replaced by an inert
    stand-in, so its tensors still load and nothing it names is imported or called; the
    globals in ``allow`` load as themselves (numpy arrays in our own training states).
    """
    path = Path(path)
    unknown: list[str] = []
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            unknown = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        stand_ins = [(_inert(name), name) for name in unknown if name not in allow]
        stand_ins += [obj for obj in map(_real, allow) if obj is not None]
        with torch.serialization.safe_globals(stand_ins):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        if any(name not in allow for name in unknown):
            log.info("%s: not loaded (not tensors): %s", path, ", ".join(unknown))
        return loaded
    except pickle.UnpicklingError as error:  # PyTorch blocks e.g. os, subprocess outright
        raise CheckpointError(
            f"refused to load {path}: it calls {', '.join(unknown)} when unpickled, which "
            "could run code; a checkpoint holds tensors (save model.state_dict())"
        ) from error
    except Exception as error:  # noqa: BLE001 - any failure of a damaged file, said plainly
        size = path.stat().st_size if path.is_file() else 0
        what = "it is empty" if size == 0 else f"{type(error).__name__}: {error}".splitlines()[0]
        raise CheckpointError(
            f"cannot read {path} as a PyTorch checkpoint ({what}); is it damaged or "
            "truncated? Use the file torch.save / bisenet train wrote"
        ) from error


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], str, str, Manifest | None]:
    """Read a checkpoint into (state dict in our names, arch, layout, manifest or None)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    obj = safe_torch_load(path)
    if isinstance(obj, dict) and obj.get("format") in (FORMAT, STATE_FORMAT):
        # a training state holds the trained class table too: never fall back to defaults
        weights = obj["state_dict" if obj["format"] == FORMAT else "model"]
        manifest = Manifest.from_dict(obj["manifest"])
        return _float32(weights), manifest.arch, FORMAT, manifest
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict")
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors or not state:
        raise CheckpointError(f"{path} is not a state dict (non-tensor entries: {not_tensors[:5]})")
    arch, layout = detect_layout(state)
    if layout == "mmseg":
        rename = mmseg_v2_name if arch == "bisenetv2" else mmseg_v1_name
        state = {rename(k): v for k, v in state.items()}
    return _float32(state), arch, layout, None


def detect_layout(state: dict[str, torch.Tensor]) -> tuple[str, str]:
    """(architecture, layout) from parameter names."""
    keys = list(state)
    for prefix, arch, layout in [
        ("backbone.detail.", "bisenetv2", "mmseg"),
        ("backbone.context_path.", "bisenetv1", "mmseg"),
        ("detail.", "bisenetv2", "coincheung"),
        ("cp.", "bisenetv1", "coincheung"),
    ]:
        if any(k.startswith(prefix) for k in keys):
            return arch, layout
    raise CheckpointError(
        "unrecognised checkpoint layout: expected CoinCheung/BiSeNet names (detail., segment., "
        "bga., head. or cp., sp., ffm.) or mmsegmentation names (backbone.); "
        f"first keys: {keys[:5]}"
    )


def _float32(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


# --- loading into a network -------------------------------------------------------------


def load_checkpoint(
    path: str | Path,
    num_classes: int | None = None,
    aux_heads: bool = False,
    manifest: Manifest | None = None,
) -> tuple[nn.Module, Manifest]:
    """Build the network a checkpoint describes and load it strictly.

    Returns ``(model, manifest)`` with the model in eval mode on the CPU. The manifest is
    the file's own (project format), the one given, or a default for the public layout.
    ``num_classes`` different from the file's re-initialises only the classifier layers;
    pass the new class table as ``manifest`` in that case.
    """
    state, arch, layout, stored = read_checkpoint(path)
    variant = stored.variant if stored else layout
    file_classes = state[MAIN_CLASSIFIER[arch]].shape[0] if MAIN_CLASSIFIER[arch] in state else None
    if file_classes is None:
        raise CheckpointError(f"{path}: no classifier weights ({MAIN_CLASSIFIER[arch]})")
    num_classes = num_classes or (manifest.num_classes if manifest else file_classes)
    if manifest is None:
        manifest = stored or Manifest.default(arch, file_classes, variant)
        if num_classes != file_classes:  # explicit new class count, no class table given
            manifest = manifest.with_classes([f"class_{i}" for i in range(num_classes)])
    if manifest.num_classes != num_classes:
        raise CheckpointError(
            f"the manifest lists {manifest.num_classes} classes but the network is built with "
            f"{num_classes}; pass a manifest with the new class table"
        )
    if manifest.arch != arch:
        raise CheckpointError(f"{path} holds a {arch} but the manifest says {manifest.arch}")
    model = build_model(arch, num_classes, aux_heads=aux_heads, variant=variant)
    load_state_strict(model, state, source=str(path))
    model.eval()
    return model, manifest


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``model``; raise ``CheckpointError`` naming every misfit."""
    own = model.state_dict()
    wants_aux = any(AUX_HEAD.match(k) for k in own)
    dropped = sorted(k for k in state if k not in own and AUX_HEAD.match(k) and not wants_aux)
    state = {k: v for k, v in state.items() if k not in dropped}
    if dropped:
        log.info(
            "%s: ignoring %d auxiliary-head tensors (not used for inference)", source, len(dropped)
        )

    reinit = sorted(
        k
        for k in own
        if CLASSIFIER.match(k)
        and k in state
        and state[k].shape != own[k].shape
        and state[k].shape[1:] == own[k].shape[1:]
    )
    fresh_aux = sorted(k for k in own if AUX_HEAD.match(k) and k not in state)
    optional = set(reinit) | set(fresh_aux)
    missing = sorted(
        k
        for k in own
        if k not in state and k not in optional and not k.endswith("num_batches_tracked")
    )
    unexpected = sorted(k for k in state if k not in own)
    mismatched = sorted(
        f"{k}: file {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
        for k in own
        if k in state and k not in optional and state[k].shape != own[k].shape
    )
    if missing or unexpected or mismatched:
        parts = []
        for title, names in [
            ("missing", missing),
            ("unexpected", unexpected),
            ("mis-shaped", mismatched),
        ]:
            if names:
                shown = ", ".join(names[:12]) + (
                    f", ... ({len(names)} in all)" if len(names) > 12 else ""
                )
                parts.append(f"{len(names)} {title}: {shown}")
        raise CheckpointError(f"{source} does not fit the network: " + "; ".join(parts))

    if reinit:
        log.warning("%s: class count differs; re-initialised classifier layers %s", source, reinit)
    if fresh_aux:
        log.warning(
            "%s: has no auxiliary heads; %d auxiliary-head tensors start fresh",
            source,
            len(fresh_aux),
        )
    merged = {k: (own[k] if k in optional or k not in state else state[k]) for k in own}
    model.load_state_dict(merged, strict=True)
    small_classifiers(model, optional)


def small_classifiers(model: nn.Module, names: set[str] | None = None) -> list[str]:
    """Classifier layers drawn anew, small (std 0.01, zero bias); all of them, or those whose
    weight is in ``names``. Returns the layers' names.

    Small classifiers start the classes at near-uniform probabilities, so the first gradients
    do not wreck pretrained features; a network's own (Kaiming) classifiers start with losses
    of 30 and more. docs/training.md measures the difference.
    """
    drawn = []
    for name, module in model.named_modules():
        weight = f"{name}.weight"
        if isinstance(module, nn.Conv2d) and CLASSIFIER.match(weight):
            if names is None or weight in names:
                nn.init.normal_(module.weight, std=0.01)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
                drawn.append(name)
    return drawn


# --- writing ----------------------------------------------------------------------------


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    manifest: Manifest,
    half: bool = True,
    extra: dict | None = None,
) -> Path:
    """Write the project format atomically (temp file + rename): weights, manifest, ``extra``.

    ``half`` stores floating-point tensors as float16 (loading casts back to float32).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu()
        for k, v in model.state_dict().items()
    }
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "manifest": manifest.to_dict(),
        "state_dict": state,
        **(extra or {}),
    }
    atomic_torch_save(payload, path)
    return path


def atomic_torch_save(obj: object, path: Path) -> None:
    """``torch.save`` that never leaves a half-written file behind."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
