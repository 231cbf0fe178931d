#!/usr/bin/env bash
# Soak: a local cluster (router + 2 expert workers on loopback) under a
# steady closed-loop load with a share of streams cancelled after their
# first token, for a set time. The load runs in consecutive windows
# (jamba-load --duration_s, one process per window, so client connections
# are also opened and closed all along); after each window the RSS and the
# open file descriptors of every server process are read from /proc.
#
#   bench/soak/soak.sh [--duration 120] [--window 20] [--concurrency 6]
#                      [--cancel_fraction 0.1] [--prompt_tokens 32]
#                      [--output_tokens 32] [--model DIR] [--report FILE]
#                      [--tls] [--check] [--max_rss_growth_pct 10]
#                      [--rss_slack_mb 4] [--max_fd_growth 4] [--max_error_rate 0]
#
# --tls runs the cluster as deployed with TLS: mutual TLS between router
# and workers, TLS and a bearer token on the public API (certificates made
# by tests/e2e/make_test_certs.sh into the work folder).
#
# Reports, per process, RSS and FD at the end of the first window (the
# baseline: buffers, thread arenas and connections are warm by then) and at
# the end; the error rate (failed / all requests; requested cancellations
# are not errors); and the latency drift, p50/p99 of TTFT and end-to-end
# latency in the first vs the last window. With --check it exits 1 when
# a process died, the error rate is above --max_error_rate, a process's
# RSS grew by more than max(--max_rss_growth_pct % of its baseline,
# --rss_slack_mb), or its FD count by more than --max_fd_growth. Latency
# drift is reported, never checked (the machine may be shared).
# Needs the binaries in $BUILD_DIR (default build/).
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=120 window=20 concurrency=6 cancel=0.1 prompt_tokens=32 output_tokens=32
model=tests/testdata/tiny_model report="" check=0
max_rss_pct=10 rss_slack_mb=4 max_fd_growth=4 max_error_rate=0 tls=0
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --window) window="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --cancel_fraction) cancel="$2"; shift 2 ;;
    --prompt_tokens) prompt_tokens="$2"; shift 2 ;;
    --output_tokens) output_tokens="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --report) report="$2"; shift 2 ;;
    --check) check=1; shift ;;
    --tls) tls=1; shift ;;
    --max_rss_growth_pct) max_rss_pct="$2"; shift 2 ;;
    --rss_slack_mb) rss_slack_mb="$2"; shift 2 ;;
    --max_fd_growth) max_fd_growth="$2"; shift 2 ;;
    --max_error_rate) max_error_rate="$2"; shift 2 ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
build="${BUILD_DIR:-build}"
for bin in expert_worker/jamba-expert-worker router/jamba-router client/jamba-client bench/jamba-load; do
  [ -x "$build/$bin" ] || { echo "soak.sh: $build/$bin is missing" >&2; exit 1; }
done
windows=$(( (duration + window - 1) / window ))
[ "$windows" -ge 2 ] || { echo "soak.sh: --duration must cover at least 2 windows" >&2; exit 2; }
work=$(mktemp -d /tmp/jamba-soak.XXXXXX)

names=() pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap stop_all EXIT

address_of() {  # waits for "listening on HOST:PORT" in log $1 of process $2
  for _ in $(seq 1 1200); do
    if grep -q "listening on" "$1" 2>/dev/null; then
      grep -m1 -o "listening on [^ ]*" "$1" | awk '{print $3}'
      return
    fi
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "soak.sh: no address in $1" >&2
  cat "$1" >&2
  exit 1
}

worker_tls=() router_tls=() client_tls=()
if [ "$tls" = 1 ]; then
  bash tests/e2e/make_test_certs.sh "$work/certs"
  c="$work/certs"
  worker_tls=(--internal_tls_cert "$c/server.pem" --internal_tls_key "$c/server.key"
    --internal_tls_ca "$c/ca.pem")
  router_tls=(--internal_tls_cert "$c/client.pem" --internal_tls_key "$c/client.key"
    --internal_tls_ca "$c/ca.pem" --tls_cert "$c/server.pem" --tls_key "$c/server.key"
    --auth_token_file "$c/token")
  client_tls=(--tls_ca "$c/ca.pem" --token_file "$c/token")
fi

num_experts=$(grep -o '"num_experts": *[0-9]*' "$model/config.json" | grep -o '[0-9]*$')
targets=()
for w in 0 1; do
  "$build/expert_worker/jamba-expert-worker" --model "$model" --port 0 \
    --experts "$(seq -s, "$w" 2 $((num_experts - 1)))" "${worker_tls[@]}" \
    >"$work/worker$w.log" 2>&1 &
  pids+=($!) names+=("worker$w")
  targets+=("$(address_of "$work/worker$w.log" $!)")
done
"$build/router/jamba-router" --model "$model" --port 0 \
  --experts "${targets[0]},${targets[1]}" "${router_tls[@]}" >"$work/router.log" 2>&1 &
pids+=($!) names+=(router)
router=$(address_of "$work/router.log" $!)
for _ in $(seq 1 600); do
  "$build/client/jamba-client" health --target "$router" "${client_tls[@]}" >/dev/null 2>&1 && break
  sleep 0.1
done

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
field() { grep -o "\"$1\":[0-9.e+-]*" <<<"$2" | cut -d: -f2; }

samples="$work/samples.tsv"  # window, process, rss_kb, fds
loads="$work/loads.jsonl"
: >"$samples"
: >"$loads"
echo "soak: tls=$tls, $windows windows of ${window}s, $concurrency streams, ${cancel} cancelled; logs in $work" >&2
died=""
for ((i = 1; i <= windows; i++)); do
  line=$("$build/bench/jamba-load" --target "$router" --concurrency "$concurrency" --requests 0 \
    --duration_s "$window" --cancel_fraction "$cancel" --prompt_tokens "$prompt_tokens" \
    --output_tokens "$output_tokens" --seed "$i" --timeout_s 120 "${client_tls[@]}" --json \
    2>>"$work/load.err" \
    | tail -1) || true
  case "$line" in \{*) ;; *) line='{"completed":0,"cancelled":0,"failed":-1}' ;; esac
  echo "$line" >>"$loads"
  sleep 1  # lets the servers close the finished client's connection
  for p in "${!pids[@]}"; do
    if ! kill -0 "${pids[$p]}" 2>/dev/null; then died+="${names[$p]} "; continue; fi
    printf '%d\t%s\t%d\t%d\n' "$i" "${names[$p]}" "$(rss_kb "${pids[$p]}")" "$(fds "${pids[$p]}")" >>"$samples"
  done
  echo "window $i/$windows: $line" >&2
  [ -z "$died" ] || break
done

first=$(sed -n 1p "$loads") last=$(tail -1 "$loads")
completed=0 cancelled=0 failed=0
while read -r l; do
  c=$(field completed "$l") x=$(field cancelled "$l") f=$(field failed "$l")
  completed=$((completed + c)) cancelled=$((cancelled + x))
  if [ "$f" -lt 0 ]; then failed=$((failed + 1)); else failed=$((failed + f)); fi
done <"$loads"
total=$((completed + cancelled + failed))
error_rate=$(awk -v f="$failed" -v t="$total" 'BEGIN {printf "%.5f", t ? f / t : 1}')
verdict=PASS reasons=()
[ -z "$died" ] || { verdict=FAIL; reasons+=("exited: $died"); }
awk -v e="$error_rate" -v m="$max_error_rate" 'BEGIN {exit !(e > m)}' && {
  verdict=FAIL; reasons+=("error rate $error_rate > $max_error_rate"); }
[ "$total" -gt 0 ] || { verdict=FAIL; reasons+=("no request finished"); }

{
  echo "## Soak: ${duration} s, $concurrency streams, cancel fraction $cancel"
  echo
  echo "TLS: $([ "$tls" = 1 ] && echo "mutual TLS router<->workers, TLS + token on the public API" || echo off)."
  echo "Windows: $windows x ${window} s; prompt $prompt_tokens, output $output_tokens tokens; model $model."
  echo "Requests: $total ($completed completed, $cancelled cancelled on purpose, $failed failed);"
  echo "error rate $error_rate."
  echo
  echo "| process | RSS after window 1 (MiB) | RSS at end (MiB) | growth | FDs after window 1 | FDs at end |"
  echo "|---|---|---|---|---|---|"
  last_window=$(tail -1 "$samples" | cut -f1)
  for n in "${names[@]}"; do
    b=$(awk -v n="$n" '$1 == 1 && $2 == n {print $3 " " $4}' "$samples")
    e=$(awk -v n="$n" -v w="$last_window" '$1 == w && $2 == n {print $3 " " $4}' "$samples")
    read -r b_rss b_fd <<<"${b:-0 0}"
    read -r e_rss e_fd <<<"${e:-0 0}"
    growth=$(awk -v b="$b_rss" -v e="$e_rss" 'BEGIN {printf "%+.1f%%", b ? 100 * (e - b) / b : 0}')
    printf '| %s | %.1f | %.1f | %s | %d | %d |\n' "$n" "$(awk -v k="$b_rss" 'BEGIN {print k / 1024}')" \
      "$(awk -v k="$e_rss" 'BEGIN {print k / 1024}')" "$growth" "$b_fd" "$e_fd"
    if awk -v b="$b_rss" -v e="$e_rss" -v p="$max_rss_pct" -v s="$rss_slack_mb" \
      'BEGIN {lim = b * p / 100; if (lim < s * 1024) lim = s * 1024; exit !(e - b > lim)}'; then
      verdict=FAIL; reasons+=("$n RSS grew from $b_rss to $e_rss kB")
    fi
    if [ $((e_fd - b_fd)) -gt "$max_fd_growth" ]; then
      verdict=FAIL; reasons+=("$n FDs grew from $b_fd to $e_fd")
    fi
  done
  echo
  echo "| latency (ms) | first window | last window |"
  echo "|---|---|---|"
  for k in ttft_p50 ttft_p99 e2e_p50 e2e_p99; do
    printf '| %s | %.1f | %.1f |\n' "$k" "$(awk -v x="$(field "$k" "$first")" 'BEGIN {print 1000 * x}')" \
      "$(awk -v x="$(field "$k" "$last")" 'BEGIN {print 1000 * x}')"
  done
  echo
  echo "RSS/FD samples per window (window, process, RSS kB, FDs):"
  echo
  echo '```'
  cat "$samples"
  echo '```'
  echo
  echo "Verdict: $verdict${reasons:+ (${reasons[*]})}"
} >"$work/report.md"
[ -z "$report" ] || cp "$work/report.md" "$report"
cat "$work/report.md"
if [ "$check" = 1 ] && [ "$verdict" != PASS ]; then
  echo "soak.sh: FAIL: ${reasons[*]} (logs in $work)" >&2
  exit 1
fi
