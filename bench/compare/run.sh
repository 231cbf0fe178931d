#!/usr/bin/env bash
# Side-by-side CPU benchmark of this engine and Hugging Face transformers on
# the same random checkpoints (Jamba-tiny-dev shape and a smaller one, fp32
# and bf16) at the same thread count, with decode and prefill rooflines from
# a STREAM-like bandwidth probe and the best measured GEMM. Writes
# $OUT_DIR/cpu_results.jsonl and $OUT_DIR/cpu.png and prints a table.
#
#   THREADS=2 PREFILL=256 DECODE=64 bench/compare/run.sh
#
# Environment: THREADS (default nproc), PREFILL, DECODE, REPS (prefill
# repetitions, best kept), GEMM_PROBE (the N of the N x N x N GEMM timed
# around every prefill, 1024; 0: off), PRESETS ("small
# tiny-dev"), DTYPES ("float32 bfloat16"), BUILD (build-fast), CKPT_DIR
# (/tmp/jamba-bench-ckpt, never inside the repo), VENV (/tmp/fixvenv, else
# created from bench/compare/requirements.txt), OUT_DIR (bench/results).
set -euo pipefail
cd "$(dirname "$0")/../.."

THREADS=${THREADS:-$(nproc)}
PREFILL=${PREFILL:-256}
DECODE=${DECODE:-64}
REPS=${REPS:-2}
PRESETS=${PRESETS:-"small tiny-dev"}
DTYPES=${DTYPES:-"float32 bfloat16"}
BUILD=${BUILD:-build-fast}
CKPT_DIR=${CKPT_DIR:-/tmp/jamba-bench-ckpt}
OUT_DIR=${OUT_DIR:-bench/results}
VENV=${VENV:-/tmp/fixvenv}

if [ ! -x "$VENV/bin/python" ]; then
  VENV=/tmp/jamba-bench-venv
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r bench/compare/requirements.txt
fi
"$VENV/bin/python" -c "import matplotlib" 2>/dev/null ||
  "$VENV/bin/pip" install -q "$(grep '^matplotlib==' bench/compare/requirements.txt)"
PY="$VENV/bin/python"

[ -f "$BUILD/build.ninja" ] || cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DJAMBA_ENABLE_CUDA=OFF
cmake --build "$BUILD" --target jamba-engine-bench jamba-gemm-bench
mkdir -p "$CKPT_DIR" "$OUT_DIR"
g++ -O3 -march=native -ffast-math -pthread bench/compare/stream.cc -o "$CKPT_DIR/stream"

results="$OUT_DIR/cpu_results.jsonl"
: > "$results"
echo "== machine: $(nproc) CPUs, THREADS=$THREADS, load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$CKPT_DIR/stream" "$THREADS" | sed 's/^{/{"kind": "stream", /' | tee -a "$results"
JAMBA_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS "$BUILD/bench/compare/jamba-gemm-bench" \
  --shapes 1024x1024x1024,2048x2048x2048,256x2048x512,1x4096x1024 --reps 5 |
  sed 's/^{/{"kind": "gemm", /' | tee -a "$results"

for preset in $PRESETS; do
  for dtype in $DTYPES; do
    ckpt="$CKPT_DIR/${preset}_${dtype}"
    [ -f "$ckpt/config.json" ] ||
      "$PY" tools/make_random_checkpoint.py --preset "$preset" --dtype "$dtype" --out "$ckpt"
    tag="{\"kind\": \"run\", \"preset\": \"$preset\", \"dtype\": \"$dtype\", \"ckpt\": \"$ckpt\", "
    JAMBA_NUM_THREADS=$THREADS "$BUILD/bench/compare/jamba-engine-bench" --model "$ckpt" \
      --prefill "$PREFILL" --decode "$DECODE" --reps "$REPS" --gemm_probe "${GEMM_PROBE:-1024}" |
      sed "s|^{|$tag|" | tee -a "$results"
    "$PY" bench/compare/hf_bench.py --model "$ckpt" --dtype "$dtype" --threads "$THREADS" \
      --prefill "$PREFILL" --decode "$DECODE" --reps "$REPS" 2>/dev/null | sed "s|^{|$tag|" | tee -a "$results"
  done
done
# The probes again: the VM's speed drifts over minutes, and the report takes
# the best of each (a roofline must not be beaten because it was measured in
# a slow minute).
"$CKPT_DIR/stream" "$THREADS" | sed 's/^{/{"kind": "stream", /' | tee -a "$results"
JAMBA_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS "$BUILD/bench/compare/jamba-gemm-bench" \
  --shapes 1024x1024x1024,2048x2048x2048 --reps 5 | sed 's/^{/{"kind": "gemm", /' | tee -a "$results"
"$PY" bench/compare/report.py --results "$results" --plot "$OUT_DIR/cpu.png"
