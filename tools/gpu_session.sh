#!/usr/bin/env bash
# One lent GPU machine, one call: PyTorch CUDA inference benchmark, training throughput,
# then a training run of the bundled model sized to fit the time left.
#
# Prepared here (CamVid train+val and the RUGD weights are not in the repository and the
# shared folder does not travel, so they are copied into the ignored .gpu_data/ and carried):
#   tools/gpu_session.sh --prepare
# Run there (repository root, PyTorch CUDA installed; results in $OUT), within TOTAL_S seconds:
#   TOTAL_S=570 tools/gpu_session.sh             # benchmarks, then training from RUGD
#   TOTAL_S=570 tools/gpu_session.sh --continue  # all the time training, from the bundled model
# --continue is for every later session: the benchmarks are measured already
# (docs/training.md), and each session's training adds to the last one's instead of starting
# over. Its result replaces the bundled model only if it beats it on CamVid test.
# Every figure and weight file lands in $OUT as soon as it exists: a run cut off at the
# call's limit still returns the last checkpoint's weights (last_weights.pt).
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=.gpu_data
if [ "${1:-}" = --prepare ]; then
  SHARED=${SHARED:-../shared}
  mkdir -p "$DATA/camvid"
  grep -qx '/.gpu_data/' .git/info/exclude 2>/dev/null || echo /.gpu_data/ >> .git/info/exclude
  cp -r "$SHARED/datasets/camvid/train" "$SHARED/datasets/camvid/val" "$DATA/camvid/"
  cp "$SHARED/reference/rugd_bisenetv2/bisenetv2_rugd25_coincheung_fp16.pth" "$DATA/rugd.pth"
  du -sh "$DATA"
  exit 0
fi

OUT=${OUT:-gpu_out}
TOTAL_S=${TOTAL_S:-570}   # the whole script; training gets what the benchmarks leave
CONFIG=config/camvid_bisenetv2_gpu.yaml
DATA_ARGS=("data.root=$DATA/camvid" "model.init=$DATA/rugd.pth")
RATE=245   # images/s of the last full run on the H200 (docs/training.md)
if [ "${1:-}" = --continue ]; then
  # the bundled classifier kept; the auxiliary heads it lacks start small (load_checkpoint)
  DATA_ARGS=("data.root=$DATA/camvid" "model.init=bisenet_ros/weights/bisenetv2_camvid.pt"
             "model.reinit_head=false")
fi
RUN=/tmp/gpu_run
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
py=python3

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
$py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$OUT/gpu.txt"

if [ "${1:-}" != --continue ]; then
  echo "== inference: PyTorch CUDA fp32/fp16, eager and CUDA graphs"
  timeout 150 $py -m bisenet_ros.cli bench bisenet_ros/weights/bisenetv2_camvid.pt \
    --frames "$DATA/camvid/val/images" --backends torch --precisions fp32 fp16 --cuda-graphs \
    --sizes 512x1024 1024x2048 --batches 1 8 --iterations 50 --warmup 5 \
    --json "$OUT/gpu_bench.json" 2>&1 | grep -v Warning

  echo "== training throughput"
  timeout 240 $py benchmarks/train_throughput.py --config $CONFIG --workers 2 8 14 \
    --steps 30 --warmup 10 --loader-batches 30 --json "$OUT/train_throughput.json" \
    "${DATA_ARGS[@]}"
fi
rate=$($py -c "import json; print(json.load(open('$OUT/train_throughput.json'))['combined_img_s'])" 2>/dev/null || echo $RATE)
left=$((TOTAL_S - SECONDS - 20))   # 20 s kept for saving the weights below
# start-up and checkpoint saves take about 40 s; 8 % margin on the measured rate
iters=$($py -c "print(max(500, int(($left - 40) * $rate / 16 * 0.92)))")
echo "== training: $iters iterations at the measured $rate img/s, $left s left"
# a run cut off by timeout's SIGTERM finishes its step and saves last.pt there (exit 130)
timeout $left $py -m bisenet_ros.cli train --config $CONFIG "${DATA_ARGS[@]}" \
  "train.out_dir=$RUN" "train.max_iter=$iters" 2>&1 | tee "$OUT/train.log" | grep -v Warning

# The newest weights, whatever happened: final.pt, else the last checkpoint's model.
if [ -f $RUN/final.pt ]; then
  cp $RUN/final.pt "$OUT/final.pt"
elif [ -f $RUN/last.pt ]; then
  $py - "$RUN/last.pt" "$OUT/last_weights.pt" <<'PY'
import sys
from bisenet_ros.manifest import Manifest
from bisenet_ros.models import build_model, save_checkpoint
from bisenet_ros.models.checkpoint import NUMPY_ARRAY_GLOBALS, safe_torch_load
from bisenet_ros.training.trainer import without_aux_heads
state = safe_torch_load(sys.argv[1], allow=NUMPY_ARRAY_GLOBALS)
manifest = Manifest.from_dict(state["manifest"])
model = build_model(manifest.arch, manifest.num_classes, aux_heads=True, variant=manifest.variant)
model.load_state_dict(state["model"])
save_checkpoint(sys.argv[2], without_aux_heads(model, manifest), manifest, half=True,
                extra={"iteration": state["iteration"]})
print("wrote", sys.argv[2], "at iteration", state["iteration"])
PY
fi
ls -la "$OUT"
