"""Accuracy and speed of the CPU paths on a CamVid split: PyTorch fp32, and ONNX Runtime
with the fp32, fp16 and int8 graphs (the int8 graph is also the one TensorRT builds from).

    .venv/bin/python benchmarks/cpu_accuracy.py bisenet_ros/weights/bisenetv2_camvid.pt \\
        --camvid ../shared/datasets/camvid --json cpu_accuracy.json

All run through ``Segmenter`` with the same weights. Reports each path's median time per
frame, the share of pixels on which it agrees with PyTorch fp32 and, for an 11-class (CamVid)
model, its mIoU (the trainer's definition: Cityscapes-style, void ignored). int8 is
calibrated on training frames, never on the frames it is scored on.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from bisenet_ros.inference import Segmenter
from bisenet_ros.inference.bench import machine
from bisenet_ros.training.evaluation import confusion_matrix, scores

VOID = 255  # what the trainer's evaluation skips; CamVid's void id (11) is mapped to it
CAMVID_CLASSES = 11


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="checkpoint (.pt/.pth)")
    parser.add_argument("--camvid", type=Path, default=Path("../shared/datasets/camvid"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="network size")
    parser.add_argument("--calibration", type=Path, help="default: <camvid>/train/images")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    common = dict(threads=args.threads, input_size=args.size, cache_dir=args.cache_dir)
    calibration = args.calibration or args.camvid / "train" / "images"
    paths = {
        "torch_fp32": Segmenter.from_file(args.model, backend="torch", **common),
        "ort_fp32": Segmenter.from_file(args.model, backend="onnxruntime", **common),
        "ort_fp16": Segmenter.from_file(
            args.model, backend="onnxruntime", precision="fp16", **common
        ),
        "ort_int8": Segmenter.from_file(
            args.model,
            backend="onnxruntime",
            precision="int8",
            calibration_images=calibration,
            **common,
        ),
    }
    manifest = paths["torch_fp32"].manifest
    scored = manifest.num_classes == CAMVID_CLASSES
    matrices = {name: np.zeros((CAMVID_CLASSES,) * 2, np.int64) for name in paths}
    agree = {name: 0 for name in paths if name != "torch_fp32"}
    times = {name: [] for name in paths}
    total = 0
    files = sorted((args.camvid / args.split / "images").glob("*.jpg"))
    for image_path in tqdm(files, unit="frame"):
        image = cv2.imread(str(image_path))
        ids = {}
        for name, seg in paths.items():
            start = time.perf_counter()
            ids[name] = seg.segment(image, "bgr")[0].ids
            times[name].append((time.perf_counter() - start) * 1e3)
        total += ids["torch_fp32"].size
        for name in agree:
            agree[name] += int((ids[name] == ids["torch_fp32"]).sum())
        if scored:
            label_path = args.camvid / args.split / "labels" / (image_path.stem + ".png")
            label = cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)
            label[label >= CAMVID_CLASSES] = VOID
            for name, pred in ids.items():
                matrices[name] += confusion_matrix(label, pred, CAMVID_CLASSES)

    report = {
        "model": str(args.model),
        "machine": machine(),
        "split": args.split,
        "frames": len(files),
        "network_size": list(manifest.input_size),
        "agreement_with_torch_fp32": {name: count / total for name, count in agree.items()},
        "median_ms": {name: float(np.median(t)) for name, t in times.items()},
        "speed_vs_torch_fp32": {
            name: float(np.median(times["torch_fp32"]) / np.median(t)) for name, t in times.items()
        },
    }
    line = (
        f"{len(files)} {args.split} frames at {manifest.input_size[0]}x{manifest.input_size[1]}: "
        "ids equal to torch fp32 on "
        + ", ".join(f"{count / total:.4%} ({name})" for name, count in agree.items())
        + " of pixels; median ms "
        + ", ".join(f"{k} {v:.1f}" for k, v in report["median_ms"].items())
    )
    if scored:
        report["miou"] = {}
        for name, matrix in matrices.items():
            report["miou"][name] = scores(matrix, manifest.class_names)["miou"] * 100
        report["int8_miou_drop"] = report["miou"]["ort_fp32"] - report["miou"]["ort_int8"]
        line += "; mIoU " + ", ".join(f"{k} {v:.2f}" for k, v in report["miou"].items())
        line += f" (int8 drop {report['int8_miou_drop']:.2f})"
    print(line)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
