#!/usr/bin/env bash
# Check the CKAN Action API with the real `ckanapi` client against a real `kho serve --demo`.
#
#   scripts/ckan-compat.sh
#
# Needs: the kho binary built (cargo build), and `pip install ckanapi`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
kho="${KHO_BIN:-$target/debug/kho}"
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

export KHO_DATA_DIR="$work/data" KHO_LOG=warn
"$kho" serve --demo --listen 127.0.0.1:0 >"$work/serve.log" &
pid=$!
base=""
for _ in $(seq 1 300); do
  base="$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.log" | head -1 || true)"
  [ -n "$base" ] && break
  sleep 0.1
done
[ -n "$base" ] || { echo "kho did not start"; cat "$work/serve.log"; exit 1; }
python3 "$here/scripts/ckanapi-check.py" "$base"
