"""``Segmenter``: uint8 images in, class ids (and confidence) at the input size out.

One object per model; the backend behind it is chosen by name or automatically, and the
caller never sees which one runs. Preprocessing follows the model's manifest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import preprocess as pre
from ..choices import RESIZE_MODES
from ..manifest import Manifest
from .backends import Backend, check_content, model_kind, resolve_backend


@dataclass
class Segmentation:
    """The result for one image. ``timing`` holds the milliseconds of the whole batch it ran in."""

    ids: np.ndarray
    confidence: np.ndarray | None = None
    timing: dict[str, float] = field(default_factory=dict)


class Segmenter:
    """Runs one model through one backend. Not thread-safe: call ``segment`` from one thread."""

    def __init__(self, backend: Backend, manifest: Manifest, resize_mode: str = "stretch") -> None:
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, not {resize_mode!r}")
        self._backend = backend
        self.manifest = manifest
        self.resize_mode = resize_mode

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def precision(self) -> str:
        return self._backend.precision

    @property
    def has_confidence(self) -> bool:
        """Whether the model can give confidence (graphs exported without it cannot)."""
        return self._backend.has_confidence

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        backend: str = "auto",
        precision: str = "fp32",
        resize_mode: str = "stretch",
        threads: int | None = None,
        input_size: tuple[int, int] | None = None,
        cuda_graphs: bool = False,
        calibration_images: str | Path | None = None,
        cache_dir: str | Path | None = None,
    ) -> Segmenter:
        """Load a checkpoint (.pt/.pth), ONNX graph or TensorRT engine with its manifest.

        ``threads`` limits CPU threads (onnxruntime and torch on the CPU). ``input_size``
        (H, W) runs a checkpoint at another network size than its manifest's. ``cuda_graphs``
        captures the torch CUDA forward pass. ``calibration_images`` is a folder of frames for
        int8 calibration when the model is not already quantised. Derived files (exported
        ONNX, int8 graphs, engines) go to ``cache_dir`` (default ``~/.cache/bisenet_ros``).
        """
        from .loading import load_backend

        path = Path(path)
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder, not a model file")
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        kind = model_kind(path)
        check_content(path, kind)
        name = resolve_backend(backend, kind, precision, path)
        runner, manifest = load_backend(
            name,
            kind,
            path,
            precision=precision,
            threads=threads,
            input_size=input_size,
            cuda_graphs=cuda_graphs,
            calibration_images=calibration_images,
            cache_dir=cache_dir,
        )
        return cls(runner, manifest, resize_mode)

    def warm_up(self, iterations: int) -> None:
        """Run a blank frame ``iterations`` times, so that the first real frame is not slow
        (lazy allocations, kernel selection, graph optimisation)."""
        height, width = self.manifest.input_size
        blank = np.zeros((height, width, 3), np.uint8)
        for _ in range(iterations):
            self.segment(blank, confidence=self.has_confidence)

    def __str__(self) -> str:
        m = self.manifest
        height, width = m.input_size
        return (
            f"{m.arch}, {m.num_classes} classes, input {width}x{height}, "
            f"backend {self.backend}, precision {self.precision}"
        )

    def segment(
        self,
        images: np.ndarray | list[np.ndarray],
        channel_order: str | list[str] = "rgb",
        confidence: bool = False,
    ) -> list[Segmentation]:
        """Segment one image or a list (sizes may differ); raises ``ValueError`` on bad input.

        ``channel_order`` is the order of the given colour images (rgb or bgr), or a list with
        one per image; grey (HxW) images are accepted as they are.
        """
        images = pre.as_image_list(images)
        pre.channel_orders(channel_order, len(images))  # before any work
        t0 = time.perf_counter()
        batch, placements = pre.preprocess(images, self.manifest, channel_order, self.resize_mode)
        t1 = time.perf_counter()
        ids, conf = self._backend.run(batch, confidence)
        t2 = time.perf_counter()
        results = [
            Segmentation(
                ids=pre.restore(ids[i], p),
                confidence=pre.restore(conf[i], p) if conf is not None else None,
            )
            for i, p in enumerate(placements)
        ]
        t3 = time.perf_counter()
        timing = {
            "preprocess_ms": (t1 - t0) * 1e3,
            "inference_ms": (t2 - t1) * 1e3,
            "postprocess_ms": (t3 - t2) * 1e3,
        }
        for result in results:
            result.timing = dict(timing)
        return results
