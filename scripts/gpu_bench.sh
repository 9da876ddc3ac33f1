#!/usr/bin/env bash
# GPU benchmark for issue 9 (run through the device tool): every method at its paper resolution and batch in
# fp32, bf16, bf16+channels_last and bf16+channels_last+compile. Results: $OUT/<setting>.json (suite.bench rows).
# Needs hydra-core, omegaconf and antlr4 wheels in .whl/ when the machine lacks them.
set -u
export WANDB_MODE=disabled PYTHONUNBUFFERED=1
OUT=${OUT:-bench_results/gpu}
mkdir -p "$OUT"
if ! python3 -c "import hydra" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
python3 -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'lightning', pl.__version__)"
ITERS=${ITERS:-10}
WORKERS=${WORKERS:-6}
bench() {  # bench <name> <seconds> <bench args…>
  local name=$1 limit=$2; shift 2
  echo "=== $name (limit ${limit}s)"
  timeout "$limit" python3 -m suite.bench --paper --keep-going --iters "$ITERS" --warmup 3 --out "/tmp/bench_$name" \
    --override "data.num_workers=$WORKERS" "$@"
  cp "/tmp/bench_$name/train.json" "$OUT/$name.json" 2>/dev/null
}
bench fp32 ${T_FP32:-110} --precision 32-true
bench bf16 ${T_BF16:-110} --precision bf16-mixed
bench bf16_cl ${T_CL:-90} --precision bf16-mixed --channels-last --skip-floor
bench bf16_cl_compile ${T_COMPILE:-200} --precision bf16-mixed --channels-last --compile --skip-floor
