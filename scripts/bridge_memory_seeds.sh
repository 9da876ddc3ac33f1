#!/usr/bin/env bash
# Issue 23's comparison: bridge_synth with the authors' per-image code memory (method.random_code=memory, the
# default) against fresh N(0, I) codes (method.random_code=fresh), 3 seeds each, one run at a time (about 7 min per
# run on 2 free cores; 6 runs), through scripts/seed_table.sh: <OUT>/tables/comparison_by_label.md holds label
# accuracy, reference adoption and every other metric as mean ± std per variant, <OUT>/<variant>-s<seed>.time each
# training's wall time, and each run's metrics.csv its L_sty curve — the table of docs/fidelity/bridge.md §6.
#     scripts/bridge_memory_seeds.sh                # OUT=runs/bridge_memory_seeds, seeds 0 1 2
#     SEEDS="0 1 2 3" OUT=/tmp/x scripts/bridge_memory_seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/seed_table.sh "${OUT:-runs/bridge_memory_seeds}" bridge_synth - \
  "memory=method.random_code=memory" "fresh=method.random_code=fresh"
