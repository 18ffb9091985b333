#!/usr/bin/env bash
# Harvest a real `kho serve --demo` as harvesters do: the CKAN Action API through the real
# `ckanapi` client, then the DCAT-AP 3 catalog checked with the official SHACL shapes (pyshacl).
#
#   scripts/harvest-compat.sh
#
# Needs: the kho binary built (cargo build), and `pip install ckanapi pyshacl`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=serve-lib.sh
source "$here/scripts/serve-lib.sh"
target="${CARGO_TARGET_DIR:-$here/target}"
kho="${KHO_BIN:-$target/debug/kho}"
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

export KHO_DATA_DIR="$work/data" KHO_LOG=warn
start_kho "$work/serve.log" --demo
python3 "$here/scripts/ckanapi-check.py" "$base"
python3 "$here/scripts/dcat-check.py" "$base"
