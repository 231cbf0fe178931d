#!/usr/bin/env bash
# The expert round trip at one stream: 2 expert workers on loopback (the
# even and the odd experts of every MoE layer), a router, and jamba-load at concurrency 1. Prints
# the p50 round trip and worker time per MoE layer call from the router's
# histograms, and the load average before and after.
#
#   bench/load/round_trip.sh [--requests 4] [--prompt_tokens 64] [--output_tokens 32] [--backend cpu]
#
# Needs the binaries in $BUILD_DIR (default build/) and CHECKPOINT=DIR (a
# checkpoint made by tools/make_random_checkpoint.py). Extra flags for the
# workers go in WORKER_FLAGS, for the router in ROUTER_FLAGS; WORKER_ENV
# sets variables for the workers alone (e.g. JAMBA_NUM_THREADS=1).
set -euo pipefail
cd "$(dirname "$0")/../.."

requests=4 prompt_tokens=64 output_tokens=32 backend=cpu
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) requests="$2"; shift 2 ;;
    --prompt_tokens) prompt_tokens="$2"; shift 2 ;;
    --output_tokens) output_tokens="$2"; shift 2 ;;
    --backend) backend="$2"; shift 2 ;;
    *) echo "round_trip.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
build="${BUILD_DIR:-build}"
checkpoint="${CHECKPOINT:?CHECKPOINT=DIR is required}"
# The two workers split the experts of every MoE layer: even ones and odd ones.
num_experts=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["num_experts"])' "$checkpoint/config.json")
work=$(mktemp -d /tmp/jamba-round-trip.XXXXXX)

pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT

address_of() {  # waits for "$2 on HOST:PORT" (a line of stdout, not of a log) in $1
  for _ in $(seq 1 1200); do
    grep -q "$2 on [0-9]" "$1" 2>/dev/null && { grep -m1 -o "$2 on [0-9][^ ]*" "$1" | awk '{print $3}'; return; }
    sleep 0.1
  done
  echo "round_trip.sh: no address in $1" >&2; cat "$1" >&2; exit 1
}

targets=()
for w in 0 1; do
  # shellcheck disable=SC2086
  env ${WORKER_ENV:-} "$build/expert_worker/jamba-expert-worker" --model "$checkpoint" --port 0 --backend "$backend" \
    --experts "$(seq -s, $w 2 $((num_experts - 1)))" ${WORKER_FLAGS:-} >"$work/worker$w.log" 2>&1 &
  pids+=($!)
  targets+=("$(address_of "$work/worker$w.log" listening)")
done
# shellcheck disable=SC2086
"$build/router/jamba-router" --model "$checkpoint" --port 0 --metrics_port 0 --backend "$backend" \
  --experts "${targets[0]},${targets[1]}" ${ROUTER_FLAGS:-} >"$work/router.log" 2>&1 &
pids+=($!)
router=$(address_of "$work/router.log" listening)
metrics=$(address_of "$work/router.log" metrics)
for _ in $(seq 1 600); do "$build/client/jamba-client" health --target "$router" >/dev/null 2>&1 && break; sleep 0.1; done

echo "load average before: $(cat /proc/loadavg)"
curl -sS "http://$metrics/metrics" >"$work/before.txt"
"$build/bench/jamba-load" --target "$router" --concurrency 1 --requests "$requests" \
  --prompt_tokens "$prompt_tokens" --output_tokens "$output_tokens"
curl -s "http://$metrics/metrics" >"$work/after.txt"
echo "load average after: $(cat /proc/loadavg)"
python3 bench/load/histograms.py "$work/before.txt" "$work/after.txt"
echo "(scrapes and logs in $work)"
