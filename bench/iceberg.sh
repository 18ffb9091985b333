#!/usr/bin/env bash
# Reading a published table through kho's Iceberg REST catalog with PyIceberg (load the table,
# scan every row into Arrow), against reading the very same Parquet file directly with pyarrow
# and with DuckDB: what the catalog adds on top of the file read. Also the first load of a table
# (kho writes its Iceberg metadata and manifests) against later loads.
#
#   bench/iceberg.sh [rows]          (default 1,000,000)
#
# Needs: a release build (cargo build --release), python3 with pyiceberg[pyarrow] and duckdb.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
kho="${KHO_BIN:-$target/release/kho}"
rows="${1:-1000000}"
work="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export KHO_DATA_DIR="$work/data" KHO_LOG=warn KHO_ANONYMOUS_API_PER_MINUTE=0

echo "publishing $rows rows of open data…"
python3 "$here/bench/gen_csv.py" "$rows" --open > "$work/f.csv"
python3 "$here/bench/open_dataset.py" "$work/dataset.json"
"$kho" dataset create --file "$work/dataset.json" >/dev/null
"$kho" import "$work/f.csv" --dataset bench-ho-so >/dev/null
"$kho" serve --listen "127.0.0.1:$port" > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
parquet=$(find "$work/data/objects/datasets" -name data.parquet | head -1)

python3 - "http://127.0.0.1:$port/iceberg" "$parquet" "$rows" <<'PY'
import statistics, sys, time
import duckdb, pyarrow.parquet as pq
from pyiceberg.catalog.rest import RestCatalog
uri, parquet, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])

def timed(f, n=5):
    out, times = None, []
    for _ in range(n):
        t = time.perf_counter(); out = f(); times.append(time.perf_counter() - t)
    return out, statistics.median(times)

cat = RestCatalog("kho", uri=uri)
t = time.perf_counter(); cat.load_table(("bench-ho-so", "ho-so")); first = time.perf_counter() - t
_, load = timed(lambda: cat.load_table(("bench-ho-so", "ho-so")), 10)
table, ice = timed(lambda: cat.load_table(("bench-ho-so", "ho-so")).scan().to_arrow())
assert table.num_rows == rows, table.num_rows
direct, arrow = timed(lambda: pq.read_table(parquet))
assert direct.num_rows == rows
_, duck = timed(lambda: duckdb.connect().sql(f"SELECT * FROM read_parquet('{parquet}')").to_arrow_table())
print(f"table: {rows:,} rows, {len(table.schema)} columns, one Parquet file")
print(f"first load (kho writes the Iceberg metadata): {first * 1000:7.1f} ms; later loads {load * 1000:6.1f} ms (median)")
print(f"PyIceberg via kho's catalog, load + scan: {ice:6.3f} s")
print(f"pyarrow reading the file directly:         {arrow:6.3f} s   ratio {ice / arrow:.2f}x")
print(f"DuckDB reading the file directly:          {duck:6.3f} s   ratio {ice / duck:.2f}x")
PY
