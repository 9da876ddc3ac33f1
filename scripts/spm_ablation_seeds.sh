#!/usr/bin/env bash
# SPM's Table 1 ablation on the embedded faces (issue #21 "Must show"): Full, No M (method.motion=false) and No R
# (method.refinement=false) of experiment=spm_synth, 3 seeds each, evaluated with the shared evaluation classifier;
# prints mean ± std of psnr_gt and accuracy_target per row (paste into docs/fidelity/spm.md, E9).
# 9 runs of ~4–7 min each on a 2-core CPU: about an hour. Run it alone (timings are not the point; figures are).
#     bash scripts/spm_ablation_seeds.sh [out_dir] [seeds...]      default: runs/spm_ablation, seeds 0 1 2
set -euo pipefail
OUT=${1:-runs/spm_ablation}
shift || true
SEEDS=${*:-0 1 2}
PY=${PYTHON:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
declare -A ROWS=([full]="" [no_m]="method.motion=false" [no_r]="method.refinement=false")
for row in full no_m no_r; do
  for seed in $SEEDS; do
    dir="$OUT/$row/seed$seed"
    if [ ! -f "$dir/eval/metrics.json" ]; then
      $PY train.py experiment=spm_synth seed="$seed" ${ROWS[$row]} hydra.run.dir="$dir" evaluate_after=true
    fi
  done
done
$PY - "$OUT" <<'PYEOF'
import json, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
print("| row | n | psnr_gt | accuracy_target |\n|---|---|---|---|")
for row in ("full", "no_m", "no_r"):
    runs = [json.loads(p.read_text()) for p in sorted(out.glob(f"{row}/seed*/eval/metrics.json"))]
    cells = []
    for key in ("psnr_gt", "accuracy_target"):
        vals = [r[key] for r in runs if key in r]
        sd = statistics.stdev(vals) if len(vals) > 1 else float("nan")
        cells.append(f"{statistics.mean(vals):.3f} ± {sd:.3f}" if vals else "—")
    print(f"| {row} | {len(runs)} | {cells[0]} | {cells[1]} |")
PYEOF
