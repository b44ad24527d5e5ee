#!/usr/bin/env bash
# GPU benchmark of the SENet family against timm's legacy_* models, on a CUDA machine whose python3
# already has torch and timm. Writes results/bench/<model>.cuda.json (or into $OUT when set).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-results/bench}"
mkdir -p "$out"
export PYTHONPATH=src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
for m in seresnet50 seresnext50_32x4d senet154; do
  python3 -m sotazoo.cli bench "$m" --vs --device cuda --batch 64 --reps 30 --json > "$out/$m.cuda.json"
  python3 - "$out/$m.cuda.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['model']:<20} {r['device']}: ours {r['ours']['latency_ms']:.2f} ms, ref {r['reference']['latency_ms']:.2f} ms, "
      f"ratio {r['latency_ratio']:.3f}; throughput b=64 ours {r['ours']['throughput']:.0f} vs {r['reference']['throughput']:.0f} img/s")
PY
done
