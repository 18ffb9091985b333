# Sourced by the test scripts: start `kho serve` on a free port and wait until it listens.
#
#   start_kho LOG [serve flags…]     sets $pid and $base (http://127.0.0.1:PORT); exits on failure
#
# Needs $kho (the binary) and KHO_DATA_DIR set by the caller.
start_kho() {
  local log="$1"
  shift
  "$kho" serve --listen 127.0.0.1:0 "$@" >"$log" &
  pid=$!
  base=""
  # Loading the demo data takes a few seconds on a debug build.
  for _ in $(seq 1 300); do
    base="$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1 || true)"
    [ -n "$base" ] && return 0
    sleep 0.1
  done
  echo "kho did not start"
  cat "$log"
  exit 1
}
