#!/usr/bin/env bash
# Issue 23's comparison: bridge_synth with the authors' per-image code memory (method.random_code=memory, the
# default) against fresh N(0, I) codes (method.random_code=fresh), 3 seeds each, one run at a time (about 10 min
# per run on 2 free cores; 6 runs). Writes <OUT>/summary.md: label accuracy, reference adoption and the last
# logged L_sty per run, then mean ± std per variant — the table for docs/fidelity/bridge.md §6.
#     scripts/bridge_memory_seeds.sh                # OUT=runs/bridge_memory_seeds, seeds 0 1 2
#     SEEDS="0 1 2 3" OUT=/tmp/x scripts/bridge_memory_seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} WANDB_MODE=disabled
OUT=${OUT:-runs/bridge_memory_seeds}
SEEDS=${SEEDS:-0 1 2}
mkdir -p "$OUT"
for variant in memory fresh; do
  for seed in $SEEDS; do
    dir="$OUT/$variant/seed$seed"
    if [[ -f "$dir/eval/metrics.json" ]]; then echo "done already: $dir"; continue; fi
    start=$(date +%s)
    mkdir -p "$dir"
    /usr/bin/time -f "%e s wall, %U s user, %S s sys" -o "$dir/time.txt" nice -n 10 "$PY" train.py experiment=bridge_synth evaluate_after=true logger=csv seed="$seed" \
      method.random_code="$variant" trainer.enable_progress_bar=false "hydra.run.dir=$dir"
    echo "$(( $(date +%s) - start ))" > "$dir/wall_seconds.txt"
  done
done
"$PY" - "$OUT" <<'PYEOF'
import csv, json, statistics, sys
from pathlib import Path

out = Path(sys.argv[1])
lines = ["| variant | seed | label accuracy | reference adoption | last L_sty | wall s |", "|---|---|---|---|---|---|"]
summary = {}
for run in sorted(out.glob("*/seed*")):
    m = json.loads((run / "eval" / "metrics.json").read_text())
    sty = None
    for path in run.rglob("metrics.csv"):
        for row in csv.DictReader(path.open()):
            if row.get("loss/G/sty"):
                sty = float(row["loss/G/sty"])
    wall = (run / "wall_seconds.txt").read_text().strip() if (run / "wall_seconds.txt").exists() else "?"
    la, ra = m["label/accuracy"], m["reference/accuracy"]
    summary.setdefault(run.parent.name, []).append((la, ra))
    lines.append(f"| {run.parent.name} | {run.name[4:]} | {la:.3f} | {ra:.3f} | {sty if sty is None else f'{sty:.4f}'} | {wall} |")
lines += ["", "| variant | label accuracy (mean ± std) | reference adoption (mean ± std) | n |", "|---|---|---|---|"]
for variant, vals in summary.items():
    la, ra = [v[0] for v in vals], [v[1] for v in vals]
    sd = lambda x: statistics.stdev(x) if len(x) > 1 else float("nan")
    lines.append(f"| {variant} | {statistics.mean(la):.3f} ± {sd(la):.3f} | {statistics.mean(ra):.3f} ± {sd(ra):.3f} | {len(vals)} |")
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
