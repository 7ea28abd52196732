"""BiSeNet (Yu et al., ECCV 2018): spatial path, ResNet-18 context path, ARM and FFM.

Parameter names follow CoinCheung/BiSeNet (``lib/models/bisenetv1.py``), and the ResNet-18
inside follows torchvision's names, so an ImageNet ``resnet18`` state dict initialises the
context path. ``variant="mmseg"`` adds the ReLU that mmsegmentation puts before the
sigmoid of the fusion module's attention.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ConvBNReLU, init_weights, resize_to


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs and a shortcut)."""

    def __init__(self, in_chan: int, out_chan: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chan, out_chan, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chan)
        self.conv2 = nn.Conv2d(out_chan, out_chan, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chan)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_chan != out_chan:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_chan, out_chan, 1, stride, bias=False), nn.BatchNorm2d(out_chan)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + shortcut)


class ResNet18(nn.Module):
    """ResNet-18 trunk returning the 1/8, 1/16 and 1/32 feature maps."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        feat8 = self.layer2(x)
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


class AttentionRefinement(nn.Module):
    """Re-weights channels with a global-pooled attention vector."""

    def __init__(self, in_chan: int, out_chan: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_chan, out_chan)
        self.conv_atten = nn.Conv2d(out_chan, out_chan, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_chan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        atten = self.bn_atten(self.conv_atten(feat.mean(dim=(2, 3), keepdim=True)))
        return feat * torch.sigmoid(atten)


class ContextPath(nn.Module):
    """ResNet-18 with attention refinement at 1/16 and 1/32 and a global context vector."""

    def __init__(self) -> None:
        super().__init__()
        self.resnet = ResNet18()
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, ks=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        context = self.conv_avg(feat32.mean(dim=(2, 3), keepdim=True))
        feat32_up = self.conv_head32(resize_to(self.arm32(feat32) + context, feat16, "nearest"))
        feat16_up = self.conv_head16(resize_to(self.arm16(feat16) + feat32_up, feat8, "nearest"))
        return feat16_up, feat32_up  # at 1/8 and 1/16


class SpatialPath(nn.Module):
    """Three stride-2 convs: a wide 1/8 map that keeps spatial detail."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(3, 64, ks=7, stride=2)
        self.conv2 = ConvBNReLU(64, 64, stride=2)
        self.conv3 = ConvBNReLU(64, 64, stride=2)
        self.conv_out = ConvBNReLU(64, 128, ks=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv3(self.conv2(self.conv1(x))))


class FeatureFusion(nn.Module):
    """Concatenates both paths and re-weights the result with channel attention."""

    def __init__(self, in_chan: int, out_chan: int, relu_before_sigmoid: bool = False) -> None:
        super().__init__()
        self.relu_before_sigmoid = relu_before_sigmoid
        self.convblk = ConvBNReLU(in_chan, out_chan, ks=1)
        self.conv = nn.Conv2d(out_chan, out_chan, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_chan)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        atten = self.bn(self.conv(feat.mean(dim=(2, 3), keepdim=True)))
        if self.relu_before_sigmoid:
            atten = torch.relu(atten)
        return feat + feat * torch.sigmoid(atten)


class OutputHead(nn.Module):
    """3x3 conv then a 1x1 classifier."""

    def __init__(self, in_chan: int, mid_chan: int, num_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_chan, mid_chan)
        self.conv_out = nn.Conv2d(mid_chan, num_classes, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNetV1(nn.Module):
    """BiSeNet; in training with ``aux_heads`` it also returns the two context-path outputs."""

    def __init__(self, num_classes: int, aux_heads: bool = False, variant: str = "coincheung"):
        super().__init__()
        if variant not in ("coincheung", "mmseg"):
            raise ValueError(f"unknown BiSeNetV1 variant {variant!r}: use 'coincheung' or 'mmseg'")
        self.cp = ContextPath()
        self.sp = SpatialPath()
        self.ffm = FeatureFusion(256, 256, relu_before_sigmoid=variant == "mmseg")
        self.conv_out = OutputHead(256, 256, num_classes)
        self.aux_names: list[str] = []
        if aux_heads:
            self.conv_out16 = OutputHead(128, 64, num_classes)
            self.conv_out32 = OutputHead(128, 64, num_classes)
            self.aux_names = ["conv_out16", "conv_out32"]
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        context8, context16 = self.cp(x)
        logits = resize_to(self.conv_out(self.ffm(self.sp(x), context8)), x, "bilinear")
        if not (self.training and self.aux_names):
            return logits
        aux = [
            resize_to(self.conv_out16(context8), x, "bilinear"),
            resize_to(self.conv_out32(context16), x, "bilinear"),
        ]
        return logits, aux
