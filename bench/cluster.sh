#!/usr/bin/env bash
# kho on PostgreSQL + an S3-compatible store against the embedded default, on this machine:
#  - ingest: `kho import` of the same file, embedded (SQLite + local folder) and PostgreSQL + S3
#    (target: PostgreSQL + S3 at least 0.8x the embedded rows/s);
#  - serving through nginx, 32 connections (wrk): the portal's search (CKAN package_search) and
#    the rows API with a filter, on one embedded node, one cluster node and two cluster nodes.
#    The nodes share this machine's cores: the figures show what the shared database and bucket
#    cost, not how a cluster scales across machines.
#
#   bench/cluster.sh [rows]        (default 1,000,000; DURATION=15s per measurement)
#
# Needs: a release build (cargo build --release), PostgreSQL's server programs (Debian
# `postgresql`), nginx, wrk, python3 with moto[server] (the S3 server).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
kho="${KHO_BIN:-$target/release/kho}"
rows="${1:-1000000}"
duration="${DURATION:-15s}"
work="$(mktemp -d)"
pids=()
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export KHO_LOG=warn KHO_ANONYMOUS_API_PER_MINUTE=0
# shellcheck source=wrk-lib.sh
source "$here/bench/wrk-lib.sh"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# PostgreSQL and the S3 server, both on loopback.
[ "$(id -u)" = 0 ] && chown postgres "$work"
pg_port=$(free_port)
as_pg "$pg_bin/initdb" -D "$work/pg" -U kho --auth=trust -E UTF8 --locale=C >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$work/pg" -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1" -l "$work/pg.log" start >/dev/null
until psql "postgres://kho@127.0.0.1:$pg_port/postgres" -qc "CREATE DATABASE kho" 2>/dev/null; do sleep 0.2; done
s3_port=$(free_port)
moto_server -H 127.0.0.1 -p "$s3_port" >/dev/null 2>&1 & pids+=($!)
until curl -sf -X PUT "http://127.0.0.1:$s3_port/kho-bench" >/dev/null; do sleep 0.2; done
cluster_env=(KHO_DATABASE_URL="postgres://kho@127.0.0.1:$pg_port/kho" KHO_OBJECT_STORE_URL="s3://kho-bench/tinh"
  KHO_S3_ENDPOINT="http://127.0.0.1:$s3_port" KHO_S3_REGION=us-east-1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret)

echo "generating $rows rows…"
python3 "$here/bench/gen_csv.py" "$rows" --open > "$work/f.csv"
python3 "$here/bench/open_dataset.py" "$work/dataset.json"
sync

seconds() { local t0; t0=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $t0" | bc -l; }
"$kho" --data-dir "$work/embedded" dataset create --file "$work/dataset.json" >/dev/null
emb_s=$(seconds "$kho" --data-dir "$work/embedded" import "$work/f.csv" --dataset bench-ho-so)
env "${cluster_env[@]}" "$kho" --data-dir "$work/node1" dataset create --file "$work/dataset.json" >/dev/null
clu_s=$(seconds env "${cluster_env[@]}" "$kho" --data-dir "$work/node1" import "$work/f.csv" --dataset bench-ho-so)

serve() { # data dir, port, env…
  local data="$1" port="$2"; shift 2
  env "$@" "$kho" serve --data-dir "$data" --listen "127.0.0.1:$port" >"$data.log" 2>&1 & pids+=($!)
  until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.1; done
}
balancer() { # name, upstream ports…; prints nginx's port
  local name="$1"; shift
  local port; port=$(free_port)
  mkdir -p "$work/$name"
  {
    echo "user root; worker_processes 2; pid $work/$name/nginx.pid; error_log $work/$name/error.log;"
    echo "events { worker_connections 1024; }"
    echo "http { access_log off; client_body_temp_path $work/$name/body; proxy_temp_path $work/$name/proxy;"
    echo " upstream kho { keepalive 64;"
    for p in "$@"; do echo "  server 127.0.0.1:$p;"; done
    echo " }"
    echo " server { listen 127.0.0.1:$port; location / { proxy_pass http://kho; proxy_http_version 1.1; proxy_set_header Connection \"\"; } } }"
  } > "$work/$name/nginx.conf"
  nginx -p "$work/$name" -c "$work/$name/nginx.conf" -g "daemon off;" >/dev/null 2>&1 & pids+=($!)
  until curl -s -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.1; done
  echo "$port"
}
pe=$(free_port); serve "$work/embedded" "$pe"
p1=$(free_port); serve "$work/node1" "$p1" "${cluster_env[@]}"
p2=$(free_port); serve "$work/node2" "$p2" "${cluster_env[@]}"
lb_e=$(balancer lb-embedded "$pe")
lb_1=$(balancer lb-one "$p1")
lb_2=$(balancer lb-two "$p1" "$p2")

search="/api/3/action/package_search?q=ho%20so"
rowsq="/api/v1/datasets/bench-ho-so/resources/ho-so/rows?filter=so_luong:gte:500&limit=50"
declare -A result
for setup in embedded:$lb_e one:$lb_1 two:$lb_2; do
  name=${setup%%:*}; port=${setup#*:}
  for what in search rows; do
    path=$search; [ "$what" = rows ] && path=$rowsq
    curl -sf "http://127.0.0.1:$port$path" >/dev/null   # warm: the version loads into memory
    result[$name.$what]=$(run_wrk "http://127.0.0.1:$port$path")
  done
done

python3 - "$rows" "$emb_s" "$clu_s" "${result[embedded.search]}" "${result[one.search]}" "${result[two.search]}" \
  "${result[embedded.rows]}" "${result[one.rows]}" "${result[two.rows]}" <<'PY'
import sys
rows, emb, clu = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
r = [list(map(float, a.split())) for a in sys.argv[4:]]
print(f"ingest of {rows:,} rows: embedded {emb:.2f} s ({rows/emb:,.0f} rows/s), PostgreSQL + S3 {clu:.2f} s ({rows/clu:,.0f} rows/s); ratio {emb/clu:.2f}x (target >= 0.8x)")
print("through nginx, 32 connections:        req/s    p50 ms   p99 ms  errors  vs embedded")
labels = ["embedded, one node", "PostgreSQL + S3, one node", "PostgreSQL + S3, two nodes"]
for what, block in (("package_search", r[0:3]), ("rows API, filtered", r[3:6])):
    for label, (rps, p50, p99, errs) in zip(labels, block):
        print(f"  {what:19} {label:27} {rps:8.0f} {p50:9.2f} {p99:8.2f} {errs:6.0f}   {rps / block[0][0]:.2f}x")
PY
