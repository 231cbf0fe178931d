#!/usr/bin/env bash
# Starts a router and N expert workers (default 2, experts split evenly:
# expert e of every MoE layer on worker e mod N) on loopback with the
# bundled tiny model, waits until the router is healthy, prints a sample
# generation, then keeps serving until Ctrl-C, when it stops everything.
#
#   deploy/local/run.sh [--workers N] [--port P] [--model DIR] [--once] [--prompt TEXT]
#
# --once stops after the sample generation. Logs go to $LOG_DIR (default
# a temp folder). Needs the binaries in $BUILD_DIR (default build/).
set -euo pipefail
cd "$(dirname "$0")/../.."

workers=2 port=50051 model=tests/testdata/tiny_model once=0
prompt="The little robot walked into the garden and"
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --prompt) prompt="$2"; shift 2 ;;
    --once) once=1; shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
build="${BUILD_DIR:-build}"
log_dir="${LOG_DIR:-$(mktemp -d /tmp/jamba-local.XXXXXX)}"
for bin in expert_worker/jamba-expert-worker router/jamba-router client/jamba-client; do
  [ -x "$build/$bin" ] || { echo "run.sh: $build/$bin is missing: run scripts/setup.sh first" >&2; exit 1; }
done
num_experts=$(grep -o '"num_experts": *[0-9]*' "$model/config.json" | grep -o '[0-9]*$')
[ "$workers" -ge 1 ] && [ "$workers" -le "$num_experts" ] || {
  echo "run.sh: --workers must be between 1 and $num_experts" >&2; exit 2; }

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo "stopping ${#pids[@]} processes"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all INT TERM EXIT

# Waits for "... listening on HOST:PORT" in a log and prints HOST:PORT.
listening_address() {
  local log="$1" pid="$2"
  for _ in $(seq 1 600); do
    if grep -q "listening on" "$log" 2>/dev/null; then
      grep -m1 -o "listening on .*" "$log" | awk '{print $3}'
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "run.sh: process exited; see $log" >&2; cat "$log" >&2; return 1; }
    sleep 0.1
  done
  echo "run.sh: timed out waiting for $log" >&2
  return 1
}

targets=()
for ((w = 0; w < workers; w++)); do
  experts=$(seq -s, "$w" "$workers" $((num_experts - 1)))
  "$build/expert_worker/jamba-expert-worker" --model "$model" --port 0 --experts "$experts" \
    >"$log_dir/worker$w.log" 2>&1 &
  pids+=($!)
  address=$(listening_address "$log_dir/worker$w.log" $!)
  echo "expert worker $w: experts $experts of every MoE layer at $address"
  targets+=("$address")
done

"$build/router/jamba-router" --model "$model" --port "$port" \
  --experts "$(IFS=,; echo "${targets[*]}")" >"$log_dir/router.log" 2>&1 &
pids+=($!)
address=$(listening_address "$log_dir/router.log" $!)
for _ in $(seq 1 300); do
  "$build/client/jamba-client" health --target "$address" >/dev/null 2>&1 && break
  sleep 0.1
done
"$build/client/jamba-client" health --target "$address"
echo "router at $address; logs in $log_dir"
echo "prompt: $prompt"
"$build/client/jamba-client" generate "$prompt" --target "$address" --max_new_tokens 40 \
  --temperature 0.7 --top_p 0.9 --seed 7
if [ "$once" -eq 1 ]; then exit 0; fi
echo "serving; try: $build/client/jamba-client generate \"Hello\" --target $address"
echo "press Ctrl-C to stop"
wait "${pids[-1]}"
