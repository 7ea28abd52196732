"""SGD parameter groups and the warm-up + poly learning-rate schedule of the BiSeNet papers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

HEAD_PREFIXES = ("head.", "aux", "conv_out")


def is_head(name: str) -> bool:
    """Segmentation heads (main and auxiliary) train with a higher learning rate."""
    return name.startswith(HEAD_PREFIXES)


def param_groups(
    model: nn.Module, lr: float, weight_decay: float, head_lr_mult: float
) -> list[dict]:
    """Four groups: {backbone, head} x {conv weights with decay, everything else without}.

    Weight decay on BatchNorm scales and biases only shrinks them towards zero for no
    regularising benefit, so it applies to convolution weights (4-D tensors) only.
    """
    groups = {(h, d): [] for h in (False, True) for d in (False, True)}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups[(is_head(name), param.dim() == 4)].append(param)
    return [
        {
            "params": params,
            "lr": lr * (head_lr_mult if head else 1.0),
            "lr_mult": head_lr_mult if head else 1.0,
            "weight_decay": weight_decay if decay else 0.0,
        }
        for (head, decay), params in groups.items()
        if params
    ]


@dataclass
class WarmupPoly:
    """Factor on the base learning rate: linear warm-up, then ``(1 - t) ** power``.

    A callable object (not a lambda) so that ``LambdaLR.state_dict`` can save it.
    """

    max_iter: int
    warmup_iters: int
    warmup_ratio: float
    power: float

    def __call__(self, it: int) -> float:
        if it < self.warmup_iters:
            return self.warmup_ratio + (1 - self.warmup_ratio) * it / self.warmup_iters
        progress = (it - self.warmup_iters) / max(1, self.max_iter - self.warmup_iters)
        return max(0.0, 1 - progress) ** self.power


def build_optimizer(model: nn.Module, train_cfg: dict):
    """SGD with momentum and the warm-up + poly schedule (stepped once per iteration)."""
    groups = param_groups(
        model, train_cfg["lr"], train_cfg["weight_decay"], train_cfg["head_lr_mult"]
    )
    optimizer = torch.optim.SGD(groups, lr=train_cfg["lr"], momentum=train_cfg["momentum"])
    schedule = WarmupPoly(
        train_cfg["max_iter"],
        train_cfg["warmup_iters"],
        train_cfg["warmup_ratio"],
        train_cfg["poly_power"],
    )
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
