"""Logits to what the outputs carry: uint8 class ids and max-softmax confidence x 255.

One function for every torch path (the exported graphs' heads, the torch and TensorRT
backends). The ids pass through float on their way to uint8: TensorRT converts to and from
uint8 only from float, and the exported graphs are traced from this function.
"""

from __future__ import annotations

import torch


def ids_and_confidence(
    logits: torch.Tensor, confidence: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(N, H, W) uint8 ids and, if asked, uint8 confidence from (N, C, H, W) logits."""
    ids = logits.argmax(dim=1).float().to(torch.uint8)
    if not confidence:
        return ids, None
    top = torch.softmax(logits.float(), dim=1).amax(dim=1)
    return ids, torch.round(top * 255.0).to(torch.uint8)
