#!/usr/bin/env bash
# Query speed, each figure beside its peer's measured in the same run:
#  - the rows API under load: a filtered 100-row page of a 1,000,000-row version, 32 concurrent
#    connections (wrk), three ways: one filter repeated, 75 filters in turn, random range filters;
#  - SQL: a group-by over 10,000,000 rows through `POST /api/v1/sql`, against DuckDB running the
#    same statement on the same Parquet file kho stored;
#  - a filtered CSV download of a shared 1,000,000-row register by an official of another agency
#    who declared no purpose, so the citizen IDs and names come masked, against DuckDB writing the
#    same rows, masked the same way, from the same Parquet file (COPY … WHERE … TO csv).
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
python3 "$here/bench/gen_csv.py" "$rows" --open > "$work/f-open.csv"
python3 - "$here/bench/dataset.json" "$work/dataset.json" "$work/dataset-shared.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
# Anonymous load, as on the open data portal: an open register holds no personal data.
o = json.loads(json.dumps(d))
o["access_level"] = "open"
o["resources"][0]["schema"]["fields"] = [f for f in d["resources"][0]["schema"]["fields"] if f["name"] not in ("cccd", "ho_ten")]
json.dump(o, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
# The whole register, shared with other agencies.
d["slug"], d["access_level"], d["title"] = "bench-ho-so-chung", "shared", "Hồ sơ dùng chung (benchmark)"
json.dump(d, open(sys.argv[3], "w", encoding="utf-8"), ensure_ascii=False)
PY
"$kho" dataset create --file "$work/dataset.json" >/dev/null
"$kho" import "$work/f-open.csv" --dataset bench-ho-so >/dev/null
"$kho" dataset create --file "$work/dataset-shared.json" >/dev/null
"$kho" import "$work/f.csv" --dataset bench-ho-so-chung >/dev/null
"$kho" agency create --code so-thu-tai --name "Sở thử tải" >/dev/null
"$kho" user create --username doc.thu --agency so-thu-tai --role viewer --password "mat-khau-thu-tai-dai-2026" >/dev/null
token=$("$kho" token create --user doc.thu --name bench | grep -o 'kho_[A-Za-z0-9_-]*' | head -1)
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
# The reader chooses their own password, as a new account must before its token answers.
python3 - "$base" <<'PY'
import http.cookiejar, json, sys, urllib.request
base = sys.argv[1]
web = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
def post(path, body, headers={}):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"content-type": "application/json", **headers})
    return json.load(web.open(req)) if path.endswith("sign-in") else web.open(req).status
csrf = post("/api/v1/auth/sign-in", {"username": "doc.thu", "password": "mat-khau-thu-tai-dai-2026"})["csrf_token"]
post("/api/v1/me/password", {"current_password": "mat-khau-thu-tai-dai-2026", "new_password": "mat-khau-rieng-cua-toi-2026"}, {"x-csrf-token": csrf})
PY
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

# The masked download: kho over HTTP (the CSV read to its end) and DuckDB writing the same rows
# to a CSV file; median of five, alternating.
object=$(curl -sf -H "Authorization: Bearer $token" "$base/api/v1/datasets/bench-ho-so-chung/resources/ho-so/versions/latest" | python3 -c "import json,sys; print(json.load(sys.stdin)['object_key'])")
cat > "$work/export.py" <<'PY'
import duckdb, re, statistics, sys, time, urllib.request
base, token, parquet, out = sys.argv[1:5]
url = base + "/api/v1/datasets/bench-ho-so-chung/resources/ho-so/versions/latest/data?format=csv&filter=so_luong:gte:4000"
def kho():
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    t = time.perf_counter(); body = urllib.request.urlopen(req).read(); dt = time.perf_counter() - t
    return dt, body
masked = """SELECT id, ma_xa,
  left(cccd, 4) || repeat('*', length(cccd) - 6) || right(cccd, 2) AS cccd,
  split_part(ho_ten, ' ', 1) || ' ' || array_to_string(list_transform(string_split(ho_ten, ' ')[2:], lambda w: left(w, 1) || '.'), ' ') AS ho_ten,
  ngay_sinh, so_tien, so_luong, ty_le, trang_thai, ngay_cap_nhat, ma_tinh, ghi_chu
  FROM read_parquet('{p}') WHERE so_luong >= 4000"""
def duck():
    con = duckdb.connect()
    t = time.perf_counter(); con.sql(f"COPY ({masked.format(p=parquet)}) TO '{out}' (FORMAT csv, HEADER)"); dt = time.perf_counter() - t
    return dt
_, body = kho()
duck()
text = body.decode("utf-8")
lines = text.count("\n") - 1
want = duckdb.sql(f"SELECT count(*) FROM read_parquet('{parquet}') WHERE so_luong >= 4000").fetchall()[0][0]
assert lines == want, (lines, want)
assert not re.search(r"\b\d{12}\b", text), "a citizen ID left unmasked"
ours = sorted(l.split(",")[2] for l in text.splitlines()[1:])
theirs = sorted(r[0] for r in duckdb.sql(f"SELECT cccd FROM read_csv('{out}', all_varchar=true)").fetchall())
assert ours == theirs, "kho and DuckDB masked the citizen IDs differently"
k, d = [], []
for _ in range(5):
    k.append(kho()[0]); d.append(duck())
print(statistics.median(k), statistics.median(d), lines, len(body))
PY
read -r kho_exp duck_exp exp_rows exp_bytes < <(python3 "$work/export.py" "$base" "$token" "$KHO_DATA_DIR/objects/$object" "$work/duck.csv")
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
ke, de, n, b = $kho_exp, $duck_exp, $exp_rows, $exp_bytes
print(f"masked CSV download of {n:,} filtered rows ({b / 1e6:.0f} MB), citizen IDs and names masked, median of 5:")
print(f"  kho over HTTP {ke*1000:6.0f} ms   duckdb COPY … WHERE … TO csv {de*1000:6.0f} ms   kho / duckdb {ke/de:.2f}x")
print(f"kho server RSS after the runs: $rss MiB")
PY
