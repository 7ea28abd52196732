"""``bisenet export``: turn a checkpoint into a deployable model file."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..arguments import number, side
from ..choices import PRECISIONS


def add_commands(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="export a checkpoint for deployment")
    targets = export.add_subparsers(dest="target", required=True, metavar="TARGET")

    p = targets.add_parser("onnx", help="ONNX graph (ONNX Runtime, TensorRT) with its manifest")
    p.add_argument("weights", type=Path, help="checkpoint: project format, CoinCheung or mmseg")
    p.add_argument("-o", "--output", type=Path, help="ONNX file (default: ./<weights name>.onnx)")
    p.add_argument(
        "--size",
        type=side,
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

    p = targets.add_parser("fp16", help="fp16 ONNX graph (TensorRT fp16 builds, fp16 runtimes)")
    p.add_argument("model", type=Path, help="checkpoint or fp32 ONNX graph (with its manifest)")
    p.add_argument("--size", type=side, nargs=2, metavar=("H", "W"), help="for a checkpoint")
    p.add_argument("-o", "--output", type=Path, help="default: ./<model name>.fp16.onnx")
    p.set_defaults(run=run_fp16)

    p = targets.add_parser("int8", help="int8 Q/DQ ONNX graph (TensorRT and ONNX Runtime)")
    p.add_argument("model", type=Path, help="checkpoint or fp32 ONNX graph (with its manifest)")
    p.add_argument("--calibration", type=Path, required=True, help="folder of real frames")
    p.add_argument("--images", type=number(int, 1), default=32, help="calibration frames to use")
    p.add_argument("--method", choices=["minmax", "entropy", "percentile"], default="entropy")
    p.add_argument("--size", type=side, nargs=2, metavar=("H", "W"), help="for a checkpoint")
    p.add_argument("-o", "--output", type=Path, help="default: ./<model name>.int8.onnx")
    p.set_defaults(run=run_int8)

    p = targets.add_parser("tensorrt", help="TensorRT engine, built ahead of time into the cache")
    p.add_argument("model", type=Path, help="checkpoint or ONNX graph (with its manifest)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp16")
    p.add_argument(
        "--calibration", type=Path, help="folder of real frames, to quantise an fp32 graph (int8)"
    )
    p.add_argument("--max-batch", type=number(int, 1), default=4)
    p.add_argument("--size", type=side, nargs=2, metavar=("H", "W"), help="for a checkpoint")
    p.add_argument("--cache-dir", type=Path, help="default: ~/.cache/bisenet_ros")
    p.set_defaults(run=run_tensorrt)


def run_onnx(args: argparse.Namespace) -> int:
    from ..manifest import Manifest
    from ..models import load_checkpoint
    from .onnx import export_onnx

    manifest = Manifest.load(args.manifest) if args.manifest else None
    model, manifest = load_checkpoint(args.weights, manifest=manifest)
    output = args.output or Path(args.weights.stem + ".onnx")  # never into the package
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


def _onnx_graph(model: Path, size: list[int] | None, cache: Path | None = None) -> Path:
    """``model`` itself if it is ONNX, else the checkpoint exported (and cached) at ``size``."""
    from .cache import exported_onnx

    if model.suffix == ".onnx":
        if size:
            raise ValueError("--size applies to checkpoints; an ONNX graph has its size fixed")
        return model
    return exported_onnx(model, tuple(size) if size else None, cache)


def run_fp16(args: argparse.Namespace) -> int:
    from .fp16 import export_fp16

    output = args.output or Path(args.model.stem + ".fp16.onnx")
    export_fp16(_onnx_graph(args.model, args.size), output)
    print(f"wrote {output}")
    return 0


def run_int8(args: argparse.Namespace) -> int:
    from .quantize import quantize_onnx

    if not args.calibration.is_dir():  # before the export, which takes a while
        raise FileNotFoundError(f"calibration folder {args.calibration} does not exist")
    graph = _onnx_graph(args.model, args.size)
    output = args.output or Path(args.model.stem + ".int8.onnx")
    quantize_onnx(graph, output, args.calibration, num_images=args.images, method=args.method)
    print(f"wrote {output}")
    return 0


def run_tensorrt(args: argparse.Namespace) -> int:
    from .tensorrt import build_engine, engine_graph, require_tensorrt

    require_tensorrt()  # before the export and quantisation, which take a while
    graph = _onnx_graph(args.model, args.size, args.cache_dir)
    graph = engine_graph(graph, args.precision, args.calibration, args.cache_dir)
    engine = build_engine(graph, args.precision, max_batch=args.max_batch, cache=args.cache_dir)
    print(f"engine: {engine}")
    return 0
