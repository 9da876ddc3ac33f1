#!/usr/bin/env bash
# The GPU benchmark in one unattended run that stops itself before 8 minutes (issue #25, item 4): every method at
# its paper resolution and batch in eager fp32 (TF32 off), TF32 and bf16; the 128² methods (StarGAN, SPM, disent,
# bridge) at batch 64 and 128 in bf16; StarGAN and SPM with torch.compile and with compile + CUDA graphs
# (reduce-overhead). Each setting is one `python -m suite.bench` run under its own time cap, never past the global
# deadline (BUDGET seconds from the start, default 450); a setting cut short keeps the methods it finished (the
# bench writes its JSON after each method) and a setting with no time left is skipped and named. At the end
# suite.bench_merge writes $OUT/gpu_bench.json and $OUT/gpu_bench.md: a row per setting × method with images/s,
# MFU (FLOP per iteration from one eager iteration; the device's bf16 dense peak) and peak GPU memory.
#     scripts/gpu_bench.sh                          # OUT=bench_results/gpu
#     BUDGET=120 METHODS="stargan spm" scripts/gpu_bench.sh
# On a CPU it runs too (MFU then needs --peak-tflops; DRY=1 uses the synth scale and one iteration: a smoke test).
set -u
cd "$(dirname "$0")/.."
export WANDB_MODE=disabled PYTHONUNBUFFERED=1
PY=${PY:-python3}
OUT=${OUT:-bench_results/gpu}
BUDGET=${BUDGET:-450}
DEADLINE=$(( $(date +%s) + BUDGET ))
MIN_LEFT=${MIN_LEFT:-25}          # a setting needs at least this many seconds to be worth starting
ITERS=${ITERS:-5} WARMUP=${WARMUP:-2} WORKERS=${WORKERS:-6}
ALL=${METHODS:-aggan cyclegan spm stargan sat disent bridge}
BIG=${BIG_METHODS:-stargan spm disent bridge}
COMPILED=${COMPILED_METHODS:-stargan spm}
SCALE=(--paper) EXTRA=()
if [ "${DRY:-0}" = 1 ]; then SCALE=() ITERS=1 WARMUP=1 EXTRA=(--flops --peak-tflops 1); fi
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.md
if ! "$PY" -c "import hydra" 2>/dev/null; then   # a bare GPU machine: wheels carried in .whl/
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
"$PY" -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'lightning', pl.__version__)"

SETTINGS=() SKIPPED=()
run() {  # run <setting> <cap seconds> <methods> <bench args…>
  local name=$1 cap=$2 methods=$3; shift 3
  SETTINGS+=("$name")
  local left=$(( DEADLINE - $(date +%s) ))
  if [ "$left" -lt "$MIN_LEFT" ]; then echo "=== $name skipped (${left}s left)"; SKIPPED+=("$name"); return; fi
  [ "$cap" -gt "$left" ] && cap=$left
  echo "=== $name (${cap}s): $methods"
  # SIGTERM at the cap: the bench keeps the methods it finished; SIGKILL 5 s later if it does not stop
  # shellcheck disable=SC2086  # the method list is separate words on purpose
  timeout --kill-after=5 "$cap" "$PY" -m suite.bench "${SCALE[@]}" "${EXTRA[@]}" --keep-going --skip-floor \
    --iters "$ITERS" --warmup "$WARMUP" --methods $methods --out "/tmp/gpu_bench_$name" \
    --override "data.num_workers=$WORKERS" "$@"
  cp "/tmp/gpu_bench_$name/train.json" "$OUT/$name.json" 2>/dev/null
}
run fp32      ${T_FP32:-70}  "$ALL"      --precision 32-true --matmul-precision highest
run tf32      ${T_TF32:-60}  "$ALL"      --precision 32-true --matmul-precision high
run bf16      ${T_BF16:-60}  "$ALL"      --precision bf16-mixed
run bf16_b64  ${T_B64:-50}   "$BIG"      --precision bf16-mixed --batch-size 64
run bf16_b128 ${T_B128:-50}  "$BIG"      --precision bf16-mixed --batch-size 128
run compile   ${T_COMPILE:-70} "$COMPILED" --precision bf16-mixed --compile steps
run graphs    ${T_GRAPHS:-70}  "$COMPILED" --precision bf16-mixed --compile steps --compile-mode reduce-overhead
"$PY" -m suite.bench_merge "$OUT" --settings "${SETTINGS[@]}" --skipped "${SKIPPED[@]}" --out "$OUT/gpu_bench"
echo "wrote $OUT/gpu_bench.json and $OUT/gpu_bench.md in $(( $(date +%s) - DEADLINE + BUDGET )) s"
