#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang with ASan+UBSan) in build-fuzz/
# and runs each for a bounded time over a copy of its committed corpus
# (fuzz/corpus/<target>/). Fails on the first crash, leak, sanitizer report
# or timeout; the input is left in build-fuzz/artifacts/<target>/. Keep such
# an input as fuzz/corpus/<target>/crash-<what> once fixed: the replay
# tests (ctest jamba_<target>_replay_test) then check it in every build.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(safetensors_fuzzer checkpoint_fuzzer sp_model_fuzzer hf_tokenizer_fuzzer
           tokenizer_text_fuzzer expert_request_fuzzer)
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
  -DJAMBA_ENABLE_CUDA=OFF -DJAMBA_BUILD_TESTS=OFF -DJAMBA_FUZZ=ON "${launcher[@]}" >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/jamba_}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export JAMBA_SOURCE_DIR="$PWD"
status=0
for target in "${targets[@]}"; do
  work="build-fuzz/corpus/$target"
  artifacts="build-fuzz/artifacts/$target/"
  mkdir -p "$work" "$artifacts"
  echo "fuzz: $target for ${seconds}s"
  start=$(date +%s)
  if ! "build-fuzz/fuzz/jamba_$target" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2560 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts" \
      "$work" "fuzz/corpus/$target" >"build-fuzz/$target.log" 2>&1; then
    echo "fuzz: $target FAILED after $(( $(date +%s) - start ))s; tail of build-fuzz/$target.log:"
    tail -40 "build-fuzz/$target.log"
    status=1
    continue
  fi
  echo "fuzz: $target ok: $(grep -E '^stat::number_of_executed_runs' "build-fuzz/$target.log" |
    awk '{print $2}') runs in $(( $(date +%s) - start ))s, $(ls "$work" | wc -l) corpus files"
done
exit $status
