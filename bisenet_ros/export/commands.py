"""``bisenet export``: turn a checkpoint into a deployable model file."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_commands(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="export a checkpoint for deployment")
    targets = export.add_subparsers(dest="target", required=True, metavar="TARGET")

    p = targets.add_parser("onnx", help="ONNX graph (ONNX Runtime, TensorRT) with its manifest")
    p.add_argument("weights", type=Path, help="checkpoint: project format, CoinCheung or mmseg")
    p.add_argument("-o", "--output", type=Path, help="ONNX file (default: beside the weights)")
    p.add_argument(
        "--size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="network input size (default: the manifest's)",
    )
    p.add_argument(
        "--head",
        choices=["ids", "logits"],
        default="ids",
        help="graph output: uint8 class ids (argmax in the graph) or logits",
    )
    p.add_argument(
        "--confidence",
        action="store_true",
        help="with --head ids: also output max-softmax confidence (uint8)",
    )
    p.add_argument("--opset", type=int, default=17)
    p.add_argument(
        "--manifest",
        type=Path,
        help="manifest YAML for checkpoints that carry none (public model zoos)",
    )
    p.set_defaults(run=run_onnx)


def run_onnx(args: argparse.Namespace) -> int:
    from ..manifest import Manifest
    from ..models import load_checkpoint
    from .onnx import export_onnx

    manifest = Manifest.load(args.manifest) if args.manifest else None
    model, manifest = load_checkpoint(args.weights, manifest=manifest)
    output = args.output or args.weights.with_suffix(".onnx")
    export_onnx(
        model,
        manifest,
        output,
        input_size=args.size,
        output=args.head,
        confidence=args.confidence,
        opset=args.opset,
    )
    print(f"wrote {output}")
    return 0
