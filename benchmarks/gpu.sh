#!/usr/bin/env bash
# On a CUDA machine: pixtrans against the official code, side by side in one run, for the three
# methods, plus a 2-process torchrun step; everything lands in one JSON file.
#
#   benchmarks/gpu.sh [OUT_DIR]          (default: gpu_bench/; ~5-7 minutes on one H200)
#
# The official sources are read from ../shared/reference (pass REF=DIR to use others). pix2pix and
# CycleGAN are compared on the GPU with the junyanz code; the NVIDIA pix2pixHD copy there is
# patched to run on the CPU only, so pix2pixHD is timed on the GPU alone (ours) and against the
# official code on the CPU. Needs the data only for the torchrun step (the facades set).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu_bench}
REF=${REF:-../shared/reference}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
run() {  # name, then the pixtrans bench arguments
  local name=$1; shift
  echo "== $name"
  timeout 300 $PY -m pixtrans.cli bench "$@" --json "$OUT/$name.json" 2>&1 | tail -14
}
run pix2pix pix2pix/facades train.device=cuda --steps 30 --warmup 5 --against official --against-root "$REF"
run cyclegan cyclegan/summer2winter train.device=cuda --steps 20 --warmup 5 --against official --against-root "$REF"
run pix2pixhd_gpu pix2pixhd/label2city_512p train.device=cuda data.load_size=512 data.crop_size=256 \
  loss.vgg_weights=random --steps 20 --warmup 5
run pix2pixhd_cpu_vs_official pix2pixhd/label2city_512p train.device=cpu data.load_size=512 \
  data.crop_size=256 loss.vgg_weights=random --steps 2 --warmup 1 --floor-seconds 2 --against official \
  --against-root "$REF"
# 2 processes x batch 1 on the GPUs there are (nccl); a short real run on facades, timed by its log
if [ -d ../shared/datasets/facades ]; then
  echo "== torchrun 2 processes"
  NP=$($PY -c "import torch; print(max(1, min(2, torch.cuda.device_count())))")
  rm -rf "$OUT/ddp_run"
  start=$(date +%s.%N)
  timeout 240 torchrun --standalone --nproc_per_node="$NP" -m pixtrans.cli train pix2pix/facades \
    data.root=../shared/datasets/facades run_dir="$OUT/ddp_run" train.max_steps=200 train.log_every=50 \
    train.progress=false > "$OUT/ddp.log" 2>&1
  echo "{\"processes\": $NP, \"steps\": 200, \"wall_s\": $(echo "$(date +%s.%N) - $start" | bc)}" > "$OUT/ddp.json"
  tail -3 "$OUT/ddp.log"
fi
$PY - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
merged = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if p.name != "all.json"}
(out / "all.json").write_text(json.dumps(merged, indent=1))
for name, r in merged.items():
    vs = r.get("ours_vs_official")
    step = r.get("train_step", {}).get("step_time_median_s")
    print(f"{name:28s} step {step if step is None else round(step, 4)} s   ours/official {vs}")
PYEOF
