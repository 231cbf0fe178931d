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
#
# GPU_CHECK_PREBUILT=DIR skips the build and the CPU ctest run and takes the
# CUDA binaries from DIR/bin and their libraries from DIR/lib, as packed by
# scripts/gpu_bundle.sh on a machine with the build dependencies.
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
nvidia-smi >> "$OUT/summary.txt" 2>&1
CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d ' .')
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1)
if [[ -z "$CAP" ]]; then
  log "FAIL: nvidia-smi reports no compute capability"
  exit 1
fi
log "GPU: $GPU, compute capability $CAP"

PREBUILT=${GPU_CHECK_PREBUILT:-}
if [[ -n "$PREBUILT" ]]; then
  PREBUILT=$(cd "$PREBUILT" && pwd)
  cublas=$(find /usr/local/cuda*/ /usr/lib /opt -name 'libcublas.so.1*' 2>/dev/null | head -n1)
  export LD_LIBRARY_PATH="$PREBUILT/lib:${cublas:+$(dirname "$cublas"):}${LD_LIBRARY_PATH:-}"
  log "prebuilt binaries from $PREBUILT; cuBLAS from ${cublas:-the default library path}"
  KERNELS_TEST=$PREBUILT/bin/jamba_kernels_test
  CUDA_MODEL_TEST=$PREBUILT/bin/jamba_cuda_model_test
  MODEL_TEST=$PREBUILT/bin/jamba_model_test
  BENCH=$PREBUILT/bin/jamba-gpu-bench
else
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
  KERNELS_TEST=$BUILD/tests/kernels/jamba_kernels_test
  CUDA_MODEL_TEST=$BUILD/tests/model/jamba_cuda_model_test
  MODEL_TEST=$BUILD/tests/model/jamba_model_test
  BENCH=$BUILD/bench/jamba-gpu-bench
fi

# The CUDA cases on their own, verbose: none may skip on a GPU machine.
for t in "$KERNELS_TEST --gtest_filter=*Cuda*" "$CUDA_MODEL_TEST" \
         "$MODEL_TEST --gtest_filter=*Cuda*"; do
  name=$(basename "${t%% *}")
  (cd "$ROOT" && timeout 180 $t) > "$OUT/$name.cuda.log" 2>&1
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
grep -h "^\[cuda parity\]\|^\[reduced precision\]\|\[ info \]" "$OUT"/*.cuda.log \
  >> "$OUT/summary.txt" 2>/dev/null

# Out-of-bounds and uninitialised-read checks of the kernel cases, where
# compute-sanitizer is installed (kernels run 10-100x slower under it).
SANITIZER=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -n1)
if [[ -n "$SANITIZER" ]]; then
  if (cd "$ROOT" && timeout 150 "$SANITIZER" --tool memcheck --report-api-errors no \
      --error-exitcode 3 \
      "$KERNELS_TEST" --gtest_filter='*Cuda*') > "$OUT/memcheck.log" 2>&1; then
    log "compute-sanitizer memcheck: kernel cases clean"
  else
    log "FAIL: compute-sanitizer memcheck (see memcheck.log): $(grep -m1 -E 'ERROR SUMMARY|Invalid' "$OUT/memcheck.log")"
    status=1
  fi
else
  log "compute-sanitizer not found: memcheck skipped"
fi

# Benchmark: one 8-layer period of Jamba-v0.1, extrapolated to 32 layers;
# bf16 experts with an f32 KV cache, then int8 experts with a bf16 one.
for variant in "bf16 f32 1,8,16,32 --profile" "int8 bf16 1,8,16,32,64"; do
  read -r experts kv batches extra <<< "$variant"
  name=gpu_bench_${experts}_kv${kv}
  start=$(date +%s)
  if timeout 200 "$BENCH" --periods=1 --iters=5 --expert_dtype="$experts" --kv_dtype="$kv" \
      --batches="$batches" ${extra:-} > "$OUT/$name.md" 2>> "$OUT/summary.txt"; then
    log "benchmark $name: $(( $(date +%s) - start )) s"
  else
    log "FAIL: benchmark $name (stderr above)"
    status=1
  fi
  cat "$OUT/$name.md" | tee -a "$OUT/summary.txt"
done
log "done, status $status; logs in $OUT"
exit $status
