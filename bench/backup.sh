#!/usr/bin/env bash
# `kho backup`, `kho backup verify` and `kho restore` of an embedded instance holding a large
# table, against the file-level copy an operator would make without kho: `sqlite3 .backup` of the
# database plus `cp -a` of the objects, checked with `sha256sum -c`, restored with `cp -a`.
# kho's archive also reads the metadata in one snapshot, checks the audit chain and every
# version's file, and restores into PostgreSQL + S3 as well; the peer does none of that.
#
#   bench/backup.sh [rows]          (default 1,000,000 rows, published twice: two versions)
#
# Needs: a release build (cargo build --release), python3, sqlite3.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$here/target}"
kho="${KHO_BIN:-$target/release/kho}"
rows="${1:-1000000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export KHO_LOG=warn

seconds() { # wall time of a command, in seconds
  python3 - "$@" <<'PY'
import subprocess, sys, time
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
if p.returncode != 0:
    sys.stderr.write(p.stderr.decode()); sys.exit(p.returncode)
print(f"{time.perf_counter() - t:.3f}")
PY
}

echo "generating $rows rows and publishing them twice…"
python3 "$here/bench/gen_csv.py" "$rows" > "$work/f.csv"
data="$work/data"
"$kho" --data-dir "$data" dataset create --file "$here/bench/dataset.json" >/dev/null
"$kho" --data-dir "$data" import "$work/f.csv" --dataset bench-ho-so >/dev/null
"$kho" --data-dir "$data" import "$work/f.csv" --dataset bench-ho-so --mode upsert >/dev/null
sync

kho_backup=$(seconds "$kho" --data-dir "$data" backup "$work/archive")
kho_verify=$(seconds "$kho" --data-dir "$data" backup verify "$work/archive")
kho_restore=$(seconds "$kho" --data-dir "$work/restored" restore "$work/archive")

mkdir -p "$work/peer"
peer_backup=$(seconds bash -c "sqlite3 '$data/kho.db' '.backup $work/peer/kho.db' && cp -a '$data/objects' '$work/peer/objects'")
(cd "$work/peer" && find . -type f -print0 | xargs -0 sha256sum > "$work/peer.sums")
peer_verify=$(seconds bash -c "cd '$work/peer' && sha256sum --quiet -c '$work/peer.sums'")
peer_restore=$(seconds cp -a "$work/peer" "$work/peer-restored")

archive_mb=$(du -sm "$work/archive" | cut -f1)
peer_mb=$(du -sm "$work/peer" | cut -f1)
python3 - "$rows" "$archive_mb" "$peer_mb" "$kho_backup" "$kho_verify" "$kho_restore" "$peer_backup" "$peer_verify" "$peer_restore" <<'PY'
import sys
rows, amb, pmb = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
kb, kv, kr, pb, pv, pr = map(float, sys.argv[4:])
print(f"instance: one table of {rows:,} rows in two versions; archive {amb} MB, file copy {pmb} MB")
print(f"backup:  kho {kb:6.2f} s   sqlite3 .backup + cp -a {pb:6.2f} s   ratio {kb / pb:.2f}x")
print(f"verify:  kho {kv:6.2f} s   sha256sum -c            {pv:6.2f} s   ratio {kv / pv:.2f}x")
print(f"restore: kho {kr:6.2f} s   cp -a                   {pr:6.2f} s   ratio {kr / pr:.2f}x")
PY
