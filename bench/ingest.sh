#!/usr/bin/env bash
# Ingest + validate + publish throughput of `kho import`, against DuckDB converting the same CSV
# to Parquet and frictionless validating it with the equivalent schema; and kho's peak memory.
#
#   bench/ingest.sh [rows]          (default 1,000,000; frictionless gets a 100,000-row slice)
#   BIG=1 bench/ingest.sh           also loads a ~1 GB file to measure peak memory
#
# Needs: a release build (cargo build --release), python3 with duckdb and frictionless
# (pip install duckdb frictionless). Prints each figure and the ratios.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
kho="${KHO_BIN:-$target/release/kho}"
rows="${1:-1000000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export KHO_DATA_DIR="$work/data" KHO_LOG=warn

# Wall time in seconds and peak RSS (MiB) of a command.
measure() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
dt = time.perf_counter() - t
if p.returncode not in (0, 1):
    sys.stderr.write(p.stderr.decode()); sys.exit(p.returncode)
print(f"{dt:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f}")
PY
}

echo "generating $rows rows…"
python3 "$here/bench/gen_csv.py" "$rows" > "$work/f.csv"
head -n $((100000 + 1)) "$work/f.csv" > "$work/f100k.csv"
# Write the generated files out now, so that no tool is timed while the disk catches up.
sync
size_mb=$(du -m "$work/f.csv" | cut -f1)
"$kho" dataset create --file "$here/bench/dataset.json" >/dev/null

read -r kho_s kho_rss < <(measure "$kho" import "$work/f.csv" --dataset bench-ho-so)
read -r duck_s _ < <(measure python3 -c "import duckdb; duckdb.sql(\"COPY (SELECT * FROM read_csv('$work/f.csv')) TO '$work/f.parquet' (FORMAT parquet)\")")
# frictionless refuses absolute paths ("not safe"): run it inside the work folder.
cp "$here/bench/frictionless-schema.json" "$work/schema.json"
read -r fl_s _ < <(cd "$work" && measure frictionless validate --schema schema.json f100k.csv)
(cd "$work" && frictionless validate --schema schema.json f100k.csv | grep -q VALID) || { echo "frictionless did not validate the slice"; exit 1; }

slice=$(( rows < 100000 ? rows : 100000 ))
python3 - "$rows" "$size_mb" "$slice" "$kho_s" "$kho_rss" "$duck_s" "$fl_s" <<'PY'
import sys
rows, size, sl = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
kho, rss, duck, fl = map(float, sys.argv[4:])
kho_rate, duck_rate, fl_rate = rows / kho, rows / duck, sl / fl
print(f"file: {rows:,} rows, 12 columns, {size} MB")
print(f"kho import (check + Parquet + publish): {kho:7.2f} s  {kho_rate:12,.0f} rows/s  peak RSS {rss:.0f} MiB")
print(f"duckdb CSV -> Parquet:                  {duck:7.2f} s  {duck_rate:12,.0f} rows/s")
print(f"frictionless validate ({sl:,} rows):    {fl:7.2f} s  {fl_rate:12,.0f} rows/s")
print(f"kho / duckdb throughput:       {kho_rate / duck_rate:.2f}x  (target >= 0.5x)")
print(f"kho / frictionless throughput: {kho_rate / fl_rate:.1f}x  (target >= 20x)")
PY

if [ "${BIG:-0}" = 1 ]; then
  echo "generating ~1 GB…"
  python3 "$here/bench/gen_csv.py" 10000000 > "$work/big.csv"
  sync
  read -r big_s big_rss < <(measure "$kho" import "$work/big.csv" --dataset bench-ho-so)
  echo "kho import of $(du -m "$work/big.csv" | cut -f1) MB: ${big_s} s, peak RSS ${big_rss} MiB (target <= 300 MiB)"
fi
