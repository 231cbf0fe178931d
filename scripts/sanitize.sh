#!/usr/bin/env bash
# Sanitizer runs (issue 7, item 4):
#   asan: an ASan+UBSan build (JAMBA_SANITIZE=ON) in build-asan/ running every
#         unit and end-to-end test with ctest;
#   tsan: a ThreadSanitizer build (JAMBA_TSAN=ON) in build-tsan/ running the
#         batching engine/scheduler tests and the expert RPC dispatcher tests
#         (remote experts, expert service and worker process, rpc codecs).
# Any sanitizer report fails the run (halt_on_error). Suppressions, each a
# documented third-party false positive, are in scripts/sanitizers/.
# TSan needs an instrumented absl::Mutex: tsan mode first builds the
# distribution's Abseil source with -fsanitize=thread (build_absl_tsan; once,
# cached in build-tsan/absl-tsan/, about 6 min on 2 cores; needs network for
# the first download) and runs the tests with it on LD_LIBRARY_PATH. gRPC
# stays uninstrumented: its own handoffs are annotated in our reactors
# (rpc/grpc_tsan.h) or suppressed. Results: bench/results/sanitizers.md.
#
# Not run by CI: it is two more full builds (one of every target), which on
# CI's 2 cores would multiply the build time; run it before merging changes
# to threading, parsers or the RPC paths.
#
# Usage: scripts/sanitize.sh [asan|tsan|all] [CTEST_ARGS...]   (default all)
#   CTEST_ARGS narrow the asan tests, e.g. `-E E2E` or `-R Tokenizer`;
#   the soak test (label soak) is left out: its RSS budget is for the
#   Release build CI runs, and ASan's 256 MiB quarantine fills by design
#   during its first windows (+66% worker RSS, then flat);
#   JOBS=N builds and tests with N jobs (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-all}"
shift || true
ctest_args=("$@")
jobs="${JOBS:-$(nproc)}"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
supp="$PWD/scripts/sanitizers"

run_asan() {
  local start=$SECONDS
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DJAMBA_ENABLE_CUDA=OFF \
    -DJAMBA_SANITIZE=ON "${launcher[@]}" >/dev/null
  cmake --build build-asan -j"$jobs"
  echo "sanitize: asan build took $((SECONDS - start))s"
  start=$SECONDS
  (cd build-asan &&
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1" \
    LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
    ctest --output-on-failure -j"$jobs" --timeout 1800 -LE soak "${ctest_args[@]}")
  echo "sanitize: asan tests took $((SECONDS - start))s"
}

tsan_tests=(jamba_engine_test jamba_rpc_test jamba_expert_worker_test)
absl_tsan="$PWD/build-tsan/absl-tsan"

# Builds the distribution's own Abseil source (the installed libabsl-dev's
# version, Debian's patches applied: same options.h, inline namespace and
# SONAMEs) as shared libraries with -fsanitize=thread into $absl_tsan/lib.
# gRPC's locks are absl::Mutex, so with these first on LD_LIBRARY_PATH both
# our code and gRPC lock through an instrumented Mutex that TSan sees. The
# source comes through a private deb-src list with its own lists and cache
# directories; the system's apt configuration and package lists are not
# touched. Cached: rebuilt only when the version, compiler or flags change.
build_absl_tsan() {
  local pkg version flags stamp
  pkg="$(dpkg-query -W -f='${source:Package}' libabsl-dev)"
  version="$(dpkg-query -W -f='${source:Version}' libabsl-dev)"
  # As debian/rules: C++17, shared, build type None (dpkg's -O2 -g, no NDEBUG).
  flags="-O2 -g -fno-omit-frame-pointer -fsanitize=thread"
  stamp="$pkg $version $(c++ -dumpfullversion) $flags"
  if [[ -f "$absl_tsan/stamp" && "$(cat "$absl_tsan/stamp")" == "$stamp" ]]; then
    return
  fi
  local start=$SECONDS
  rm -rf "$absl_tsan"
  mkdir -p "$absl_tsan"/apt/{lists/partial,cache/archives/partial} "$absl_tsan/download"
  printf '%s\n' "Types: deb-src" "URIs: http://deb.debian.org/debian" \
    "Suites: bookworm bookworm-updates" "Components: main" \
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" "" \
    "Types: deb-src" "URIs: http://deb.debian.org/debian-security" \
    "Suites: bookworm-security" "Components: main" \
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" >"$absl_tsan/apt/deb-src.sources"
  local apt_opts=(-o "Dir::State::Lists=$absl_tsan/apt/lists"
    -o "Dir::Etc::SourceList=$absl_tsan/apt/deb-src.sources" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::Cache=$absl_tsan/apt/cache" -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" -qq update
  (cd "$absl_tsan/download" &&
    apt-get "${apt_opts[@]}" -qq source --download-only "$pkg=$version" &&
    dpkg-source -x ./*.dsc "$absl_tsan/src" >/dev/null)
  cmake -S "$absl_tsan/src" -B "$absl_tsan/build" -G Ninja "${launcher[@]}" \
    -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=ON \
    -DBUILD_TESTING=OFF -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread \
    -DCMAKE_INSTALL_PREFIX="$absl_tsan" -DCMAKE_INSTALL_LIBDIR=lib >/dev/null
  cmake --build "$absl_tsan/build" -j"$jobs"
  cmake --install "$absl_tsan/build" >/dev/null
  echo "$stamp" >"$absl_tsan/stamp"
  echo "sanitize: instrumented abseil $version took $((SECONDS - start))s"
}

run_tsan() {
  build_absl_tsan
  local start=$SECONDS
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Release -DJAMBA_ENABLE_CUDA=OFF \
    -DJAMBA_TSAN=ON "${launcher[@]}" >/dev/null
  cmake --build build-tsan -j"$jobs" --target "${tsan_tests[@]}" jamba-expert-worker
  echo "sanitize: tsan build took $((SECONDS - start))s"
  start=$SECONDS
  # Every Abseil library must come from $absl_tsan (gRPC's too: one copy
  # per process), else TSan misses those Mutexes again.
  export LD_LIBRARY_PATH="$absl_tsan/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  local test binary
  for test in "${tsan_tests[@]}"; do
    binary="$(find build-tsan -name "$test" -type f -executable | head -1)"
    if ldd "$binary" | grep 'libabsl_' | grep -qv "$absl_tsan/lib/"; then
      echo "sanitize: $test loads an uninstrumented Abseil:" >&2
      ldd "$binary" | grep 'libabsl_' | grep -v "$absl_tsan/lib/" >&2
      exit 1
    fi
  done
  # Run from the repository root, the tests' working directory under ctest.
  for test in "${tsan_tests[@]}"; do
    echo "sanitize: tsan $test"
    TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp" \
      "$(find build-tsan -name "$test" -type f -executable | head -1)" --gtest_brief=1
  done
  echo "sanitize: tsan tests took $((SECONDS - start))s"
}

case "$mode" in
  asan) run_asan ;;
  tsan) run_tsan ;;
  all) run_asan; run_tsan ;;
  *) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;;
esac
echo "sanitize: $mode passed"
