"""Training configuration: YAML on top of defaults, with dotted command-line overrides.

Every key has a default here, so a config file lists only what differs, and a typo in a
key name is an error instead of a silently ignored setting.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path

import yaml

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
        "format": "camvid",  # camvid | cityscapes | custom
        "root": "../shared/datasets/camvid",
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
        "batch_size": 1,
    },
}


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
            out[key] = value
    return out


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


def validate(config: dict) -> None:
    """Catch values that would only fail deep inside a run."""
    train, augment = config["train"], config["augment"]
    problems = []
    if train["batch_size"] < 1 or train["max_iter"] < 1:
        problems.append("train.batch_size and train.max_iter must be positive")
    if train["warmup_iters"] > train["max_iter"]:
        problems.append("train.warmup_iters must not exceed train.max_iter")
    if len(augment["crop_size"]) != 2 or min(augment["crop_size"]) < MIN_INPUT_SIDE:
        problems.append(f"augment.crop_size must be (height, width), each >= {MIN_INPUT_SIDE}")
    low, high = augment["scale_range"]
    if not 0 < low <= high:
        problems.append("augment.scale_range must be (low, high) with 0 < low <= high")
    if config["data"]["format"] not in ("camvid", "cityscapes", "custom"):
        problems.append("data.format must be camvid, cityscapes or custom")
    if problems:
        raise ConfigError("invalid training config: " + "; ".join(problems))
