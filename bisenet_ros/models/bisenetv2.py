"""BiSeNetV2 (Yu et al., IJCV 2021): detail branch, semantic branch, guided aggregation.

Parameter names follow CoinCheung/BiSeNet (``lib/models/bisenetv2.py``), so its checkpoints
load without renaming. ``variant="mmseg"`` reproduces mmsegmentation's BiSeNetV2, which
differs in the aggregation layer (bilinear resizing, biased pointwise convolutions) and in
its booster heads (FCN heads); ``checkpoint.py`` maps its parameter names onto these.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ConvBNReLU, init_weights, resize_to


class DetailBranch(nn.Module):
    """Wide, shallow branch at 1/8 resolution that keeps spatial detail."""

    def __init__(self) -> None:
        super().__init__()
        self.S1 = nn.Sequential(ConvBNReLU(3, 64, stride=2), ConvBNReLU(64, 64))
        self.S2 = nn.Sequential(
            ConvBNReLU(64, 64, stride=2), ConvBNReLU(64, 64), ConvBNReLU(64, 64)
        )
        self.S3 = nn.Sequential(
            ConvBNReLU(64, 128, stride=2), ConvBNReLU(128, 128), ConvBNReLU(128, 128)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.S3(self.S2(self.S1(x)))


class StemBlock(nn.Module):
    """Downsamples by 4 through a conv path and a max-pool path, then fuses them."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = ConvBNReLU(3, 16, stride=2)
        self.left = nn.Sequential(ConvBNReLU(16, 8, ks=1), ConvBNReLU(8, 16, stride=2))
        self.right = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.fuse = ConvBNReLU(32, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.fuse(torch.cat([self.left(x), self.right(x)], dim=1))


class ContextEmbedding(nn.Module):
    """Global average pooling added back onto the features: image-level context."""

    def __init__(self, chan: int = 128) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(chan)
        self.conv_gap = ConvBNReLU(chan, chan, ks=1)
        self.conv_last = ConvBNReLU(chan, chan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = self.conv_gap(self.bn(x.mean(dim=(2, 3), keepdim=True)))
        return self.conv_last(x + context)


def _conv_bn(in_chan: int, out_chan: int, ks: int, stride: int = 1, groups: int = 1) -> list:
    bn = nn.BatchNorm2d(out_chan)
    return [nn.Conv2d(in_chan, out_chan, ks, stride, ks // 2, groups=groups, bias=False), bn]


class GatherExpansionS1(nn.Module):
    """Gather-and-expansion layer, stride 1: residual inverted bottleneck."""

    def __init__(self, in_chan: int, out_chan: int, expansion: int = 6) -> None:
        super().__init__()
        mid = in_chan * expansion
        self.conv1 = ConvBNReLU(in_chan, in_chan)
        self.dwconv = nn.Sequential(
            *_conv_bn(in_chan, mid, 3, groups=in_chan), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(*_conv_bn(mid, out_chan, 1))
        self.conv2[1].last_bn = True
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.dwconv(self.conv1(x))) + x)


class GatherExpansionS2(nn.Module):
    """Gather-and-expansion layer, stride 2, with a depthwise-separable shortcut."""

    def __init__(self, in_chan: int, out_chan: int, expansion: int = 6) -> None:
        super().__init__()
        mid = in_chan * expansion
        self.conv1 = ConvBNReLU(in_chan, in_chan)
        self.dwconv1 = nn.Sequential(*_conv_bn(in_chan, mid, 3, stride=2, groups=in_chan))
        self.dwconv2 = nn.Sequential(*_conv_bn(mid, mid, 3, groups=mid), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(*_conv_bn(mid, out_chan, 1))
        self.conv2[1].last_bn = True
        self.shortcut = nn.Sequential(
            *_conv_bn(in_chan, in_chan, 3, stride=2, groups=in_chan),
            *_conv_bn(in_chan, out_chan, 1),
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv2(self.dwconv2(self.dwconv1(self.conv1(x))))
        return self.relu(feat + self.shortcut(x))


class SemanticBranch(nn.Module):
    """Narrow, deep branch down to 1/32; returns every stage for the booster heads."""

    def __init__(self) -> None:
        super().__init__()
        self.S1S2 = StemBlock()
        self.S3 = nn.Sequential(GatherExpansionS2(16, 32), GatherExpansionS1(32, 32))
        self.S4 = nn.Sequential(GatherExpansionS2(32, 64), GatherExpansionS1(64, 64))
        self.S5_4 = nn.Sequential(
            GatherExpansionS2(64, 128),
            GatherExpansionS1(128, 128),
            GatherExpansionS1(128, 128),
            GatherExpansionS1(128, 128),
        )
        self.S5_5 = ContextEmbedding(128)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feat2 = self.S1S2(x)
        feat3 = self.S3(feat2)
        feat4 = self.S4(feat3)
        feat5_4 = self.S5_4(feat4)
        return [feat2, feat3, feat4, feat5_4, self.S5_5(feat5_4)]


class BilateralGuidedAggregation(nn.Module):
    """Each branch gates the other at its own resolution, then the two are summed."""

    def __init__(
        self, chan: int = 128, upsample_mode: str = "nearest", pointwise_bias: bool = False
    ):
        super().__init__()
        self.upsample_mode = upsample_mode
        self.left1 = nn.Sequential(
            *_conv_bn(chan, chan, 3, groups=chan), nn.Conv2d(chan, chan, 1, bias=pointwise_bias)
        )
        self.left2 = nn.Sequential(
            *_conv_bn(chan, chan, 3, stride=2), nn.AvgPool2d(kernel_size=3, stride=2, padding=1)
        )
        self.right1 = nn.Sequential(*_conv_bn(chan, chan, 3))
        self.right2 = nn.Sequential(
            *_conv_bn(chan, chan, 3, groups=chan), nn.Conv2d(chan, chan, 1, bias=pointwise_bias)
        )
        self.conv = nn.Sequential(*_conv_bn(chan, chan, 3), nn.ReLU(inplace=True))

    def forward(self, detail: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        semantic_up = resize_to(self.right1(semantic), detail, self.upsample_mode)
        detail_gated = self.left1(detail) * torch.sigmoid(semantic_up)
        semantic_gated = self.left2(detail) * torch.sigmoid(self.right2(semantic))
        return self.conv(detail_gated + resize_to(semantic_gated, detail, self.upsample_mode))


class SegmentHead(nn.Module):
    """3x3 conv, dropout, classifier.

    Booster heads (``booster_stride`` = the stride of their input) insert a x2 upsampling
    conv with ``stride**2`` channels before the classifier, as the reference does.
    """

    def __init__(self, in_chan: int, mid_chan: int, num_classes: int, booster_stride: int = 0):
        super().__init__()
        self.conv = ConvBNReLU(in_chan, mid_chan)
        self.drop = nn.Dropout(0.1)
        if booster_stride:
            cls_in = booster_stride * booster_stride
            refine = nn.Sequential(nn.Upsample(scale_factor=2), ConvBNReLU(mid_chan, cls_in))
        else:
            cls_in, refine = mid_chan, nn.Identity()
        self.conv_out = nn.Sequential(refine, nn.Conv2d(cls_in, num_classes, 1, bias=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.drop(self.conv(x)))


class FCNHead(nn.Module):
    """mmsegmentation's FCN head: ``num_convs`` 3x3 convs, dropout, classifier."""

    def __init__(self, in_chan: int, mid_chan: int, num_classes: int, num_convs: int = 2):
        super().__init__()
        chans = [in_chan] + [mid_chan] * num_convs
        pairs = zip(chans, chans[1:], strict=False)
        self.convs = nn.Sequential(*(ConvBNReLU(a, b) for a, b in pairs))
        self.drop = nn.Dropout(0.1)
        self.conv_seg = nn.Conv2d(mid_chan, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_seg(self.drop(self.convs(x)))


# (attribute, input channels, CoinCheung mid channels, CoinCheung stride, mmseg mid channels)
BOOSTER_HEADS = (
    ("aux2", 16, 128, 4, 16),
    ("aux3", 32, 128, 8, 64),
    ("aux4", 64, 128, 16, 256),
    ("aux5_4", 128, 128, 32, 1024),
)


class BiSeNetV2(nn.Module):
    """BiSeNetV2; in training with ``aux_heads`` it also returns the four booster outputs."""

    def __init__(self, num_classes: int, aux_heads: bool = False, variant: str = "coincheung"):
        super().__init__()
        if variant not in ("coincheung", "mmseg"):
            raise ValueError(f"unknown BiSeNetV2 variant {variant!r}: use 'coincheung' or 'mmseg'")
        mmseg = variant == "mmseg"
        self.detail = DetailBranch()
        self.segment = SemanticBranch()
        self.bga = BilateralGuidedAggregation(
            upsample_mode="bilinear" if mmseg else "nearest", pointwise_bias=mmseg
        )
        self.head = SegmentHead(128, 1024, num_classes)
        self.aux_names: list[str] = []
        if aux_heads:
            for name, in_chan, mid, stride, mmseg_mid in BOOSTER_HEADS:
                head = (
                    FCNHead(in_chan, mmseg_mid, num_classes)
                    if mmseg
                    else SegmentHead(in_chan, mid, num_classes, booster_stride=stride)
                )
                self.add_module(name, head)
                self.aux_names.append(name)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        detail = self.detail(x)
        stages = self.segment(x)
        logits = resize_to(self.head(self.bga(detail, stages[-1])), x, "bilinear")
        if not (self.training and self.aux_names):
            return logits
        aux = [
            resize_to(getattr(self, name)(feat), x, "bilinear")
            for name, feat in zip(self.aux_names, stages[:4], strict=True)
        ]
        return logits, aux
