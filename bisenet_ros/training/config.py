"""Training configuration: YAML on top of defaults, with dotted command-line overrides.

Every key has a default here, so a config file lists only what differs, and a typo in a
key name is an error instead of a silently ignored setting.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path

import yaml

from ..choices import DATASET_FORMATS
from ..manifest import COINCHEUNG_MEAN, COINCHEUNG_STD, MIN_INPUT_SIDE

DEFAULTS: dict = {
    "model": {
        "arch": "bisenetv2",
        "variant": "coincheung",
        "aux_heads": True,
        "dropout": None,  # None keeps the architecture's own head dropout
        "sync_bn": False,
        "init": None,  # checkpoint to start from (fine-tuning); any load_checkpoint layout
        "reinit_head": False,  # re-initialise the classifiers even when class counts agree
        "freeze": [],  # module-name prefixes whose weights stay fixed, e.g. [detail]
    },
    "data": {
        "format": "camvid",  # one of choices.DATASET_FORMATS
        "root": "../shared/datasets/camvid",
        "classes": None,  # class config: the classes to learn and a remap (class_map)
        "train_split": "train",  # a split name or a list of them
        "val_split": "val",
        "input_size": [360, 480],  # (height, width) the model runs at for evaluation
        "mean": list(COINCHEUNG_MEAN),
        "std": list(COINCHEUNG_STD),
    },
    "augment": {
        "crop_size": [288, 384],
        "scale_range": [0.75, 1.75],
        "hflip": True,
        "brightness": 0.4,
        "contrast": 0.4,
        "saturation": 0.4,
    },
    "train": {
        "out_dir": "runs/train",
        "batch_size": 8,  # per process
        "max_iter": 1000,
        "lr": 0.05,
        "head_lr_mult": 10.0,
        "momentum": 0.9,
        "weight_decay": 5.0e-4,
        "warmup_iters": 100,
        "warmup_ratio": 0.1,
        "poly_power": 0.9,
        "grad_clip": None,
        "amp": True,  # only takes effect on CUDA
        "num_workers": 2,
        "seed": 0,
        "deterministic": False,
        "log_every": 10,
        "checkpoint_every": 100,
        "eval_every": 500,  # 0 disables periodic evaluation
        "progress": True,
        "channels_last": True,
        "threads": 0,  # torch CPU threads; 0 keeps torch's default
    },
    "loss": {
        "ohem_thresh": 0.7,  # keep pixels whose true-class probability is below this; null = CE
        "min_kept_ratio": 0.0625,  # ...but at least this share of the valid pixels
        "aux_weights": [1.0, 1.0, 1.0, 1.0],
        "class_weights": None,
    },
    "eval": {
        "scales": [1.0],
        "flip": False,
    },
}
# Settings that may be null, each with a value of the type it takes otherwise.
NULLABLE = {
    "model.dropout": 0.1, "model.init": "path", "train.grad_clip": 1.0,
    "loss.ohem_thresh": 0.7, "loss.class_weights": [1.0], "data.val_split": "val",
    "data.classes": "path",
}  # fmt: skip
SPLITS = {"data.train_split", "data.val_split"}  # a split name or a list of them
_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}

# Numeric settings whose range matters: (key, accepts the value, the requirement).
RANGES = [
    ("train.max_iter", lambda v: v >= 1, "at least 1"),
    ("train.lr", lambda v: v > 0, "positive"),
    ("train.head_lr_mult", lambda v: v > 0, "positive"),
    ("train.momentum", lambda v: 0 <= v < 1, "from 0 to below 1"),
    ("train.weight_decay", lambda v: v >= 0, "at least 0"),
    ("train.warmup_iters", lambda v: v >= 0, "at least 0"),
    ("train.warmup_ratio", lambda v: 0 < v <= 1, "above 0 and at most 1"),
    ("train.poly_power", lambda v: v > 0, "positive"),
    ("train.grad_clip", lambda v: v is None or v > 0, "positive, or null for no clipping"),
    ("train.num_workers", lambda v: v >= 0, "at least 0 (0: load in the training process)"),
    ("train.threads", lambda v: v >= 0, "at least 0 (0: torch's default)"),
    ("train.log_every", lambda v: v >= 1, "at least 1"),
    ("train.checkpoint_every", lambda v: v >= 1, "at least 1"),
    ("train.eval_every", lambda v: v >= 0, "at least 0 (0: no periodic evaluation)"),
    ("model.dropout", lambda v: v is None or 0 <= v < 1, "from 0 to below 1, or null"),
    ("loss.ohem_thresh", lambda v: v is None or 0 < v <= 1, "above 0 and at most 1, or null"),
    ("loss.min_kept_ratio", lambda v: 0 <= v <= 1, "from 0 to 1"),
    ("loss.aux_weights", lambda v: all(w >= 0 for w in v), "a list of weights >= 0"),
    ("loss.class_weights", lambda v: v is None or all(w >= 0 for w in v), "weights >= 0"),
    ("eval.scales", lambda v: v and all(0.25 <= s <= 4 for s in v), "factors from 0.25 to 4"),
]


class ConfigError(ValueError):
    """A training configuration names unknown keys or has unusable values."""


def _merge(base: dict, update: dict, where: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if key not in base:
            close = difflib.get_close_matches(str(key), list(base), n=1)
            hint = f"did you mean {where}{close[0]}?" if close else "known keys:"
            known = ", ".join(sorted(base))
            raise ConfigError(f"unknown config key {where}{key}; {hint} ({known})")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {where}{key!r} must be a mapping")
            out[key] = _merge(base[key], value, f"{where}{key}.")
        else:
            problem = _type_problem(f"{where}{key}", base[key], value)
            if problem:
                raise ConfigError(problem)
            out[key] = value
    return out


def _is_number(value: object, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, int) if kind is int else isinstance(value, (int, float))


def _type_problem(name: str, default: object, value: object) -> str | None:
    """Why ``value`` cannot stand where ``default`` does (a quoted number, a typo), or None."""
    if name in NULLABLE:
        if value is None:
            return None
        default = NULLABLE[name]
    if name in SPLITS and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return None
    if isinstance(default, list):
        kind = type(default[0]) if default else None
        if isinstance(value, list) and (kind is None or all(_is_number(v, kind) for v in value)):
            return None
        what = f"a list of {'integers' if kind is int else 'numbers'}" if kind else "a list"
    else:
        kind = type(default)
        if _is_number(value, kind) if kind in (bool, int, float) else isinstance(value, kind):
            return None
        what = _KIND_NAMES[kind]
    return f"{name} must be {what}, not {value!r}"


def parse_override(text: str) -> dict:
    """``train.max_iter=200`` -> ``{"train": {"max_iter": 200}}`` (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    dotted, raw = text.split("=", 1)
    value = yaml.safe_load(raw)
    for part in reversed(dotted.strip().split(".")):
        value = {part: value}
    return value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> dict:
    """Defaults, updated by the YAML file at ``path``, then by ``overrides``."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path} is not valid YAML: {error}".replace("\n", " ")) from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} does not hold a mapping")
        config = _merge(config, data, "")
    for text in overrides or []:
        config = _merge(config, parse_override(text), "")
    validate(config)
    return config


def _get(config: dict, dotted: str) -> object:
    section, key = dotted.split(".")
    return config[section][key]


def validate(config: dict) -> None:
    """Catch values that would only fail deep inside a run."""
    train, augment = config["train"], config["augment"]
    problems = [
        f"{key} must be {requirement}, not {_get(config, key)!r}"
        for key, accepts, requirement in RANGES
        if not accepts(_get(config, key))
    ]
    if train["batch_size"] < (1 if config["model"]["sync_bn"] else 2):
        problems.append(
            "train.batch_size must be at least 2 per process: the BatchNorm after the networks' "
            "global pooling needs two images (or set model.sync_bn with several processes)"
        )
    if train["warmup_iters"] > train["max_iter"]:
        problems.append("train.warmup_iters must not exceed train.max_iter")
    if len(augment["crop_size"]) != 2 or min(augment["crop_size"]) < MIN_INPUT_SIDE:
        problems.append(f"augment.crop_size must be (height, width), each >= {MIN_INPUT_SIDE}")
    scale_range = augment["scale_range"]
    if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
        problems.append("augment.scale_range must be (low, high) with 0 < low <= high")
    if config["data"]["format"] not in DATASET_FORMATS:
        problems.append(f"data.format must be one of {', '.join(DATASET_FORMATS)}")
    if problems:
        raise ConfigError("invalid training config: " + "; ".join(problems))
