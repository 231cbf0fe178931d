#!/usr/bin/env bash
# The whole test suite: set up, build, run every GoogleTest case via ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 600
