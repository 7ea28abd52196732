"""Latency, throughput and memory of each backend and precision on real frames.

All configurations of one (size, batch) are timed round-robin, one call each in turn, so
load from other processes on a shared machine falls on all of them alike and their ratios
stay meaningful even when absolute figures drift.
"""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..image_decoding import ImageError, read_image_file
from ..image_files import spread
from .backends.cpu_int8 import cpuinfo_fields, int8_dot_product
from .segmenter import Segmenter

log = logging.getLogger(__name__)
STAGES = ("preprocess_ms", "inference_ms", "postprocess_ms", "total_ms")
PERCENTILES = (50, 90, 99)
BLOCK = 5  # timed calls per turn of a config (see ``bench``)
# set by benchmarks/avx2_only.py, which hides CPU features from the runtimes it runs
CPUID_MASK_ENV = "BISENET_CPUID_MASK"


@dataclass
class Config:
    backend: str
    precision: str
    cuda_graphs: bool = False

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision}" + (" +graphs" if self.cuda_graphs else "")


@dataclass
class Result:
    backend: str
    precision: str
    cuda_graphs: bool
    size: tuple[int, int]
    batch: int
    iterations: int
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    throughput_fps: float = 0.0
    peak_mem_mb: float = 0.0
    peak_gpu_mb: float | None = None
    skipped: str | None = None


def machine() -> dict:
    """What the figures were measured on, including the load other processes put on it and
    the CPU features int8 speed depends on (``cpu_int8``)."""
    import os
    import platform

    fields = cpuinfo_fields()
    info = {
        "cpu": fields.get("model name") or platform.processor() or platform.machine(),
        "cpu_family_model": " ".join(
            f"{key} {fields[key]}" for key in ("cpu family", "model", "stepping") if key in fields
        ),
        "int8_dot_product": int8_dot_product(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
    }
    if os.environ.get(CPUID_MASK_ENV):
        info["cpuid_mask"] = os.environ[CPUID_MASK_ENV]
    gpu = _gpu_name()
    if gpu:
        info["gpu"] = gpu
    return info


def _gpu_name() -> str | None:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else None


def load_frames(folder: str | Path, count: int) -> list[np.ndarray]:
    """Up to ``count`` real frames (BGR) from ``folder``, sorted by name; ValueError names
    a file that cannot be read."""
    frames = []
    for file in spread(folder, count):
        try:
            image, _ = read_image_file(file)  # in BGR order
        except ImageError as error:
            raise ValueError(f"cannot read frame {file}: {error.detail}") from None
        frames.append(image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    return frames


def _reset_peak_rss() -> None:
    try:  # Linux: "5" resets the peak resident set size (VmHWM) of this process
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _rss_mb(field_name: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _gpu_peak(reset: bool) -> float | None:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    if reset:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return None
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def _summary(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for stage in STAGES:
        values = np.array([s[stage] for s in samples])
        row = {f"p{p}": float(np.percentile(values, p)) for p in PERCENTILES}
        row["mean"] = float(values.mean())
        out[stage] = row
    return out


def bench(
    model: str | Path,
    configs: list[Config],
    sizes: list[tuple[int, int]],
    batches: list[int],
    frames: list[np.ndarray],
    iterations: int = 20,
    warmup: int = 3,
    threads: int | None = None,
    calibration_images: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> list[Result]:
    """Time every config at every network size and batch; configs that cannot run are skipped."""
    results = []
    for size in sizes:
        for batch_size in batches:
            images = [frames[i % len(frames)] for i in range(batch_size)]
            runners: list[tuple[Config, Segmenter, Result]] = []
            for config in configs:
                result = Result(config.backend, config.precision, config.cuda_graphs, size,
                                batch_size, iterations)  # fmt: skip
                results.append(result)
                before = _rss_mb("VmRSS")
                _reset_peak_rss()
                _gpu_peak(reset=True)
                try:
                    seg = Segmenter.from_file(
                        model,
                        backend=config.backend,
                        precision=config.precision,
                        threads=threads,
                        input_size=size,
                        cuda_graphs=config.cuda_graphs,
                        calibration_images=calibration_images,
                        cache_dir=cache_dir,
                    )
                except (ValueError, ImportError) as error:
                    result.skipped = str(error)
                    log.warning("skipping %s: %s", config.label, error)
                    continue
                for _ in range(warmup):
                    seg.segment(images, channel_order="bgr")
                result.peak_mem_mb = _rss_mb("VmHWM") - before
                result.peak_gpu_mb = _gpu_peak(reset=False)
                runners.append((config, seg, result))
            samples: dict[int, list[dict[str, float]]] = {id(r): [] for _, _, r in runners}
            # Configs take turns in short blocks, each opened by one untimed call: load from
            # other processes hits every config alike, and each block runs with its own
            # weights in the CPU caches, as a deployment running one model does.
            for start_index in range(0, iterations, BLOCK):
                block = min(BLOCK, iterations - start_index)
                for _, seg, result in runners:
                    seg.segment(images, channel_order="bgr")
                    for _ in range(block):
                        start = time.perf_counter()
                        timing = seg.segment(images, channel_order="bgr")[0].timing
                        timing["total_ms"] = (time.perf_counter() - start) * 1e3
                        samples[id(result)].append(timing)
            for _, _, result in runners:
                result.latency_ms = _summary(samples[id(result)])
                result.throughput_fps = batch_size * 1e3 / result.latency_ms["total_ms"]["mean"]
            del runners
    return results


def table(results: list[Result]) -> str:
    """A plain-text table; speed-up is against torch fp32 at the same size and batch.

    ``mem MB`` is the peak resident memory a config added while loading and warming up
    (host side; the GPU column is PyTorch's peak CUDA allocation).
    """
    header = (
        f"{'size':>10} {'batch':>5} {'backend':<26} {'pre p50':>8} {'inf p50':>8} "
        f"{'inf p90':>8} {'post p50':>8} {'tot p50':>8} {'img/s':>7} {'mem MB':>7} "
        f"{'GPU MB':>7} {'vs torch':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        size = f"{r.size[0]}x{r.size[1]}"
        label = f"{r.backend} {r.precision}" + (" +graphs" if r.cuda_graphs else "")
        if r.skipped:
            lines.append(f"{size:>10} {r.batch:>5} {label:<26} skipped: {r.skipped}")
            continue
        base = next(
            (b for b in results if not b.skipped and (b.backend, b.precision, b.cuda_graphs,
             b.size, b.batch) == ("torch", "fp32", False, r.size, r.batch)),
            None,
        )  # fmt: skip
        ratio = (
            f"{base.latency_ms['total_ms']['p50'] / r.latency_ms['total_ms']['p50']:.2f}x"
            if base
            else "-"
        )
        lat = r.latency_ms
        gpu = f"{r.peak_gpu_mb:.0f}" if r.peak_gpu_mb is not None else "-"
        lines.append(
            f"{size:>10} {r.batch:>5} {label:<26} {lat['preprocess_ms']['p50']:>8.1f} "
            f"{lat['inference_ms']['p50']:>8.1f} {lat['inference_ms']['p90']:>8.1f} "
            f"{lat['postprocess_ms']['p50']:>8.1f} {lat['total_ms']['p50']:>8.1f} "
            f"{r.throughput_fps:>7.2f} {r.peak_mem_mb:>7.0f} {gpu:>7} {ratio:>8}"
        )
    return "\n".join(lines)


def to_json(results: list[Result]) -> list[dict]:
    return [asdict(r) for r in results]
