"""``bisenet train``, ``bisenet evaluate`` and ``bisenet check-dataset``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ..arguments import number, side
from ..choices import DATASET_FORMATS

log = logging.getLogger(__name__)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train or fine-tune a network (one process, or under torchrun)"
    )
    p.add_argument("--config", required=True, help="training YAML (see config/*.yaml)")
    p.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        help="continue a run from its training state (default: <out_dir>/last.pt)",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides, e.g. train.max_iter=200",
    )
    p.set_defaults(run=run_train)

    p = subparsers.add_parser("evaluate", help="mIoU of a checkpoint on a dataset split")
    p.add_argument("checkpoint", help="model file (project format or a public layout)")
    _dataset_args(p, default_split="test")
    p.add_argument(
        "--scales",
        type=number(float, 0.25, 4.0),
        nargs="+",
        default=[1.0],
        help="multi-scale factors",
    )
    p.add_argument("--flip", action="store_true", help="also average horizontally flipped input")
    p.add_argument(
        "--input-size", type=side, nargs=2, metavar=("H", "W"), help="default: the manifest's"
    )
    p.add_argument("--device", default="cuda" if _cuda() else "cpu")
    p.add_argument("--json", type=Path, help="write metrics and confusion matrix here")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run_evaluate)

    p = subparsers.add_parser("check-dataset", help="validate a dataset before training")
    _dataset_args(p, default_split="train")
    p.add_argument("--json", type=Path, help="write the report here")
    p.set_defaults(run=run_check)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _dataset_args(p: argparse.ArgumentParser, default_split: str) -> None:
    p.add_argument("--format", default="camvid", choices=DATASET_FORMATS)
    p.add_argument("--root", default="../shared/datasets/camvid", help="dataset folder")
    p.add_argument(
        "--classes", type=Path, help="class config: the classes to learn, a remap of the raw ones"
    )
    p.add_argument("--split", nargs="+", default=[default_split], help="split name(s)")


def run_train(args: argparse.Namespace) -> int:
    from ..stop_request import stop_on_signals
    from .config import load_config
    from .trainer import Interrupted, train

    overrides, resume = list(args.overrides), args.resume
    if resume and "=" in resume and not Path(resume).exists():
        # `--resume train.max_iter=N`: argparse took the override for --resume's path
        overrides.insert(0, resume)
        resume = "auto"
    config = load_config(args.config, overrides)
    if resume == "auto":
        resume = Path(config["train"]["out_dir"]) / "last.pt"
    try:
        metrics = train(config, resume, stop_on_signals(second_interrupts=True))
    except Interrupted as stopped:
        print(
            f"bisenet train: {stopped}; continue with the same command and --resume",
            file=sys.stderr,
        )
        return 130  # the shell's code for "ended by Ctrl-C"
    if metrics:
        print(f"val mIoU {100 * metrics['miou']:.2f}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import torch

    from ..models import load_checkpoint
    from .evaluation import evaluate
    from .formats import build_dataset, in_model_order
    from .transforms import EvalTransform

    if not Path(args.root).is_dir():  # before the model loads
        raise FileNotFoundError(f"dataset folder not found: {args.root}")
    if Path(args.checkpoint).suffix in (".onnx", ".engine"):
        raise ValueError(
            f"{args.checkpoint}: evaluate takes a checkpoint (.pt/.pth), the one the graph "
            "was exported from"
        )
    model, manifest = load_checkpoint(args.checkpoint)
    size = tuple(args.input_size) if args.input_size else manifest.input_size
    transform = EvalTransform(manifest.mean, manifest.std, size)
    dataset = build_dataset(args.format, args.root, args.split, transform, args.classes)
    in_model_order(dataset, manifest.class_names)
    device = torch.device(args.device)
    result = evaluate(
        model.to(device), dataset, manifest.num_classes, manifest.class_names, device,
        scales=tuple(args.scales), flip=args.flip, progress=not args.no_progress,
    )  # fmt: skip
    m = result.metrics
    for name, iou in m["iou"].items():
        print(f"  {name:<16} {'n/a' if iou is None else f'{100 * iou:6.2f}'}")
    print(
        f"mIoU {100 * m['miou']:.2f}  pixel acc {100 * m['pixel_acc']:.2f}  "
        f"({len(dataset)} images of {args.root} {' '.join(args.split)} at {size[0]}x{size[1]}, "
        f"scales {args.scales}{', flip' if args.flip else ''})"
    )
    if args.json:
        extra = {"checkpoint": str(args.checkpoint), "split": args.split, "input_size": size,
                 "scales": args.scales, "flip": args.flip, "images": len(dataset)}  # fmt: skip
        result.to_json(args.json, extra)
    return 0


def run_check(args: argparse.Namespace) -> int:
    from .check import check_dataset

    report = check_dataset(args.format, args.root, args.split, args.classes)
    print(report.text())
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2))
    return 0 if report.ok else 1
