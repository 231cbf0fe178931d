#!/usr/bin/env bash
# The whole test suite: set up, build, run every GoogleTest case via ctest,
# the op and model tests again with the AVX512_BF16 tier emulated, then
# every libFuzzer target for a short bounded time (JAMBA_FUZZ_SECONDS
# per target, default 30; 0 skips).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# A case that fails is run once more: the end-to-end tests start real
# processes on a shared 2-core machine, and a second failure is a real one.
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 600 --repeat until-pass:2)
# The AVX512_BF16 MatMul tier in software (no CI machine need have it): its
# op and model tests.
bash scripts/emulate_avx512bf16.sh ops
fuzz_seconds="${JAMBA_FUZZ_SECONDS:-30}"
if [ "$fuzz_seconds" -gt 0 ]; then
  bash scripts/fuzz.sh "$fuzz_seconds"
fi
