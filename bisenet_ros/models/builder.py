"""A small registry that builds a network by name."""

from __future__ import annotations

from torch import nn

from .bisenetv1 import BiSeNetV1
from .bisenetv2 import BiSeNetV2

ARCHITECTURES: dict[str, type[nn.Module]] = {"bisenetv1": BiSeNetV1, "bisenetv2": BiSeNetV2}
VARIANTS = ("coincheung", "mmseg")


def build_model(
    arch: str, num_classes: int, aux_heads: bool = False, variant: str = "coincheung"
) -> nn.Module:
    """Build ``arch`` (``bisenetv1`` or ``bisenetv2``) with ``num_classes`` outputs.

    ``aux_heads`` adds the auxiliary (booster) heads used only in training; ``variant``
    picks whose public implementation the network matches weight for weight.
    In eval mode the model returns logits ``(N, C, H, W)`` at the input size.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {list(VARIANTS)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    return ARCHITECTURES[arch](num_classes, aux_heads=aux_heads, variant=variant)
