"""The bundled CamVid model and how a ``model_path`` setting names a model file.

Every entry point (node, demo, benchmarks) resolves its model setting here, so an empty
setting means the same file everywhere: the checkpoint where PyTorch is installed, else the
same weights exported to ONNX.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

BUNDLED_MODEL = Path(__file__).resolve().parent / "weights" / "bisenetv2_camvid.pt"
BUNDLED_ONNX = BUNDLED_MODEL.with_suffix(".onnx")  # the same weights, for installs without torch


def model_file(value: str) -> tuple[Path, str]:
    """The model file a ``model_path`` setting means, and how to name it in messages.

    Empty: the bundled CamVid model. FileNotFoundError if it does not exist,
    IsADirectoryError if it is a folder.
    """
    if value:
        path, which = Path(value).expanduser(), "model_path"
    else:
        bundled = BUNDLED_MODEL if importlib.util.find_spec("torch") else BUNDLED_ONNX
        path, which = bundled, "the bundled default model"
    if path.is_dir():
        raise IsADirectoryError(f"{which} {path} is a folder; set model_path to the model file")
    if not path.is_file():
        raise FileNotFoundError(f"{which} {path} does not exist; set model_path")
    return path, which
