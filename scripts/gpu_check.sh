#!/usr/bin/env bash
# GPU check: on a machine with an NVIDIA GPU, builds for that GPU's
# architecture, runs every test (the CUDA cases must run, not skip), then
# benchmarks a Jamba-v0.1-shaped model with random bf16 weights generated on
# the device. Writes logs and the results table to OUT_DIR.
#
#   bash scripts/gpu_check.sh OUT_DIR
#
# Budget: under 8 minutes on one H200 (build ~3 min on 16 cores, tests
# ~1-2 min, benchmark ~1 min). Exit status is non-zero if anything failed.
set -uo pipefail
if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${GPU_CHECK_BUILD_DIR:-$ROOT/build-gpu}
JOBS=$(nproc)
status=0
log() { echo "[gpu_check $(date +%T)] $*" | tee -a "$OUT/summary.txt"; }
: > "$OUT/summary.txt"

if ! command -v nvidia-smi > /dev/null; then
  log "FAIL: nvidia-smi not found: no NVIDIA GPU here"
  exit 1
fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d ' .')
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1)
if [[ -z "$CAP" ]]; then
  log "FAIL: nvidia-smi reports no compute capability"
  exit 1
fi
log "GPU: $GPU, compute capability $CAP; building with CMAKE_CUDA_ARCHITECTURES=$CAP"

start=$(date +%s)
if ! cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES="$CAP" > "$OUT/configure.log" 2>&1; then
  log "FAIL: configure (see configure.log)"
  exit 1
fi
if ! grep -q "jamba: CUDA backend ON" "$OUT/configure.log"; then
  log "FAIL: CMake did not enable CUDA (see configure.log)"
  exit 1
fi
if ! cmake --build "$BUILD" -j"$JOBS" > "$OUT/build.log" 2>&1; then
  log "FAIL: build (see build.log)"
  exit 1
fi
log "build: $(( $(date +%s) - start )) s"

# Every test; CUDA cases compare against the CPU reference.
start=$(date +%s)
if (cd "$BUILD" && timeout 300 ctest --output-on-failure -j"$JOBS" --timeout 240) \
    > "$OUT/ctest.log" 2>&1; then
  log "ctest: all passed ($(( $(date +%s) - start )) s)"
else
  log "FAIL: ctest (see ctest.log): $(grep -E 'tests passed|tests failed' "$OUT/ctest.log" | tail -n1)"
  status=1
fi
grep -E "^[0-9]+% tests passed|Skipped|Failed|\*\*\*" "$OUT/ctest.log" | head -n 50 >> "$OUT/summary.txt"

# The CUDA cases on their own, verbose: none may skip on a GPU machine.
for t in "tests/kernels/jamba_kernels_test --gtest_filter=*Cuda*" \
         "tests/model/jamba_cuda_model_test"; do
  name=$(basename "${t%% *}")
  (cd "$ROOT" && timeout 240 "$BUILD"/$t) > "$OUT/$name.cuda.log" 2>&1
  rc=$?
  skipped=$(grep -c "^\[  SKIPPED \]" "$OUT/$name.cuda.log" || true)
  passed=$(grep -E "^\[  PASSED  \]" "$OUT/$name.cuda.log" | head -n1)
  if [[ $rc -ne 0 || $skipped -ne 0 ]]; then
    log "FAIL: $name CUDA cases: exit $rc, $skipped skipped (see $name.cuda.log)"
    status=1
  else
    log "$name CUDA cases: $passed"
  fi
done
grep -h "^\[cuda parity\]\|\[ info \]" "$OUT"/*.cuda.log >> "$OUT/summary.txt" 2>/dev/null

# Benchmark: one 8-layer period of Jamba-v0.1, extrapolated to 32 layers.
start=$(date +%s)
if timeout 240 "$BUILD/bench/jamba-gpu-bench" --periods=1 --iters=5 \
    > "$OUT/gpu_bench.md" 2> "$OUT/gpu_bench.log"; then
  log "benchmark: $(( $(date +%s) - start )) s"
else
  log "FAIL: benchmark (see gpu_bench.log)"
  status=1
fi
cat "$OUT/gpu_bench.md" | tee -a "$OUT/summary.txt"
log "done, status $status; logs in $OUT"
exit $status
