#!/usr/bin/env bash
# Query speed, each figure beside its peer's measured in the same run:
#  - the rows API under load: a filtered 100-row page of a 1,000,000-row version, 32 concurrent
#    connections (wrk), three ways: one filter repeated, 75 filters in turn, random range filters;
#  - SQL: a group-by over 10,000,000 rows through `POST /api/v1/sql`, against DuckDB running the
#    same statement on the same Parquet file kho stored.
#
#   bench/query.sh                      ROWS=… SQL_ROWS=… DURATION=… to change the sizes
#
# Needs: a release build (cargo build --release), wrk, python3 with duckdb.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
kho="${KHO_BIN:-$target/release/kho}"
rows="${ROWS:-1000000}"
sql_rows="${SQL_ROWS:-10000000}"
duration="${DURATION:-15s}"
port="${PORT:-18181}"
work="$(mktemp -d)"
export KHO_ANONYMOUS_API_PER_MINUTE=0 KHO_DATA_DIR="$work/data" KHO_LOG=warn KHO_LISTEN="127.0.0.1:$port" KHO_QUERY_CACHE_BYTES=$((4 << 30))
base="http://127.0.0.1:$port"
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "loading $rows rows (rows API) and $sql_rows rows (SQL)…"
python3 "$here/bench/gen_csv.py" "$rows" > "$work/f.csv"
python3 - "$here/bench/dataset.json" "$work/dataset.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
d["access_level"] = "open"   # anonymous load, as on the open data portal
json.dump(d, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
PY
"$kho" dataset create --file "$work/dataset.json" >/dev/null
"$kho" import "$work/f.csv" --dataset bench-ho-so >/dev/null
python3 - "$sql_rows" "$work/g.parquet" "$here/data/reference/admin-units/post-2025/provinces.csv" <<'PY'
import duckdb, sys
n, out, provinces = int(sys.argv[1]), sys.argv[2], sys.argv[3]
codes = [r[0] for r in duckdb.sql(f"select code from read_csv('{provinces}', all_varchar=true)").fetchall()]
duckdb.sql(f"""COPY (SELECT i AS id, list_element({codes}, (i % {len(codes)})::INT + 1) AS ma_tinh,
  'nhóm ' || (i % 100)::VARCHAR AS nhom, ((i * 7) % 1000)::BIGINT AS so_luong,
  ((i * 13) % 100000) / 100.0 AS so_tien, DATE '2020-01-01' + (i % 1800)::INT AS ngay
  FROM range({n}) t(i)) TO '{out}' (FORMAT parquet)""")
PY
"$kho" dataset create --file "$here/bench/dataset-sql.json" >/dev/null
"$kho" import "$work/g.parquet" --dataset bench-tong-hop >/dev/null

"$kho" serve > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.1; done
rows_url="$base/api/v1/datasets/bench-ho-so/resources/ho-so/rows"
communes=$(python3 -c "
import csv; print(' '.join(r['code'] for r in csv.DictReader(open('$here/data/reference/admin-units/post-2025/wards.csv', encoding='utf-8')) if r['province_code'] == '14'))")
first=${communes%% *}
curl -sf "$rows_url?filter=ma_xa:eq:$first&limit=100" > "$work/page.json"   # loads the version
python3 -c "import json; p = json.load(open('$work/page.json')); assert len(p['records']) == 100, p; print(f'page check: 100 records of {p[\"total\"]:,} with ma_xa = $first')"

cat > "$work/communes.lua" <<LUA
codes = {}
for c in string.gmatch("$communes", "%S+") do table.insert(codes, c) end
request = function()
  return wrk.format("GET", "/api/v1/datasets/bench-ho-so/resources/ho-so/rows?limit=100&filter=ma_xa:eq:" .. codes[math.random(#codes)])
end
LUA
cat > "$work/ranges.lua" <<'LUA'
request = function()
  local lo = math.random(0, 4900)
  return wrk.format("GET", "/api/v1/datasets/bench-ho-so/resources/ho-so/rows?limit=100&filter=so_luong:gte:" .. lo .. "&filter=so_luong:lt:" .. (lo + 100))
end
LUA

# shellcheck source=wrk-lib.sh
source "$here/bench/wrk-lib.sh"
read -r same_rps same_p50 same_p99 same_err < <(run_wrk "$rows_url?filter=ma_xa:eq:$first&limit=100")
read -r many_rps many_p50 many_p99 many_err < <(run_wrk -s "$work/communes.lua" "$base")
read -r range_rps range_p50 range_p99 range_err < <(run_wrk -s "$work/ranges.lua" "$base")

# SQL: the same statement, kho over HTTP and DuckDB in process on the same Parquet file. First
# with this server, which keeps the version in memory after the first query ("from memory"); then
# with a server that may cache nothing, so every kho query reads the Parquet file as DuckDB does.
# Runs alternate between the two (this machine's speed drifts), and the median of seven is kept.
object=$(curl -sf "$base/api/v1/datasets/bench-tong-hop/resources/so-lieu/versions/latest" | python3 -c "import json,sys; print(json.load(sys.stdin)['object_key'])")
parquet="$KHO_DATA_DIR/objects/$object"
stmt='SELECT ma_tinh, count(*) AS n, sum(so_luong) AS so_luong, avg(so_tien) AS so_tien, max(ngay) AS ngay FROM "bench-tong-hop" GROUP BY ma_tinh ORDER BY ma_tinh'
cat > "$work/sql.py" <<'PY'
import duckdb, json, statistics, sys, time, urllib.request
base, stmt, parquet, n, mode = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
def kho():
    req = urllib.request.Request(base + "/api/v1/sql", json.dumps({"sql": stmt}).encode(), {"content-type": "application/json"})
    t = time.perf_counter(); body = json.load(urllib.request.urlopen(req)); dt = time.perf_counter() - t
    return dt, [(r["ma_tinh"], r["n"], r["so_luong"]) for r in body["records"]]
def duck():
    con = duckdb.connect()
    t = time.perf_counter(); rows = con.sql(stmt.replace('"bench-tong-hop"', f"read_parquet('{parquet}')")).fetchall()
    return time.perf_counter() - t, [tuple(r[:3]) for r in rows]
def cached_versions():
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    return int(next(l.split()[-1] for l in text.splitlines() if l.startswith("kho_query_cache_versions")))
_, want = duck()
assert len(want) == 34 and sum(r[1] for r in want) == n, want
if mode == "memory":
    before = cached_versions()
    assert kho()[1] == want
    deadline = time.time() + 300
    while cached_versions() <= before and time.time() < deadline:
        time.sleep(0.2)
    assert cached_versions() > before, "the version was not loaded into memory"
k, d = [], []
for _ in range(7):
    t, got = kho()
    assert got == want, got
    k.append(t)
    d.append(duck()[0])
if mode == "parquet":
    assert cached_versions() == 0, "this server was to read the Parquet file every time"
print(statistics.median(k), statistics.median(d))
PY
read -r kho_mem duck_mem < <(python3 "$work/sql.py" "$base" "$stmt" "$parquet" "$sql_rows" memory)
rss=$(ps -o rss= -p "$server" | awk '{printf "%.0f", $1/1024}')
kill "$server"; wait "$server" 2>/dev/null || true
KHO_QUERY_CACHE_BYTES=0 "$kho" serve > "$work/serve-parquet.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.1; done
read -r kho_pq duck_pq < <(python3 "$work/sql.py" "$base" "$stmt" "$parquet" "$sql_rows" parquet)

python3 - <<PY
rows, sql_rows, dur = $rows, $sql_rows, "$duration"
print(f"rows API, {rows:,}-row version, 100-row pages, wrk 32 connections x {dur}:")
for name, rps, p50, p99, err in [
    ("one filter (ma_xa = …)      ", $same_rps, $same_p50, $same_p99, $same_err),
    ("75 commune filters in turn  ", $many_rps, $many_p50, $many_p99, $many_err),
    ("random so_luong ranges      ", $range_rps, $range_p50, $range_p99, $range_err),
]:
    print(f"  {name} {rps:8,.0f} req/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   errors {err}   (target p99 < 50 ms, 0 errors)")
kp, dp, km, dm = $kho_pq, $duck_pq, $kho_mem, $duck_mem
print(f"SQL group-by over {sql_rows:,} rows (34 groups; count, sum, avg, max), median of 7, alternating:")
print(f"  read from the Parquet file  kho {kp*1000:6.0f} ms   duckdb {dp*1000:6.0f} ms   kho / duckdb {kp/dp:.2f}x  (target <= 1.5x)")
print(f"  kho from memory             kho {km*1000:6.0f} ms   duckdb {dm*1000:6.0f} ms   kho / duckdb {km/dm:.2f}x")
print(f"kho server RSS after the runs: $rss MiB")
PY
