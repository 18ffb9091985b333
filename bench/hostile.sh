#!/usr/bin/env bash
# Hostile SQL against kho (over HTTP) and DuckDB (in process), in the same run: time to the
# answer and peak memory of each (see bench/hostile.py). Needs `pip install duckdb`.
#   bench/hostile.sh [path/to/kho]      default: $CARGO_TARGET_DIR/release/kho
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/kho-target}/release/kho}"
dir="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
KHO_ANONYMOUS_API_PER_MINUTE=0 KHO_LOG=error "$bin" serve --demo --listen 127.0.0.1:0 --data-dir "$dir/data" >"$dir/out" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  base=$(grep -o 'listening on http://[^ ]*' "$dir/out" | cut -d' ' -f3 || true)
  [ -n "$base" ] && break
  sleep 0.1
done
echo "kho: $bin ($base, pid $pid); DuckDB $(python3 -c 'import duckdb; print(duckdb.__version__)')"
python3 bench/hostile.py "$base" "$pid"
