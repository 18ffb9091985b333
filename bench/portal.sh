#!/usr/bin/env bash
# The open data portal under load, 32 concurrent connections (wrk), against the issue's targets:
#  - search: package_search over 10,000 generated datasets, 40 different queries (with and
#    without diacritics), beside SQLite FTS5 answering the same queries over the same documents in
#    process (no HTTP: a floor for reference, not a like-for-like peer);
#  - datastore_search with a filter on a 1,000,000-row table;
#  - the dataset page (HTML) of that table.
# The pages' accessibility check is a browser test (tests/browser/portal.test.mjs).
#
#   bench/portal.sh                     DATASETS=… ROWS=… DURATION=… to change the sizes
#
# Needs: a release build (cargo build --release), wrk, python3 (with sqlite3's FTS5).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
kho="${KHO_BIN:-$target/release/kho}"
datasets="${DATASETS:-10000}"
rows="${ROWS:-1000000}"
duration="${DURATION:-15s}"
port="${PORT:-18182}"
work="$(mktemp -d)"
export KHO_ANONYMOUS_API_PER_MINUTE=0 KHO_DATA_DIR="$work/data" KHO_LOG=warn KHO_LISTEN="127.0.0.1:$port"
base="http://127.0.0.1:$port"
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=wrk-lib.sh
source "$here/bench/wrk-lib.sh"

echo "registering $datasets datasets and loading $rows rows…"
"$kho" demo load >/dev/null
agencies=$("$kho" agency list | grep -o '\[so-[a-z-]*\]' | tr -d '[]' | tr '\n' ' ')
# shellcheck disable=SC2086
python3 "$here/bench/gen_catalog.py" "$datasets" $agencies > "$work/catalog.json"
t0=$(date +%s.%N)
"$kho" dataset create --file "$work/catalog.json"
t1=$(date +%s.%N)
python3 "$here/bench/gen_csv.py" "$rows" --open > "$work/f.csv"
python3 - "$here/bench/dataset.json" "$work/dataset.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
# Open data holds no personal data (Law 91/2025/QH15): the register without citizen IDs and names.
d["access_level"] = "open"
d["resources"][0]["schema"]["fields"] = [f for f in d["resources"][0]["schema"]["fields"] if f["name"] not in ("cccd", "ho_ten")]
json.dump(d, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
PY
"$kho" dataset create --file "$work/dataset.json" >/dev/null
"$kho" import "$work/f.csv" --dataset bench-ho-so >/dev/null

"$kho" serve > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 600); do curl -sf "$base/health" >/dev/null && break; sleep 0.1; done
grep -o 'search index: [0-9]* dataset(s)' "$work/serve.log"

queries=(
  "dan so" "Dân số" "DAN SO" "truong hoc" "Trường học" "y te" "tram y te" "benh vien" "doanh nghiep"
  "ngân sách" "ngan sach" "khong khi" "PM2.5" "moi truong" "nong nghiep" "dat dai" "xe buyt"
  "giao thong" "du lich" "khach san" "thu tuc hanh chinh" "dich vu cong" "di tich" "van hoa"
  "lao dong" "viec lam" "son la" "Sơn La" "moc chau" "Mộc Châu" "mai son" "yen chau" "song ma"
  "phu yen" "ha noi" "Hà Nội" "theo xa" "theo nam" "tong hop" "ma_xa"
)
printf '%s\n' "${queries[@]}" > "$work/queries.txt"
lua_list=$(python3 -c "
import json, urllib.parse
print(','.join(json.dumps(urllib.parse.quote(q)) for q in open('$work/queries.txt', encoding='utf-8').read().splitlines()))")
cat > "$work/search.lua" <<LUA
queries = { $lua_list }
request = function()
  return wrk.format("GET", "/api/3/action/package_search?rows=10&facet.field=%5B%22organization%22%2C%22tags%22%5D&q=" .. queries[math.random(#queries)])
end
LUA
found=$(curl -sf "$base/api/3/action/package_search?q=dan+so&rows=0" | python3 -c "import json,sys; print(json.load(sys.stdin)['result']['count'])")
echo "check: 'dan so' finds $found open datasets"
read -r s_rps s_p50 s_p99 s_err < <(run_wrk -s "$work/search.lua" "$base")

# The peer floor: SQLite FTS5, the same documents (open ones), the same queries, in process.
read -r fts_p50 fts_p99 < <(python3 - "$work/catalog.json" "$work/queries.txt" <<'PY'
import json, sqlite3, statistics, sys, time, unicodedata
def fold(s):
    s = unicodedata.normalize("NFD", s.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in s if unicodedata.category(c) != "Mn").lower()
docs = [d for d in json.load(open(sys.argv[1], encoding="utf-8")) if d["access_level"] == "open"]
db = sqlite3.connect(":memory:")
db.execute("CREATE VIRTUAL TABLE d USING fts5(title, tags, description, fields)")
db.executemany("INSERT INTO d VALUES (?, ?, ?, ?)", [
    (fold(d["title"]), fold(" ".join(d["tags"])), fold(d["description"]),
     " ".join(f["name"] for f in d["resources"][0]["schema"]["fields"])) for d in docs])
queries = [fold(q) for q in open(sys.argv[2], encoding="utf-8").read().splitlines()]
times = []
for _ in range(50):
    for q in queries:
        expr = " ".join('"' + w.replace('"', "") + '"' for w in q.split())
        t = time.perf_counter()
        db.execute("SELECT rowid FROM d WHERE d MATCH ? ORDER BY bm25(d, 4.0, 3.0, 1.0, 1.5) LIMIT 10", (expr,)).fetchall()
        db.execute("SELECT count(*) FROM d WHERE d MATCH ?", (expr,)).fetchone()
        times.append((time.perf_counter() - t) * 1000)
times.sort()
print(f"{statistics.median(times):.2f} {times[int(len(times) * 0.99)]:.2f}")
PY
)

rid=$(curl -sf "$base/api/3/action/package_show?id=bench-ho-so" | python3 -c "import json,sys; print(json.load(sys.stdin)['result']['resources'][0]['id'])")
communes=$(python3 -c "
import csv; print(' '.join(r['code'] for r in csv.DictReader(open('$here/data/reference/admin-units/post-2025/wards.csv', encoding='utf-8')) if r['province_code'] == '14'))")
first=${communes%% *}
curl -sf "$base/api/3/action/datastore_search?resource_id=$rid&limit=100&filters=%7B%22ma_xa%22%3A%22$first%22%7D" > "$work/ds.json"
python3 -c "import json; r = json.load(open('$work/ds.json'))['result']; assert len(r['records']) == 100, r; print(f'check: datastore_search gives 100 of {r[\"total\"]:,} rows with ma_xa = $first')"
cat > "$work/datastore.lua" <<LUA
codes = {}
for c in string.gmatch("$communes", "%S+") do table.insert(codes, c) end
request = function()
  return wrk.format("GET", "/api/3/action/datastore_search?resource_id=$rid&limit=100&filters=%7B%22ma_xa%22%3A%22" .. codes[math.random(#codes)] .. "%22%7D")
end
LUA
read -r d_rps d_p50 d_p99 d_err < <(run_wrk -s "$work/datastore.lua" "$base")
read -r p_rps p_p50 p_p99 p_err < <(run_wrk "$base/datasets/bench-ho-so")
read -r h_rps h_p50 h_p99 h_err < <(run_wrk "$base/")

python3 - <<PY
def row(name, rps, p50, p99, err, target):
    ok = "✔" if float(p99) < target and int(err) == 0 else "✘"
    print(f"{name:<58} {float(rps):>8.0f} req/s  p50 {float(p50):6.2f} ms  p99 {float(p99):6.2f} ms  errors {err}   target p99 < {target} ms {ok}")
print()
print(f"catalog: $datasets generated datasets registered in {float('$t1') - float('$t0'):.1f} s; {$rows:,}-row table loaded")
row("package_search, 40 queries, 32 connections", "$s_rps", "$s_p50", "$s_p99", "$s_err", 20)
print(f"{'  peer floor: SQLite FTS5, same docs and queries, in process':<58}           p50 {$fts_p50:6.2f} ms  p99 {$fts_p99:6.2f} ms   kho p99 / FTS5 p99 = {float('$s_p99') / max(float('$fts_p99'), 0.001):.1f}x (kho includes HTTP, JSON and facets)")
row("datastore_search, filter on 1M rows, 75 communes", "$d_rps", "$d_p50", "$d_p99", "$d_err", 50)
row("dataset page (HTML) of the 1M-row dataset", "$p_rps", "$p_p50", "$p_p99", "$p_err", 30)
row("home page (HTML)", "$h_rps", "$h_p50", "$h_p99", "$h_err", 30)
PY
