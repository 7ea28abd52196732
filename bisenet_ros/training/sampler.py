"""An iteration-indexed sample stream, the basis of exact resume and DDP equivalence.

The job reads one endless stream of sample positions: position ``p`` is sample
``perm_e[p mod n]`` of epoch ``e = p div n`` (a seeded shuffle per epoch), with
augmentation seed ``(seed, p)``. Iteration ``i`` is positions ``i*B .. (i+1)*B - 1`` for the
global batch ``B``, split between processes by rank. So what a run sees depends only on the
seed and the iteration: not on the number of processes, and not on whether it was resumed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class StreamBatchSampler(Sampler):
    """This process's share of the global batches of iterations ``start .. stop - 1``."""

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int,
        start: int,
        stop: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.num_samples = num_samples
        self.batch_size = batch_size  # per process
        self.seed = seed
        self.start, self.stop = start, stop
        self.rank, self.world_size = rank, world_size
        self._epoch, self._perm = -1, None

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def _sample_at(self, position: int) -> int:
        epoch, offset = divmod(position, self.num_samples)
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
        return int(self._perm[offset])

    def __iter__(self) -> Iterator[list[tuple[int, list[int]]]]:
        global_batch = self.batch_size * self.world_size
        for it in range(self.start, self.stop):
            first = it * global_batch + self.rank * self.batch_size
            yield [
                (self._sample_at(p), [self.seed, p]) for p in range(first, first + self.batch_size)
            ]
