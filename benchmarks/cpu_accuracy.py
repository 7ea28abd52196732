"""mIoU of the int8 CPU path against fp32 for the same weights, on the CamVid test split.

    .venv/bin/python benchmarks/int8_accuracy.py bisenet_ros/weights/bisenetv2_camvid.pt \\
        --camvid ../shared/datasets/camvid --json int8_accuracy.json

Both paths run through ``Segmenter`` on ONNX Runtime (the graphs the node would run); int8
is calibrated on training frames, never on the test frames it is scored on. mIoU is the
trainer's (Cityscapes definition, void ignored). Prints mIoU of each, their difference and
the share of pixels where they agree.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from bisenet_ros.inference import Segmenter
from bisenet_ros.training.evaluation import confusion_matrix, scores

VOID = 255  # what the trainer's evaluation skips; CamVid's void id (11) is mapped to it


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="CamVid-trained checkpoint or ONNX graph")
    parser.add_argument("--camvid", type=Path, default=Path("../shared/datasets/camvid"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--calibration", type=Path, help="default: <camvid>/train/images")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    common = dict(backend="onnxruntime", threads=args.threads, cache_dir=args.cache_dir)
    fp32 = Segmenter.from_file(args.model, precision="fp32", **common)
    int8 = Segmenter.from_file(
        args.model,
        precision="int8",
        calibration_images=args.calibration or args.camvid / "train" / "images",
        **common,
    )
    classes = fp32.manifest.num_classes
    if classes != 11:
        parser.error(f"{args.model} has {classes} classes; CamVid mIoU needs an 11-class model")
    matrices = {"fp32": np.zeros((classes, classes), np.int64)}
    matrices["int8"] = matrices["fp32"].copy()
    same = total = 0
    files = sorted((args.camvid / args.split / "images").glob("*.jpg"))
    for image_path in tqdm(files, unit="frame"):
        label_path = args.camvid / args.split / "labels" / (image_path.stem + ".png")
        label = cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)
        label[label >= classes] = VOID
        image = cv2.imread(str(image_path))
        a = fp32.segment(image, "bgr")[0].ids
        b = int8.segment(image, "bgr")[0].ids
        matrices["fp32"] += confusion_matrix(label, a, classes)
        matrices["int8"] += confusion_matrix(label, b, classes)
        same += int((a == b).sum())
        total += a.size
    report = {"model": str(args.model), "frames": len(files), "pixel_agreement": same / total}
    for name, matrix in matrices.items():
        result = scores(matrix, fp32.manifest.class_names)
        report[f"miou_{name}"] = result["miou"] * 100
        report[f"iou_{name}"] = result["iou"]
    report["miou_drop"] = report["miou_fp32"] - report["miou_int8"]
    print(
        f"{len(files)} {args.split} frames: mIoU fp32 {report['miou_fp32']:.2f}, "
        f"int8 {report['miou_int8']:.2f} (drop {report['miou_drop']:.2f}); "
        f"ids agree on {report['pixel_agreement']:.2%} of pixels"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
