"""Training throughput (images/s) and where the time goes: data loading vs the GPU/CPU step.

    python benchmarks/train_throughput.py --config config/camvid_bisenetv2_gpu.yaml \\
        --workers 2 8 14 --json train_throughput.json

One run measures, with the config's model, loss, optimiser, batch and crop:
  * the data loader alone, for each ``--workers`` count (decode + augmentation);
  * the optimisation step alone on one batch kept on the device, for each speed-up
    (fp32 NCHW, channels_last, AMP, both): the "before and after" of the speed-ups;
  * the two together, as ``bisenet train`` runs them (loader workers + step, the config's
    own settings), which is the rate a time-budgeted run plans with.
Nothing is written to the model or the run folder; the figures go to stdout and ``--json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from bisenet_ros.inference.bench import machine
from bisenet_ros.training.config import load_config
from bisenet_ros.training.trainer import Trainer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def loader_rate(trainer: Trainer, batches: int) -> float:
    """Images/s the data loader delivers on its own."""
    loader = iter(trainer._loader())
    next(loader)  # worker start-up is not throughput
    start = time.perf_counter()
    count = 0
    for _ in range(batches):
        images, _ = next(loader)
        count += images.shape[0]
    return count / (time.perf_counter() - start)


def step_rate(trainer: Trainer, images, labels, steps: int, warmup: int) -> float:
    """Images/s of the optimisation step alone (one batch reused, already in memory)."""
    device = trainer.ctx.device
    for _ in range(warmup):
        trainer.step(images, labels)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(images, labels)
    _sync(device)
    return steps * images.shape[0] / (time.perf_counter() - start)


def combined_rate(trainer: Trainer, steps: int, warmup: int) -> float:
    """Images/s of loader and step together, as ``Trainer.run`` drives them."""
    loader = iter(trainer._loader())
    for _ in range(warmup):
        trainer.step(*next(loader))
    _sync(trainer.ctx.device)
    start = time.perf_counter()
    count = 0
    for _ in range(steps):
        images, labels = next(loader)
        trainer.step(images, labels)
        count += images.shape[0]
    _sync(trainer.ctx.device)
    return count / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="training YAML")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--loader-batches", type=int, default=40)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.batch_size=4")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        base = [*args.overrides, f"train.out_dir={scratch}", "train.progress=false"]
        base.append("train.max_iter=100000")  # loaders are lazy: only what is read is made
        config = load_config(args.config, base)
        trainer = Trainer(config)
        device = trainer.ctx.device
        report: dict = {
            "config": args.config,
            "overrides": args.overrides,
            "device": str(device),
            "machine": machine(),
            "batch_size": config["train"]["batch_size"],
            "crop_size": config["augment"]["crop_size"],
            "loader_img_s": {},
            "step_img_s": {},
        }
        for workers in args.workers:
            trainer.config["train"]["num_workers"] = workers
            rate = loader_rate(trainer, args.loader_batches)
            report["loader_img_s"][str(workers)] = rate
            print(f"loader, {workers:2d} workers: {rate:8.1f} img/s", flush=True)

        images, labels = next(iter(trainer._loader()))
        variants = [("fp32", False, False), ("fp32 channels_last", False, True)]
        if device.type == "cuda":
            variants += [("amp", True, False), ("amp channels_last", True, True)]
        for name, amp, channels_last in variants:
            trainer = Trainer(load_config(args.config, [
                *base, f"train.amp={amp}", f"train.channels_last={channels_last}",
            ]))  # fmt: skip
            rate = step_rate(trainer, images, labels, args.steps, args.warmup)
            report["step_img_s"][name] = rate
            print(f"step alone, {name:<20}: {rate:8.1f} img/s", flush=True)

        trainer = Trainer(load_config(args.config, base))
        rate = combined_rate(trainer, args.steps, args.warmup)
        train = trainer.config["train"]
        report["combined_img_s"] = rate
        report["combined_workers"] = train["num_workers"]
        print(
            f"loader + step as configured ({train['num_workers']} workers, "
            f"amp={trainer.amp}, channels_last={train['channels_last']}): {rate:8.1f} img/s",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
