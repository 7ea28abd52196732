"""JPEG decoding of valid camera frames: the node's strict decoder against ``cv2.imdecode``.

    .venv/bin/python benchmarks/jpeg_decode.py --camvid ../shared/datasets/camvid \\
        --json benchmarks/results/jpeg_decode.json

Every CamVid test frame (and the same frames at 1024x2048) is encoded at quality 90, then
decoded by ``compressed_to_array`` (simplejpeg, strict: corrupt data is an error) and by
``cv2.imdecode`` (OpenCV: corrupt data gives a partly grey image). Median ms per frame of
five passes; the frames are decoded in the same order by both.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage

from bisenet_ros.image_decoding import compressed_to_array


def median_ms(decode, messages: list, passes: int) -> float:
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        for msg in messages:
            decode(msg)
        times.append((time.perf_counter() - start) / len(messages) * 1e3)
    return float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camvid", type=Path, default=Path("../shared/datasets/camvid"))
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    paths = sorted((args.camvid / "test" / "images").glob("*"))
    if not paths:
        parser.error(f"no frames in {args.camvid / 'test' / 'images'}")
    cv2.setNumThreads(1)
    results = {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}", "sizes": {}}
    for label, size in (("360x480", None), ("1024x2048", (2048, 1024))):
        messages = []
        for path in paths:
            image = cv2.imread(str(path))
            if size is not None:
                image = cv2.resize(image, size)
            jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
            messages.append(CompressedImage(format="jpeg", data=jpeg.tobytes()))
        strict = median_ms(compressed_to_array, messages, args.passes)
        opencv = median_ms(
            lambda m: cv2.imdecode(np.frombuffer(m.data, np.uint8), cv2.IMREAD_UNCHANGED),
            messages,
            args.passes,
        )
        results["sizes"][label] = {
            "frames": len(messages),
            "strict_simplejpeg_ms": round(strict, 3),
            "cv2_imdecode_ms": round(opencv, 3),
            "strict_over_cv2": round(strict / opencv, 3),
        }
        print(
            f"{label}: strict {strict:.3f} ms, cv2.imdecode {opencv:.3f} ms per frame "
            f"({strict / opencv:.2f}x), {len(messages)} frames"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
