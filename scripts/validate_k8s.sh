#!/usr/bin/env bash
# Offline checks of deploy/: renders the Kustomize base and every overlay
# with `kubectl kustomize`, validates every object against the Kubernetes
# schema (kubernetes-validate, strict, for each version in K8S_VERSIONS),
# runs the policy check (deploy/k8s/policy_check.py) and its tests, lints
# the YAML (yamllint) and the Dockerfiles (hadolint).
#
#   scripts/validate_k8s.sh
#
# The Python tools are pinned in deploy/k8s/requirements.txt and installed
# once into $JAMBA_K8S_VENV (default .venv-k8s); after that no network is
# needed. Exit codes: 0 all checks pass, 1 a check failed, 77 skipped
# because kubectl (with Kustomize v5) or the tools cannot be had (ctest
# reports the test as skipped, with the reason on stderr).
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSIONS="${K8S_VERSIONS:-1.30.0 1.34.0}"
venv="${JAMBA_K8S_VENV:-$PWD/.venv-k8s}"
requirements=deploy/k8s/requirements.txt

skip() {
  echo "validate_k8s: SKIPPED: $*" >&2
  exit 77
}

# kubectl: present, or installed from an apt source that has it (the
# project's machines have one); Debian's own kubernetes-client is too old.
if ! command -v kubectl >/dev/null 2>&1; then
  candidate=$(apt-cache policy kubectl 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ "$(id -u)" -eq 0 ] && [ -n "$candidate" ] && [ "$candidate" != "(none)" ]; then
    echo "validate_k8s: installing kubectl $candidate"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends kubectl >&2 ||
      skip "kubectl is not installed and apt-get install kubectl failed"
  else
    skip "kubectl is not installed and no apt source offers it (install kubectl >= 1.27)"
  fi
fi
kustomize_version=$(kubectl version --client 2>/dev/null | awk '/Kustomize Version/ {print $3}')
case "$kustomize_version" in
  v5.*) ;;
  *) skip "kubectl's Kustomize is '${kustomize_version:-unknown}'; v5 is needed" ;;
esac

# The pinned tools, installed once into $venv/env; a stamp records which
# requirements, a lock keeps concurrent runs from installing twice.
stamp="$venv/requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  mkdir -p "$venv"
  exec 9>"$venv/lock"
  flock 9
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "validate_k8s: installing $requirements into $venv/env"
    rm -rf "$venv/env" "$stamp"
    python3 -m venv "$venv/env" >&2 ||
      skip "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    "$venv/env/bin/pip" install -q --disable-pip-version-check -r "$requirements" >&2 ||
      skip "pip could not install $requirements (no PyPI access?)"
    echo "$want" >"$stamp"
  fi
  exec 9>&-
fi
bin="$venv/env/bin"

work=$(mktemp -d /tmp/validate-k8s.XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=0
check() {
  local what="$1"
  shift
  if "$@"; then
    echo "validate_k8s: ok: $what"
  else
    echo "validate_k8s: FAILED: $what" >&2
    failed=1
  fi
}

for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
  dir="${dir%/}"
  name=$(basename "$dir")
  rendered="$work/$name.yaml"
  if ! kubectl kustomize "$dir" >"$rendered"; then
    echo "validate_k8s: FAILED: kubectl kustomize $dir" >&2
    failed=1
    continue
  fi
  echo "validate_k8s: ok: kubectl kustomize $dir ($(grep -c '^kind:' "$rendered") objects)"
  for version in $K8S_VERSIONS; do
    check "$name: schema of Kubernetes $version" \
      "$bin/kubernetes-validate" --quiet --strict -k "$version" "$rendered"
  done
  case "$name" in
    gpu*) policy_flags=(--expect-gpu --expect-hpa) ;;
    base) policy_flags=(--expect-hpa) ;;
    *) policy_flags=() ;;
  esac
  check "$name: policy" "$bin/python" deploy/k8s/policy_check.py "$rendered" \
    "${policy_flags[@]}"
done

if [ -f "$work/cpu-tiny.yaml" ] && [ -f "$work/gpu.yaml" ]; then
  check "policy check tests" "$bin/python" deploy/k8s/policy_check_test.py \
    "$work/cpu-tiny.yaml" "$work/gpu.yaml"
fi
check "yamllint deploy/k8s" "$bin/yamllint" --strict -c deploy/k8s/.yamllint.yaml deploy/k8s
check "hadolint deploy/docker" "$bin/hadolint" deploy/docker/Dockerfile.cpu \
  deploy/docker/Dockerfile.cuda

if [ "$failed" -ne 0 ]; then
  echo "validate_k8s: some checks failed" >&2
  exit 1
fi
echo "validate_k8s: all checks passed"
