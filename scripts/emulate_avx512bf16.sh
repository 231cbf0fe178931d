#!/usr/bin/env bash
# Runs the whole test suite with the fast CPU backend's AVX512_BF16 MatMul
# tier emulated in software (tests/kernels/avx512bf16_emulation.h), on a CPU
# that lacks it: build-emu/ is configured with -DJAMBA_EMULATE_AVX512BF16=ON,
# so every process (tests, router, workers) detects that tier on any AVX2
# CPU and runs its bf16 MatMuls through it. It checks the tier's logic
# (tiles, K-tail masks, the hi/lo split of x, routing) where no such CPU is
# at hand; it says nothing of its speed. Results: bench/results/sanitizers.md.
#
# Usage: scripts/emulate_avx512bf16.sh [ops|all] [CTEST_ARGS...]   (default all)
#   ops: only the op and model test binaries (about 2.5 min to build on 2
#        cores; scripts/test.sh, so CI, runs this);
#   all: every test but the soak via ctest (another full build);
#        CTEST_ARGS narrow it, e.g. -R 'Backends|Fixtures'.
#   JOBS=N builds and tests with N jobs (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-all}"
shift || true
jobs="${JOBS:-$(nproc)}"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
start=$SECONDS
cmake -S . -B build-emu -G Ninja -DCMAKE_BUILD_TYPE=Release -DJAMBA_ENABLE_CUDA=OFF \
  -DJAMBA_EMULATE_AVX512BF16=ON "${launcher[@]}" >/dev/null
case "$mode" in
  ops)
    cmake --build build-emu -j"$jobs" --target jamba_kernels_test jamba_model_test
    echo "emulate_avx512bf16: build took $((SECONDS - start))s"
    build-emu/tests/kernels/jamba_kernels_test --gtest_brief=1
    build-emu/tests/model/jamba_model_test --gtest_brief=1
    ;;
  all)
    cmake --build build-emu -j"$jobs"
    echo "emulate_avx512bf16: build took $((SECONDS - start))s"
    start=$SECONDS
    (cd build-emu && ctest --output-on-failure -j"$jobs" --timeout 1800 -LE soak "$@")
    echo "emulate_avx512bf16: tests took $((SECONDS - start))s"
    ;;
  *)
    echo "usage: $0 [ops|all] [CTEST_ARGS...]" >&2
    exit 2
    ;;
esac
