#!/usr/bin/env bash
# A paper's ablation table on the embedded data, several seeds per row, one table of mean ± std.
#
#   scripts/seed_table.sh <out_dir> <recipe> <protocol|-> "<row name>=<overrides>" ...
#
# Each row is trained with seeds $SEEDS (default "0 1 2"), one run at a time (run it on an otherwise idle
# machine if you also want the wall times), then every checkpoint is evaluated once:
#   <out_dir>/tables/comparison_by_label.md  a row per configuration: every metric as mean ± std over the seeds
#   <out_dir>/tables/comparison.md           a row per checkpoint
#   <out_dir>/<protocol>.md                  the paper's layout beside the published figures (unless "-")
# <out_dir>/<row>-s<seed>.time holds each training's wall and CPU seconds (/usr/bin/time).
# A finished run (its checkpoint exists) is not trained again, so an interrupted table resumes where it stopped.
# $COMMON: overrides added to every run (e.g. tiny nets for a test); $EVAL: overrides added to both evaluations.
# Example (AGGAN Table II on the embedded faces):
#   scripts/seed_table.sh runs/aggan_table2 aggan_synth aggan_table2 "full=" \
#     "noAD=method.attention_discriminator=false" \
#     "noAD_AG=method.attention_discriminator=false method.attention_generator=false" \
#     "noAD_PL=method.attention_discriminator=false method.pixel_loss=false" \
#     "noAD_AL=method.attention_discriminator=false method.tv_loss=false" \
#     "noAD_PL_AL=method.attention_discriminator=false method.pixel_loss=false method.tv_loss=false"
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export WANDB_MODE=${WANDB_MODE:-disabled}
[ $# -ge 4 ] || { echo "usage: $0 <out_dir> <recipe> <protocol|-> \"<row>=<overrides>\" ..." >&2; exit 2; }
OUT=$1 RECIPE=$2 PROTOCOL=$3
shift 3
SEEDS=${SEEDS:-0 1 2}
mkdir -p "$OUT"
CKPTS=()
for spec in "$@"; do
  row=${spec%%=*} overrides=${spec#*=}
  for seed in $SEEDS; do
    run="$OUT/$row-s$seed"
    if [ ! -f "$run/checkpoints/last.ckpt" ]; then
      start=$(date +%s)
      # shellcheck disable=SC2086  # the overrides are separate words on purpose
      /usr/bin/time -f "%e s wall, %U s user, %S s sys" -o "$run.time" \
        "$PY" train.py experiment="$RECIPE" seed="$seed" $overrides ${COMMON:-} logger=csv trainer.enable_progress_bar=false \
        hydra.run.dir="$run" > "$run.log" 2>&1 || { echo "$row seed $seed failed: see $run.log" >&2; exit 1; }
      echo "$row seed=$seed trained in $(( $(date +%s) - start )) s ($(cat "$run.time"))"
    fi
    CKPTS+=("$run/checkpoints/last.ckpt")
  done
done
LIST=$(IFS=,; echo "${CKPTS[*]}")
"$PY" evaluate.py "ckpt_paths=[$LIST]" out_dir="$OUT/eval" table_dir="$OUT/tables" wandb=null ${EVAL:-} \
  > "$OUT/evaluate.log" 2>&1
if [ "$PROTOCOL" != "-" ]; then
  "$PY" evaluate.py protocol="$PROTOCOL" "ckpt_paths=[$LIST]" out_dir="$OUT" wandb=null ${EVAL:-} > "$OUT/protocol.log" 2>&1
fi
cat "$OUT/tables/comparison_by_label.md"
