#!/usr/bin/env bash
# Copies the service binaries out of a build tree and lists the distribution
# packages that hold the shared libraries they load, for a runtime image.
#
#   stage-binaries.sh BUILD_DIR OUT_DIR [EXCLUDE_REGEX]
#
# Writes OUT_DIR/bin/{jamba-router,jamba-mixer-worker,jamba-expert-worker,jamba-client} and
# OUT_DIR/runtime-packages.txt (one package a line, sorted). Packages whose
# name matches EXCLUDE_REGEX are left out (the CUDA runtime base image
# already holds the CUDA libraries). Fails if a library belongs to no package.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: stage-binaries.sh BUILD_DIR OUT_DIR [EXCLUDE_REGEX]" >&2
  exit 2
fi
build="$1" out="$2" exclude="${3:-^$}"

mkdir -p "$out/bin"
for bin in router/jamba-router mixer_worker/jamba-mixer-worker expert_worker/jamba-expert-worker \
  client/jamba-client; do
  [ -x "$build/$bin" ] || { echo "stage-binaries: $build/$bin was not built" >&2; exit 1; }
  install -m 0755 "$build/$bin" "$out/bin/"
done

libs=$(ldd "$out"/bin/* | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u)
packages=()
for lib in $libs; do
  owner=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")" 2>/dev/null) || {
    echo "stage-binaries: no package holds $lib" >&2
    exit 1
  }
  while IFS= read -r package; do packages+=("$package"); done < <(
    echo "$owner" | sed 's/: .*//' | tr ',' '\n' | sed 's/^ *//; s/:.*//')
done
printf '%s\n' "${packages[@]}" | sort -u | { grep -Ev "$exclude" || true; } >"$out/runtime-packages.txt"
echo "stage-binaries: $(wc -l <"$out/runtime-packages.txt") runtime packages:" \
  "$(tr '\n' ' ' <"$out/runtime-packages.txt")"
