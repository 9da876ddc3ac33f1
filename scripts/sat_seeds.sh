#!/usr/bin/env bash
# SAT's CPU recipe over seeds (issue #24's must-show: accuracy_target ≥ 0.7 and mask_iou ≥ 0.5, train + evaluate
# ≤ 10 min each on 2 cores): experiment=sat_synth for seeds $SEEDS (default 0 1 2) through scripts/seed_table.sh,
# which prints each run's training seconds and the mean ± std of every metric. One run at a time; run it alone.
#     scripts/sat_seeds.sh [out_dir] [extra overrides…]      (default out_dir: runs/sat_seeds)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/sat_seeds}
shift || true
exec scripts/seed_table.sh "$OUT" sat_synth - "sat_synth=$*"
