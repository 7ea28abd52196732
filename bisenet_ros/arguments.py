"""Value types for the ``bisenet`` subcommands' options: a number out of its range, or an
image size the network cannot take, is an argparse usage error that names the range, not a
silently wrong result or a traceback deep in the run."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .manifest import MIN_INPUT_SIDE


def number(kind: type, low: float, high: float | None = None) -> Callable[[str], float]:
    """An option type: ``kind`` (int or float) from ``low`` to ``high`` (inclusive)."""
    what = "an integer" if kind is int else "a number"
    bounds = f"from {low} to {high}" if high is not None else f"at least {low}"

    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= (high if high is not None else value):
            raise argparse.ArgumentTypeError(f"{text} is out of range: {what} {bounds}")
        return value

    convert.__name__ = kind.__name__  # what argparse names in "invalid <type> value"
    return convert


side = number(int, MIN_INPUT_SIDE)  # one side of a network input (the network downsamples 32x)


def size(text: str) -> tuple[int, int]:
    """An ``HxW`` option, e.g. 512x1024, each side at least MIN_INPUT_SIDE."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HxW, e.g. 512x1024: {text!r}") from None
    if min(height, width) < MIN_INPUT_SIDE:
        raise argparse.ArgumentTypeError(
            f"{text}: each side must be at least {MIN_INPUT_SIDE} (the network downsamples 32x)"
        )
    return height, width
