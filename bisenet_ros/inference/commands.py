"""``bisenet infer`` (images, folders, videos, rosbag2) and ``bisenet bench``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..arguments import number, size
from ..choices import BACKENDS, PRECISIONS, RESIZE_MODES
from .views import VIEWS


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads", type=number(int, 1, 256), help="CPU threads (default: the runtime's choice)"
    )
    p.add_argument(
        "--calibration", type=Path, help="folder of frames for int8 calibration (not yet int8)"
    )
    p.add_argument("--cache-dir", type=Path, help="derived models (default ~/.cache/bisenet_ros)")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("infer", help="segment an image, folder, video or rosbag2")
    p.add_argument("model", type=Path, help="checkpoint (.pt), ONNX or TensorRT engine")
    p.add_argument("input", type=Path, help="image, folder, video, or rosbag2 (folder/.db3/.mcap)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--resize-mode", choices=RESIZE_MODES, default="stretch")
    p.add_argument(
        "--save",
        nargs="*",
        choices=VIEWS,
        default=["labels", "overlay"],
        help="images written per frame (default: labels overlay); none with --save alone",
    )
    p.add_argument(
        "--alpha",
        type=number(float, 0.0, 1.0),
        default=0.5,
        help="overlay opacity of the colour mask",
    )
    p.add_argument("--video", type=Path, help="also write an overlay video (e.g. out.mp4)")
    p.add_argument(
        "--fps",
        type=number(float, 0.1, 1000.0),
        help="video frame rate (default: the input's, else 10)",
    )
    p.add_argument("--drivable-classes", type=int, nargs="+", help="default: the manifest's")
    p.add_argument("--topic", help="rosbag2 image topic (default: the only one)")
    p.add_argument(
        "--output-bag", type=Path, help="write a copy of the bag with label and drivable topics"
    )
    p.add_argument("--bag-storage", choices=["mcap", "sqlite3"], default="mcap")
    _model_options(p)
    p.set_defaults(run=run_infer)

    p = sub.add_parser("bench", help="latency and throughput of each backend and precision")
    p.add_argument("model", type=Path, help="checkpoint (.pt) to export to every backend")
    p.add_argument("--frames", type=Path, required=True, help="folder of real frames")
    p.add_argument("--backends", nargs="+", choices=BACKENDS[1:], default=list(BACKENDS[1:]))
    p.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    p.add_argument("--cuda-graphs", action="store_true", help="add torch CUDA-graph configs")
    p.add_argument("--sizes", nargs="+", type=size, default=[(512, 1024), (1024, 2048)])
    p.add_argument("--batches", nargs="+", type=number(int, 1), default=[1, 4])
    p.add_argument("--iterations", type=number(int, 1), default=20)
    p.add_argument("--warmup", type=number(int, 0), default=3)
    p.add_argument("--json", type=Path, help="write the results here (default: bench.json)")
    _model_options(p)
    p.set_defaults(run=run_bench)


def run_infer(args: argparse.Namespace) -> int:
    from .infer import InferOptions, check_source, infer

    options = InferOptions(
        save=list(args.save),
        alpha=args.alpha,
        video=args.video,
        fps=args.fps,
        drivable_classes=args.drivable_classes,
        topic=args.topic,
        output_bag=args.output_bag,
        bag_storage=args.bag_storage,
    )
    check_source(args.input, options)  # before the model: a typo costs no loading time
    segmenter = _segmenter(args)
    count = infer(segmenter, args.input, args.output, options)
    print(f"segmented {count} frames with {segmenter.backend} {segmenter.precision}")
    return 0


def _segmenter(args: argparse.Namespace):
    from .segmenter import Segmenter

    return Segmenter.from_file(
        args.model,
        backend=args.backend,
        precision=args.precision,
        resize_mode=args.resize_mode,
        threads=args.threads,
        calibration_images=args.calibration,
        cache_dir=args.cache_dir,
    )


def run_bench(args: argparse.Namespace) -> int:
    from .bench import Config, bench, load_frames, machine, table, to_json

    before = machine()
    configs = [Config(b, p) for b in args.backends for p in args.precisions]
    if args.cuda_graphs:
        configs += [Config("torch", p, True) for p in args.precisions if p != "int8"]
    frames = load_frames(args.frames, 8)
    results = bench(
        args.model,
        configs,
        args.sizes,
        args.batches,
        frames,
        iterations=args.iterations,
        warmup=args.warmup,
        threads=args.threads,
        calibration_images=args.calibration or args.frames,
        cache_dir=args.cache_dir,
    )
    print(table(results))
    output = args.json or Path("bench.json")
    report = {
        "command": " ".join(sys.argv),
        "machine_before": before,
        "machine_after": machine(),
        "results": to_json(results),
    }
    output.write_text(json.dumps(report, indent=2))
    print(f"wrote {output}")
    return 0
