"""Building blocks shared by BiSeNetV1 and BiSeNetV2."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Module):
    """Conv2d (no bias) -> BatchNorm -> ReLU; attribute names follow the public checkpoints."""

    def __init__(
        self,
        in_chan: int,
        out_chan: int,
        ks: int = 3,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
    ) -> None:
        super().__init__()
        if padding is None:
            padding = ks // 2
        self.conv = nn.Conv2d(in_chan, out_chan, ks, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_chan)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def resize_to(x: torch.Tensor, like: torch.Tensor | tuple[int, int], mode: str) -> torch.Tensor:
    """Resize ``x`` to the spatial size of ``like``.

    The references upsample by fixed factors, which only lines up for inputs that are
    multiples of 32; resizing to the target size gives the same result there and works
    for every other size too.
    """
    size = like.shape[-2:] if isinstance(like, torch.Tensor) else like
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal convolutions, unit BatchNorm; BNs marked ``last_bn`` start at zero."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.zeros_(m.weight) if getattr(m, "last_bn", False) else nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
