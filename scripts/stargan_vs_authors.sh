#!/usr/bin/env bash
# Issue #25 item 5: this suite's StarGAN against the authors' (yunjey/stargan), side by side in one run on the same
# machine: 64², batch 16, published widths (ngf/ndf 64, 6 residual blocks, 6 D layers, n_critic 5, λgp 10), 8 RaFD
# expressions. Both time iterations 6–15 (10 iterations: 10 D steps and 2 G steps each), alternating
# authors → suite fp32 → suite bf16-mixed, ROUNDS times.
#
#   scripts/stargan_vs_authors.sh AUTHORS_DIR [ROUNDS] [OUT_DIR]
#
# AUTHORS_DIR holds a scratch copy of the authors' model.py, solver.py, data_loader.py and main.py (read from
# yunjey/stargan; never committed here) whose main.py trains on AUTHORS_DIR/data/RaFD/train (ImageFolder, 256 px
# images cropped and resized to 64 as their loader does), takes their --image_size --batch_size --num_iters plus
# --first/--last (the timed iterations), and prints "AUTHORS s/iter (iterations 6-15): <s>" from per-iteration
# time stamps. docs/scaling.md says what that copy changes (timing only).
set -euo pipefail
AUTHORS=${1:?usage: scripts/stargan_vs_authors.sh AUTHORS_DIR [ROUNDS] [OUT_DIR]}
ROUNDS=${2:-2}
OUT=${3:-bench_results/stargan_vs_authors}
PY=${PYTHON:-python}
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
: > "$OUT/log.txt"
for r in $(seq 1 "$ROUNDS"); do
  a=$(cd "$AUTHORS" && "$PY" main.py --image_size 64 --batch_size 16 --num_iters 15 --first 6 --last 15 \
        | sed -n 's/^AUTHORS s\/iter (iterations 6-15): \([0-9.]*\).*/\1/p')
  echo "round $r authors $a" | tee -a "$OUT/log.txt"
  for p in 32-true bf16-mixed; do
    (cd "$REPO" && "$PY" -m suite.bench --paper --methods stargan --override data.image_size=64 data.batch_size=16 \
        --iters 10 --warmup 5 --skip-floor --threads 2 --precision "$p" --out "$OUT/suite_${p}_$r" > "$OUT/suite_${p}_$r.log" 2>&1)
    s=$("$PY" -c "import json,sys; print(round(json.load(open(sys.argv[1]))['rows'][0]['lightning_s_per_iter'], 4))" "$OUT/suite_${p}_$r/train.json")
    echo "round $r suite $p $s ratio $("$PY" -c "print(round($a / $s, 2))")" | tee -a "$OUT/log.txt"
  done
done
