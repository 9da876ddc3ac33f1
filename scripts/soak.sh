#!/usr/bin/env bash
# Soak test (make soak; minutes to tens of minutes on a CPU): a long run with several resumes, then a multirun of
# three jobs; every checkpoint must load and every metrics file be complete. See docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} WANDB_MODE=disabled
OUT=${SOAK_DIR:-runs/soak}
rm -rf "$OUT"
TINY=(logger=csv trainer=cpu scale=synth trainer.enable_progress_bar=false method.generator.ngf=8 method.generator.n_blocks=1
      method.discriminator.ndf=8 data.image_size=32 data.batch_size=4 data.train_size=64 data.val_size=8
      data.test_size=16 method.sample_every=100 checkpoint_every=25)
STEPS=(100 200 300 400)

check() {  # check <ckpt> <iteration>
  "$PY" - "$1" "$2" <<'PYEOF'
import sys
from suite.checkpoints import read_checkpoint
ck = read_checkpoint(sys.argv[1])
assert ck["suite"]["iteration"] == int(sys.argv[2]), (sys.argv[1], ck["suite"]["iteration"], sys.argv[2])
print(f"ok {sys.argv[1]} iteration {ck['suite']['iteration']}")
PYEOF
}

prev=""
for i in "${!STEPS[@]}"; do
  dir="$OUT/long/part$i"
  resume=(); [[ -n "$prev" ]] && resume=("ckpt_path=$prev")
  "$PY" train.py "${TINY[@]}" "trainer.max_steps=${STEPS[$i]}" "hydra.run.dir=$dir" "${resume[@]}"
  prev="$dir/checkpoints/last.ckpt"
  check "$prev" "${STEPS[$i]}"
done

# an interruption in the middle of the last leg: SIGTERM must leave a loadable, later checkpoint and exit 0
dir="$OUT/long/sigterm"
"$PY" train.py "${TINY[@]}" trainer.max_steps=100000 "hydra.run.dir=$dir" "ckpt_path=$prev" & pid=$!
for _ in $(seq 600); do [[ -f "$dir/checkpoints/last.ckpt" ]] && break; sleep 0.5; done
sleep 5; kill -TERM "$pid"; wait "$pid"
"$PY" -c "from suite.checkpoints import read_checkpoint as r; it=r('$dir/checkpoints/last.ckpt')['suite']['iteration']; assert it > ${STEPS[-1]}, it; print('ok sigterm at', it)"

# a multirun of three jobs (one per method); each job's checkpoint and CSV metrics must be complete
"$PY" train.py -m "${TINY[@]}" method=aggan,cyclegan,stargan trainer.max_steps=60 "hydra.sweep.dir=$OUT/multi"
n=0
for ck in "$OUT"/multi/*/checkpoints/last.ckpt; do check "$ck" 60; n=$((n + 1)); done
[[ $n -ge 3 ]] || { echo "expected 3 multirun checkpoints, found $n"; exit 1; }

"$PY" - "$OUT" <<'PYEOF'
import csv, sys
from pathlib import Path
files = sorted(Path(sys.argv[1]).rglob("metrics.csv"))
assert files, "no metrics files written"
for f in files:
    rows = list(csv.DictReader(f.open()))
    assert rows and all(len(r) == len(rows[0]) for r in rows), f"incomplete {f}"
    print(f"ok {f} ({len(rows)} rows)")
PYEOF
echo "soak passed"
