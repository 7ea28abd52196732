"""PyTorch backend: the checkpoint's own network on the CPU or a CUDA GPU.

fp16 runs on CUDA only; activations are channels_last (what cuDNN and oneDNN convolutions
prefer). With ``cuda_graphs`` the whole forward pass, argmax and confidence included, is
captured once per batch size and replayed, which removes the per-kernel launch overhead that
dominates small inputs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...models.labels import ids_and_confidence
from .base import check_precision


class TorchBackend:
    name = "torch"
    has_confidence = True

    def __init__(
        self,
        model: nn.Module,
        precision: str = "fp32",
        device: str | None = None,
        cuda_graphs: bool = False,
    ) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        on_cuda = self.device.type == "cuda"
        supported = ("fp32", "fp16") if on_cuda else ("fp32",)
        check_precision(precision, supported, f"the torch backend on {self.device.type}")
        if cuda_graphs and not on_cuda:
            raise ValueError("cuda_graphs needs the torch backend on a CUDA device")
        self.precision = precision
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.model = model.eval().to(self.device, self.dtype).to(memory_format=torch.channels_last)
        self.cuda_graphs = cuda_graphs
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor, tuple]] = {}

    @torch.no_grad()
    def _forward(
        self, x: torch.Tensor, confidence: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return ids_and_confidence(self.model(x), confidence)

    def _graphed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Replay (capturing on first use) the graph for this batch size; always with confidence."""
        n = x.shape[0]
        if n not in self._graphs:
            static_in = torch.zeros_like(x)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up outside capture, as the CUDA-graph docs ask
                for _ in range(3):
                    self._forward(static_in, True)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                outputs = self._forward(static_in, True)
            self._graphs[n] = (graph, static_in, outputs)
        graph, static_in, outputs = self._graphs[n]
        static_in.copy_(x)
        graph.replay()
        return outputs

    def run(self, batch: np.ndarray, confidence: bool) -> tuple[np.ndarray, np.ndarray | None]:
        x = torch.from_numpy(batch)
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        x = x.to(self.dtype).contiguous(memory_format=torch.channels_last)
        if self.cuda_graphs:
            ids, conf = self._graphed(x)
            conf = conf if confidence else None
        else:
            ids, conf = self._forward(x, confidence)
        return ids.cpu().numpy(), (conf.cpu().numpy() if conf is not None else None)
