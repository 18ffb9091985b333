#!/usr/bin/env bash
# Start-up time, idle memory and binary size of `kho serve`.
#
#   bench/startup.sh [path/to/kho]     (default: $CARGO_TARGET_DIR/release/kho, else debug)
#
# "first start" runs on an empty data folder (creates the database, loads the 14,149
# administrative units and the crosswalk, the province's agencies and the first administrator);
# "warm start" reopens the same folder. Each is timed from launch until /health answers 200.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
kho="${1:-}"
if [ -z "$kho" ]; then
  if [ -x "$target/release/kho" ]; then kho="$target/release/kho"; else kho="$target/debug/kho"; fi
fi
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))

now_ms() { date +%s%3N; }

start() { # $1 = label, rest = extra args
  local label="$1"; shift
  local t0; t0=$(now_ms)
  KHO_LOG=warn "$kho" serve --listen "127.0.0.1:$port" --data-dir "$work/data" "$@" >"$work/serve.log" 2>&1 &
  pid=$!
  until curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
    sleep 0.01
  done
  local t1; t1=$(now_ms)
  sleep 1
  local rss; rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  printf '%-28s %6d ms to /health, idle RSS %6.1f MiB\n' "$label" $((t1 - t0)) "$(echo "$rss / 1024" | bc -l)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "binary: $kho ($(du -m "$kho" | cut -f1) MiB)"
start "first start (empty folder)"
start "warm start"
rm -rf "$work/data"
start "first start with --demo" --demo
start "warm start with demo data"
