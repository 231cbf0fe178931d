#!/usr/bin/env bash
# Builds the CUDA test and benchmark binaries on this machine (no GPU needed)
# and packs them with the non-CUDA shared libraries they load into DIR, for
# a GPU machine that lacks the Debian build dependencies:
#
#   bash scripts/gpu_bundle.sh DIR [CUDA_ARCH]      # here (default arch 90)
#   GPU_CHECK_PREBUILT=DIR bash scripts/gpu_check.sh OUT_DIR   # there
#
# The GPU machine supplies the CUDA runtime and cuBLAS (same major version as
# this machine's toolkit) and the driver.
set -euo pipefail
if [[ $# -lt 1 ]]; then
  echo "usage: $0 DIR [CUDA_ARCH]" >&2
  exit 2
fi
DIR=$(mkdir -p "$1" && cd "$1" && pwd)
ARCH=${2:-90}
cd "$(dirname "$0")/.."
BUILD=${GPU_BUNDLE_BUILD_DIR:-build-cuda}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DJAMBA_ENABLE_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$ARCH" > /dev/null
targets=(jamba_kernels_test jamba_cuda_model_test jamba_model_test jamba-gpu-bench)
cmake --build "$BUILD" -j"$(nproc)" --target "${targets[@]}"
rm -rf "$DIR/bin" "$DIR/lib"
mkdir -p "$DIR/bin" "$DIR/lib"
cp "$BUILD/tests/kernels/jamba_kernels_test" "$BUILD/tests/model/jamba_cuda_model_test" \
  "$BUILD/tests/model/jamba_model_test" "$BUILD/bench/jamba-gpu-bench" "$DIR/bin/"
# Every shared library they load except the C runtime and CUDA's own.
for b in "$DIR"/bin/*; do
  ldd "$b" | awk '/=> \// {print $3}'
done | sort -u | grep -v -E '/(libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+)\.so|/usr/local/cuda' |
  xargs -r cp -L -t "$DIR/lib/"
echo "gpu_bundle: $(ls "$DIR/bin" | wc -l) binaries, $(ls "$DIR/lib" | wc -l) libraries," \
  "$(du -sh "$DIR" | cut -f1) in $DIR (sm_$ARCH)"
