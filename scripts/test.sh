#!/usr/bin/env bash
# The whole test suite: set up, build, run every GoogleTest case via ctest,
# then every libFuzzer target for a short bounded time (JAMBA_FUZZ_SECONDS
# per target, default 30; 0 skips).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 600)
fuzz_seconds="${JAMBA_FUZZ_SECONDS:-30}"
if [ "$fuzz_seconds" -gt 0 ]; then
  bash scripts/fuzz.sh "$fuzz_seconds"
fi
