#!/usr/bin/env bash
# Ablation I (Sec. IV-B1, Eq. 10) vs the full model on the embedded faces, 3 seeds, with and without the
# disentanglement loss (issue 22's "do the codes cluster as the paper says?"). Not run by the session that wrote it
# (a 2-core CPU shared by several helpers): about 12 full-model runs' worth of CPU; run it when the machine is free.
#
#   OUT=/tmp/disent_seeds SEEDS="0 1 2" bash scripts/disent_ablation_seeds.sh
#
# Writes under $OUT: <model>_<dis|nodis>_s<seed>/ (runs; the full model's are evaluated: metrics.json holds
# accuracy_target = expression-swap accuracy on unseen identities and disent/entropy_ratio/*), table3.md
# (protocol=disent_table3 over every checkpoint: Hopkins per expression cluster, mean ± std over seeds per
# column), entropy.md (each checkpoint's posterior-entropy ratios, Ablation I's included).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/work/main/.venv/bin/python}
OUT=${OUT:-/tmp/disent_ablation_seeds}
SEEDS=${SEEDS:-"0 1 2"}
DIS=${DIS:-"true false"}     # DIS=true: only the runs with the disentanglement loss (the issue's comparison)
TIME=(/usr/bin/time -f "%e s wall, %U s user, %S s sys")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT"
ckpts=()
for seed in $SEEDS; do
  for dis in $DIS; do
    tag=$([ "$dis" = true ] && echo dis || echo nodis)
    run="$OUT/ablation1_${tag}_s${seed}"
    [ -f "$run/checkpoints/last.ckpt" ] || "${TIME[@]}" -o "$run.time" nice -n 10 "$PY" train.py experiment=disent_ablation1_synth seed="$seed" \
      method.disentanglement_loss="$dis" logger=csv hydra.run.dir="$run"
    ckpts+=("$run/checkpoints/last.ckpt")
    full="$OUT/full_${tag}_s${seed}"
    exp=$([ "$dis" = true ] && echo disent_synth || echo disent_synth_no_dis)
    [ -f "$full/checkpoints/last.ckpt" ] || "${TIME[@]}" -o "$full.time" nice -n 10 "$PY" train.py experiment="$exp" seed="$seed" \
      evaluate_after=true logger=csv hydra.run.dir="$full"
    ckpts+=("$full/checkpoints/last.ckpt")
  done
done
list=$(IFS=,; echo "${ckpts[*]}")
nice -n 10 "$PY" evaluate.py protocol=disent_table3 "ckpt_paths=[$list]" out_dir="$OUT" wandb.mode=disabled
# entropy ratios of every checkpoint (evaluate.py cannot score Ablation I: it has no decoder to translate with)
nice -n 10 "$PY" - "$OUT" "${ckpts[@]}" <<'PYEOF'
import sys
from pathlib import Path

from metrics.disentanglement import disentanglement_report
from suite.evaluation import load_checkpoint_run

out, paths = Path(sys.argv[1]), sys.argv[2:]
keys = ["disent/entropy_ratio/expression/identity", "disent/entropy_ratio/illumination/expression",
        "disent/entropy_ratio/expression/illumination", "disent/entropy_ratio/other", "disent/hopkins/expression"]
lines = ["| checkpoint | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
for path in paths:
    module, dm, _ = load_checkpoint_run(path)
    dm.setup("test")
    m = disentanglement_report(module, dm.test_dataloader(), None, tsne_points=0)
    lines.append(f"| {path} | " + " | ".join(f"{m[k]:.3f}" if k in m else "—" for k in keys) + " |")
(out / "entropy.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
echo "wrote $OUT/disent_table3.md and $OUT/entropy.md; swap accuracy: $OUT/full_*/eval/metrics.json (accuracy_target)"
