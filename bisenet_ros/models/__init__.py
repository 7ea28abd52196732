"""The networks and their checkpoints: ``build_model``, ``load_checkpoint``, ``save_checkpoint``."""

from .builder import ARCHITECTURES, VARIANTS, build_model
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = [
    "ARCHITECTURES",
    "VARIANTS",
    "CheckpointError",
    "build_model",
    "load_checkpoint",
    "save_checkpoint",
]
