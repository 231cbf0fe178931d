#!/usr/bin/env bash
# The standard serving comparison: in-process experts vs 2 remote expert
# workers on loopback, at 1, 4, 16 and 32 concurrent streams, on a random
# checkpoint of the Jamba-tiny-dev shape (hidden 512, 16 layers, 8 experts
# top-2, vocab 65536; made locally by tools/make_random_checkpoint.py).
# Writes bench/results/load_comparison.{md,png,jsonl}.
#
#   bench/load/compare.sh [--prompt_tokens 64] [--output_tokens 32] [--backend cpu]
#
# Needs the binaries in $BUILD_DIR (default build/). Takes a few minutes.
# CHECKPOINT=DIR uses an existing checkpoint; WORK_DIR=DIR keeps the raw
# results and metrics there; NO_REPORT=1 skips the Python report (run
# bench/load/report.py on WORK_DIR later, e.g. on a machine without PyPI).
# WORKER_ENV sets variables for the expert workers alone (e.g.
# JAMBA_NUM_THREADS=1). REMOTE_ROUTER_FLAGS go to the router of the remote
# runs; the default, --overlap_experts=false, is the setting for workers
# that share the router's cores, as here (load_comparison.md has both).
set -euo pipefail
cd "$(dirname "$0")/../.."

prompt_tokens=64 output_tokens=32 backend=cpu
while [ $# -gt 0 ]; do
  case "$1" in
    --prompt_tokens) prompt_tokens="$2"; shift 2 ;;
    --output_tokens) output_tokens="$2"; shift 2 ;;
    --backend) backend="$2"; shift 2 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
build="${BUILD_DIR:-build}"
checkpoint="${CHECKPOINT:-/tmp/jamba-tiny-dev-bf16}"
out=bench/results
work="${WORK_DIR:-$(mktemp -d /tmp/jamba-compare.XXXXXX)}"
mkdir -p "$work"
venv=.venv-bench

if [ "${NO_REPORT:-0}" != 1 ] && [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r bench/requirements.txt
fi
if [ ! -f "$checkpoint/model.safetensors" ]; then
  "$venv/bin/python" tools/make_random_checkpoint.py --preset tiny-dev --dtype bfloat16 --out "$checkpoint"
fi
# The two workers split the experts of every MoE layer: even ones and odd ones.
num_experts=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["num_experts"])' "$checkpoint/config.json")

pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap stop_all EXIT

scrape() {  # GET http://$1/metrics into $2
  curl -s "http://$1/metrics" >"$2" 2>/dev/null ||
    python3 -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())" \
      "http://$1/metrics" >"$2"
}

address_of() {  # waits for "listening on HOST:PORT" in $1
  for _ in $(seq 1 1200); do
    grep -q "listening on" "$1" 2>/dev/null && { grep -m1 -o "listening on [^ ]*" "$1" | awk '{print $3}'; return; }
    sleep 0.1
  done
  echo "compare.sh: no address in $1" >&2; cat "$1" >&2; exit 1
}

results="$work/results.jsonl"
: >"$results"
for mode in inproc remote; do
  experts_flag=()
  if [ "$mode" = remote ]; then
    targets=()
    for w in 0 1; do
      # shellcheck disable=SC2086
      env ${WORKER_ENV:-} "$build/expert_worker/jamba-expert-worker" --model "$checkpoint" --port 0 --backend "$backend" \
        --experts "$(seq -s, $w 2 $((num_experts - 1)))" >"$work/worker$w.log" 2>&1 &
      pids+=($!)
      targets+=("$(address_of "$work/worker$w.log")")
    done
    # shellcheck disable=SC2206
    experts_flag=(--experts "${targets[0]},${targets[1]}" ${REMOTE_ROUTER_FLAGS---overlap_experts=false})
  fi
  "$build/router/jamba-router" --model "$checkpoint" --port 0 --metrics_port 0 --backend "$backend" \
    --max_running 32 --max_step_tokens 512 "${experts_flag[@]}" >"$work/router_$mode.log" 2>&1 &
  pids+=($!)
  router=$(address_of "$work/router_$mode.log")
  metrics=$(grep -m1 -o "metrics on [0-9][^ ]*" "$work/router_$mode.log" | awk '{print $3}' || true)
  for _ in $(seq 1 600); do "$build/client/jamba-client" health --target "$router" >/dev/null 2>&1 && break; sleep 0.1; done
  for streams in 1 4 16 32; do
    requests=$((streams * 2 > 8 ? streams * 2 : 8))
    [ -n "$metrics" ] && scrape "$metrics" "$work/metrics_${mode}_${streams}_before.txt"
    loadavg=$(cut -d' ' -f1 /proc/loadavg)  # the machine may be shared: note how busy it was
    echo "== $mode experts, $streams streams, $requests requests (load average $loadavg)"
    line=$("$build/bench/jamba-load" --target "$router" --concurrency "$streams" --requests "$requests" \
      --prompt_tokens "$prompt_tokens" --output_tokens "$output_tokens" --json | tee /dev/stderr | tail -1 || true)
    [ -n "$metrics" ] && scrape "$metrics" "$work/metrics_${mode}_${streams}_after.txt"
    echo "{\"mode\":\"$mode\",\"streams\":$streams,\"loadavg\":$loadavg,\"load\":$line}" >>"$results"
  done
  stop_all
done

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "$cpu" >"$work/cpu.txt"
if [ "${NO_REPORT:-0}" = 1 ]; then
  echo "results in $work (no report)"
  exit 0
fi
cp "$results" "$out/load_comparison.jsonl"
"$venv/bin/python" bench/load/report.py "$results" "$work" "$out/load_comparison" \
  --command "bench/load/compare.sh --prompt_tokens $prompt_tokens --output_tokens $output_tokens --backend $backend" \
  --cpu "$cpu"
echo "wrote $out/load_comparison.md and $out/load_comparison.png (logs in $work)"
