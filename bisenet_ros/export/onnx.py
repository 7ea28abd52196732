"""ONNX export: the graph every non-PyTorch backend (ONNX Runtime, TensorRT) runs.

The graph takes a normalised float32 batch ``input`` (N, 3, H, W) at a fixed network size
with a dynamic batch, and outputs either ``logits`` (N, C, H, W) or ``ids`` (N, H, W, uint8)
with argmax inside the graph (standard ops only, no plugin), optionally with ``confidence``
(N, H, W, uint8: max softmax x 255). The manifest goes into ``metadata_props`` and into a
sidecar YAML beside the file.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from pathlib import Path

import onnx
import torch
from torch import nn

from ..manifest import MIN_INPUT_SIDE, Manifest, sidecar_path
from ..models.labels import ids_and_confidence
from ..onnx_metadata import set_manifest_metadata

log = logging.getLogger(__name__)

OUTPUTS = ("logits", "ids")
MIN_OPSET = 17


class IdsHead(nn.Module):
    """Wraps a network so the graph ends in class ids (and confidence) instead of logits."""

    def __init__(self, model: nn.Module, confidence: bool) -> None:
        super().__init__()
        self.model = model
        self.confidence = confidence

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        ids, conf = ids_and_confidence(self.model(x), self.confidence)
        return ids if conf is None else (ids, conf)


def export_onnx(
    model: nn.Module,
    manifest: Manifest,
    path: str | Path,
    input_size: tuple[int, int] | None = None,
    output: str = "ids",
    confidence: bool = False,
    opset: int = MIN_OPSET,
) -> Path:
    """Export ``model`` to ``path`` and write the manifest sidecar; returns ``path``.

    ``input_size`` (height, width) defaults to the manifest's; any size works, multiples of
    32 or not. The manifest written records the size the graph was exported at.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, not {output!r}")
    if confidence and output != "ids":
        raise ValueError("confidence is an extra output of output='ids'")
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset} is too old; use {MIN_OPSET} or newer")
    if manifest.num_classes > 255 and output == "ids":
        raise ValueError("uint8 ids hold at most 255 classes; export logits instead")
    height, width = input_size or manifest.input_size
    if height < MIN_INPUT_SIDE or width < MIN_INPUT_SIDE:
        raise ValueError(f"input size {height}x{width} is too small (the network downsamples 32x)")
    manifest = replace(manifest, input_size=(height, width))

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().float().cpu()
    # eval() on the wrapper too: the exporter restores the exported module's training flag
    # on the whole tree afterwards, which would otherwise leave ``model`` in training mode.
    graph = (IdsHead(model, confidence) if output == "ids" else model).eval()
    names = ["logits"] if output == "logits" else (["ids", "confidence"] if confidence else ["ids"])
    dummy = torch.zeros(1, 3, height, width)
    # The TorchScript exporter is deprecated but the torch.export-based one cannot trace
    # this network with a dynamic batch (torch 2.13); silence the deprecation notice only.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            graph,
            (dummy,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            output_names=names,
            dynamic_axes={n: {0: "batch"} for n in ["input", *names]},
        )
    proto = onnx.load(str(path))
    set_manifest_metadata(proto, manifest)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    manifest.save(sidecar_path(path))
    log.info(
        "exported %s (%s, %dx%d, opset %d) and %s",
        path,
        "+".join(names),
        height,
        width,
        opset,
        sidecar_path(path).name,
    )
    return path
