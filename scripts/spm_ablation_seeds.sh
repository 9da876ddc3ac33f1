#!/usr/bin/env bash
# SPM's Table 1 ablation on the embedded faces (issue #21 "Must show"): Full, No M (method.motion=false) and No R
# (method.refinement=false) of experiment=spm_synth, seeds $SEEDS (default 0 1 2), through scripts/seed_table.sh:
# mean ± std of every metric (psnr_gt, accuracy_target …) per row for docs/fidelity/spm.md, E9. About an hour on 2
# cores; run it alone.        bash scripts/spm_ablation_seeds.sh [out_dir]      (default runs/spm_ablation)
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/seed_table.sh "${1:-runs/spm_ablation}" spm_synth - "full=" "no_m=method.motion=false" \
  "no_r=method.refinement=false"
