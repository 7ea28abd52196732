"""OHEM cross-entropy and the deep-supervision sum over the auxiliary heads.

The mean is taken over the kept pixels of the whole job, not of each process, so that
``torchrun`` with N processes computes the same gradient as one process with N times the
batch (DDP averages gradients, hence the factor ``world_size``).
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .datasets import IGNORE
from .distributed import all_reduce_sum


class OhemCrossEntropy(nn.Module):
    """Cross-entropy over the hard pixels only.

    A pixel is hard when the probability of its true class is below ``thresh``; at least
    ``min_kept_ratio`` of the valid pixels are kept (the hardest ones) so that the loss
    never runs out of pixels once the network is confident. ``thresh=None`` gives plain
    cross-entropy. ``class_weights`` weight each pixel by its true class.
    """

    def __init__(
        self,
        thresh: float | None = 0.7,
        min_kept_ratio: float = 1 / 16,
        class_weights: list[float] | None = None,
        ignore_index: int = IGNORE,
    ) -> None:
        super().__init__()
        self.loss_thresh = -math.log(thresh) if thresh is not None else None
        self.min_kept_ratio = min_kept_ratio
        self.ignore_index = ignore_index
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", weights)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if logits.dtype in (torch.float16, torch.bfloat16):  # AMP: the softmax in float32
            logits = logits.float()
        losses = F.cross_entropy(
            logits, labels, ignore_index=self.ignore_index, reduction="none"
        ).flatten()
        valid = (labels != self.ignore_index).flatten()
        keep = valid
        if self.loss_thresh is not None:
            keep = valid & (losses > self.loss_thresh)
            n_min = int(valid.sum().item() * self.min_kept_ratio)
            if int(keep.sum().item()) < n_min:
                hardest = losses.masked_fill(~valid, -1.0).topk(n_min).indices
                keep = torch.zeros_like(valid)
                keep[hardest] = True
        weight = keep.to(losses.dtype)
        if self.class_weights is not None:
            safe = labels.flatten().clamp_max(self.class_weights.numel() - 1)
            weight = weight * self.class_weights[safe]
        total = all_reduce_sum(weight.sum().detach())
        world = dist.get_world_size() if dist.is_initialized() else 1
        return (losses * weight).sum() * world / total.clamp_min(1e-6)


class BoosterLoss(nn.Module):
    """Main loss plus weighted losses of the auxiliary (booster) heads."""

    def __init__(self, criterion: nn.Module, aux_weights: list[float]) -> None:
        super().__init__()
        self.criterion = criterion
        self.aux_weights = list(aux_weights)

    def forward(self, output, labels: torch.Tensor) -> torch.Tensor:
        if isinstance(output, torch.Tensor):
            return self.criterion(output, labels)
        logits, aux = output
        if len(aux) > len(self.aux_weights):
            raise ValueError(
                f"the model has {len(aux)} auxiliary heads but loss.aux_weights lists "
                f"{len(self.aux_weights)} weights"
            )
        loss = self.criterion(logits, labels)
        for weight, aux_logits in zip(self.aux_weights, aux, strict=False):
            loss = loss + weight * self.criterion(aux_logits, labels)
        return loss
