"""One process or many: torchrun's environment, process groups, and SyncBatchNorm on CPU.

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) everything here degrades to a
single process, so the trainer has one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import nn


@dataclass
class Context:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(prefer_cuda: bool = True) -> Context:
    """Join the torchrun job if there is one (NCCL on GPUs, gloo on CPUs)."""
    cuda = prefer_cuda and torch.cuda.is_available()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Context(rank, world_size, local_rank, device)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over processes, differentiable (identity on one process)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        return dist_fn.all_reduce(tensor)
    return tensor


def any_process(flag: bool) -> bool:
    """True on every process if ``flag`` is true on any (a stop all must agree on)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return flag
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"  # NCCL reduces CUDA tensors only
    votes = torch.tensor([int(flag)], device=device)
    dist.all_reduce(votes, op=dist.ReduceOp.MAX)
    return bool(votes.item())


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


class CPUSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm whose batch statistics span all processes, for gloo on CPU.

    ``torch.nn.SyncBatchNorm`` only runs on GPUs; this computes the same statistics with a
    differentiable all-reduce of per-channel sums, so the gradient is that of one big batch.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        channels = x.shape[1]
        count = torch.tensor([x.numel() / channels], dtype=x.dtype, device=x.device)
        sums = all_reduce_sum(torch.cat([x.sum((0, 2, 3)), count]))
        total = sums[-1]
        mean = sums[:channels] / total
        # Two passes, not E[x^2] - E[x]^2: that cancels catastrophically when the variance
        # is small next to the mean (e.g. the BatchNorm over globally pooled features).
        centred = x - mean[None, :, None, None]
        var = all_reduce_sum((centred * centred).sum((0, 2, 3))) / total
        with torch.no_grad():
            self.num_batches_tracked += 1
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            unbiased = var.detach() * total / (total - 1).clamp_min(1)
            self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
        scale = self.weight / torch.sqrt(var + self.eps)
        return centred * scale[None, :, None, None] + self.bias[None, :, None, None]


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm2d by its synchronised version for ``device``."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            sync = CPUSyncBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine,
                child.track_running_stats,
            )  # fmt: skip
            sync.load_state_dict(child.state_dict())
            setattr(model, name, sync)
        else:
            convert_sync_batchnorm(child, device)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
