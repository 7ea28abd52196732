"""What every backend answers: a normalised batch in, class ids (and confidence) out."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ...choices import PRECISIONS


class Backend(Protocol):
    """A runtime holding one network at a fixed input size.

    ``run`` takes a float32 NCHW batch (already normalised) and returns uint8 class ids
    (N, H, W) and, when asked, uint8 confidence (max softmax x 255), both computed where the
    network runs and copied back to host memory.
    """

    name: str
    precision: str
    has_confidence: bool  # False for graphs exported without it (ids only)

    def run(self, batch: np.ndarray, confidence: bool) -> tuple[np.ndarray, np.ndarray | None]: ...


def check_precision(precision: str, supported: tuple[str, ...], where: str) -> None:
    """Raise ``ValueError`` for a precision this backend cannot run here."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision not in supported:
        raise ValueError(
            f"precision {precision!r} is not available on {where}; choose one of {supported}"
        )


def ids_and_confidence(
    logits: np.ndarray, confidence: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Host-side argmax/softmax for graphs that end in logits (N, C, H, W)."""
    ids = logits.argmax(axis=1).astype(np.uint8)
    if not confidence:
        return ids, None
    top = logits.max(axis=1, keepdims=True)
    prob = 1.0 / np.exp(logits - top).sum(axis=1)
    return ids, np.round(prob * 255.0).astype(np.uint8)
