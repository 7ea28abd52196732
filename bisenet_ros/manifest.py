"""The manifest that travels with every model file.

Training writes it, export copies it (ONNX metadata and a sidecar YAML), the node reads it,
so training and runtime can never disagree on classes or normalisation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml

from . import atomic

ONNX_METADATA_KEY = "bisenet_ros.manifest"
MIN_INPUT_SIDE = 32  # the networks downsample 32x: a smaller input has no feature map left

# Public class tables: (name, RGB colour).
CITYSCAPES = [
    ("road", (128, 64, 128)), ("sidewalk", (244, 35, 232)), ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)), ("fence", (190, 153, 153)), ("pole", (153, 153, 153)),
    ("traffic light", (250, 170, 30)), ("traffic sign", (220, 220, 0)),
    ("vegetation", (107, 142, 35)), ("terrain", (152, 251, 152)), ("sky", (70, 130, 180)),
    ("person", (220, 20, 60)), ("rider", (255, 0, 0)), ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)), ("bus", (0, 60, 100)), ("train", (0, 80, 100)),
    ("motorcycle", (0, 0, 230)), ("bicycle", (119, 11, 32)),
]  # fmt: skip
CAMVID = [
    ("sky", (128, 128, 128)), ("building", (128, 0, 0)), ("pole", (192, 192, 128)),
    ("road", (128, 64, 128)), ("sidewalk", (60, 40, 222)), ("tree", (128, 128, 0)),
    ("sign/symbol", (192, 128, 128)), ("fence", (64, 64, 128)), ("car", (64, 0, 128)),
    ("pedestrian", (64, 64, 0)), ("bicyclist", (0, 128, 192)),
]  # fmt: skip

# Normalisation of the two public implementations (RGB, applied after x/255).
COINCHEUNG_MEAN, COINCHEUNG_STD = (0.3257, 0.3690, 0.3223), (0.2112, 0.2148, 0.2115)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ManifestError(ValueError):
    """A manifest is missing fields or contradicts itself."""


def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """Distinct colours for classes without a published palette (PASCAL VOC bit pattern)."""
    palette = []
    for cls in range(num_classes):
        r = g = b = 0
        c = cls + 1
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette.append((r, g, b))
    return palette


@dataclass
class Manifest:
    """What a runtime must know to use a model file correctly.

    ``mean``/``std`` are in the network's channel order and apply after scaling to [0, 1];
    ``input_size`` is the (height, width) the network runs at; ``channel_order`` is the
    order the network expects (``rgb`` or ``bgr``).
    """

    arch: str
    class_names: list[str]
    palette: list[tuple[int, int, int]]
    input_size: tuple[int, int] = (512, 1024)
    mean: tuple[float, float, float] = COINCHEUNG_MEAN
    std: tuple[float, float, float] = COINCHEUNG_STD
    channel_order: str = "rgb"
    drivable_ids: list[int] = field(default_factory=list)
    variant: str = "coincheung"
    description: str = ""

    def __post_init__(self) -> None:
        self.class_names = [str(n) for n in self.class_names]
        self.palette = [tuple(int(v) for v in c) for c in self.palette]
        self.input_size = tuple(int(v) for v in self.input_size)
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        self.drivable_ids = [int(i) for i in self.drivable_ids]
        self.validate()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def unknown_class_ids(self, ids: Iterable[int]) -> list[int]:
        """Those of ``ids`` that are not class ids of this model."""
        return [i for i in ids if not 0 <= i < self.num_classes]

    def validate(self) -> None:
        problems = []
        if not self.class_names:
            problems.append("class_names is empty")
        if len(self.palette) != len(self.class_names):
            problems.append(f"{len(self.palette)} palette colours for {self.num_classes} classes")
        if any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in self.palette):
            problems.append("palette entries must be three values in 0..255")
        if len(self.input_size) != 2 or min(self.input_size) < MIN_INPUT_SIDE:
            problems.append(
                f"input_size must be (height, width), each >= {MIN_INPUT_SIDE}: {self.input_size}"
            )
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            problems.append("mean and std need three values each, std > 0")
        if self.channel_order not in ("rgb", "bgr"):
            problems.append(f"channel_order must be 'rgb' or 'bgr', not {self.channel_order!r}")
        bad = self.unknown_class_ids(self.drivable_ids)
        if bad:
            problems.append(f"drivable_ids {bad} are not class ids 0..{self.num_classes - 1}")
        if problems:
            raise ManifestError("invalid manifest: " + "; ".join(problems))

    def with_classes(
        self,
        class_names: list[str],
        palette: list[tuple[int, int, int]] | None = None,
        drivable_ids: list[int] | None = None,
    ) -> Manifest:
        """A copy for a new class table (fine-tuning onto another dataset)."""
        return replace(
            self,
            class_names=list(class_names),
            palette=list(palette) if palette is not None else default_palette(len(class_names)),
            drivable_ids=list(drivable_ids or []),
        )

    # --- (de)serialisation --------------------------------------------------------------

    def to_dict(self) -> dict:
        d = asdict(self)
        d["palette"] = [list(c) for c in self.palette]
        for key in ("input_size", "mean", "std"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        known = set(cls.__dataclass_fields__)
        missing = {"arch", "class_names", "palette"} - set(data)
        if missing:
            raise ManifestError(f"manifest lacks required fields: {sorted(missing)}")
        unknown = set(data) - known
        if unknown:
            raise ManifestError(f"manifest has unknown fields: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        atomic.write_bytes(path, yaml.safe_dump(self.to_dict(), sort_keys=False).encode())
        return path

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"manifest not found: {path}")
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict):
            raise ManifestError(f"{path} does not hold a manifest mapping")
        return cls.from_dict(data)

    # --- defaults -----------------------------------------------------------------------

    @classmethod
    def default(cls, arch: str, num_classes: int, variant: str = "coincheung") -> Manifest:
        """A manifest for a checkpoint that came without one (public model zoos).

        19 classes are taken to be Cityscapes (what both public zoos train on);
        normalisation is each implementation's default.
        """
        if num_classes == len(CITYSCAPES):
            names, palette = [n for n, _ in CITYSCAPES], [c for _, c in CITYSCAPES]
            drivable = [0]
        else:
            names, palette = (
                [f"class_{i}" for i in range(num_classes)],
                default_palette(num_classes),
            )
            drivable = []
        mean, std = (
            (IMAGENET_MEAN, IMAGENET_STD)
            if variant == "mmseg"
            else (COINCHEUNG_MEAN, COINCHEUNG_STD)
        )
        return cls(
            arch=arch,
            class_names=names,
            palette=palette,
            mean=mean,
            std=std,
            drivable_ids=drivable,
            variant=variant,
        )


def sidecar_path(model_path: str | Path) -> Path:
    """The manifest beside an exported model: ``model.onnx`` -> ``model.manifest.yaml``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".manifest.yaml")
