#!/usr/bin/env bash
# Installs the Debian packages the build needs, then configures and builds
# into build/. Idempotent; run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake ninja-build g++ pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev nlohmann-json3-dev libsentencepiece-dev libgtest-dev libgmock-dev
  libbenchmark-dev prometheus-cpp-dev libssl-dev openssl
  iproute2  # ip netns for the multi-host test (tests/e2e/netns_e2e_test.cc)
  clang libclang-rt-14-dev)  # clang + libFuzzer/sanitizer runtimes: scripts/fuzz.sh
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${JAMBA_CMAKE_FLAGS:-}
cmake --build build -j"$(nproc)"
