#!/usr/bin/env bash
# SAT's CPU recipe over three seeds (issue #24's must-show: accuracy_target ≥ 0.7 and mask_iou ≥ 0.5, train +
# evaluate ≤ 10 min each on 2 cores): experiment=sat_synth with seed=0,1,2, each evaluated after training, then
# the mean ± std (sample std, n−1) of accuracy_target and mask_iou and each run's wall time. One run at a time.
#     scripts/sat_seeds.sh [out_dir] [extra overrides…]      (default out_dir: runs/sat_seeds)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} WANDB_MODE=disabled
OUT=${1:-runs/sat_seeds}
shift || true
mkdir -p "$OUT"
for seed in 0 1 2; do
  start=$(date +%s)
  nice -n 10 "$PY" train.py experiment=sat_synth evaluate_after=true logger=csv seed="$seed" \
    "hydra.run.dir=$OUT/seed$seed" "$@" > "$OUT/seed$seed.log" 2>&1
  echo "seed $seed: $(( $(date +%s) - start )) s (train + evaluate)" | tee -a "$OUT/times.txt"
done
"$PY" - "$OUT" <<'PYEOF'
import json, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
runs = [json.loads((out / f"seed{s}" / "eval" / "metrics.json").read_text()) for s in (0, 1, 2)]
lines = []
for key in ("accuracy_target", "mask_iou", "psnr_gt", "background_l1"):
    values = [r[key] for r in runs]
    lines.append(f"{key}: {statistics.mean(values):.3f} ± {statistics.stdev(values):.3f} (seeds 0, 1, 2: "
                 + ", ".join(f"{v:.3f}" for v in values) + ")")
text = "\n".join(lines)
print(text)
(out / "summary.txt").write_text(text + "\n")
PYEOF
