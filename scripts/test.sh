#!/usr/bin/env bash
# kho's whole test suite, from a fresh clone: installs what it needs, then runs formatting and
# lint checks, the Rust unit and integration tests, the browser tests in headless Chromium and
# the harvesters' checks (ckanapi, DCAT-AP SHACL shapes) and the schemathesis fuzz of the JSON API.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kho-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*"; }

step "installing test tools (Chromium, nginx, sqlite3, PostgreSQL, playwright-core, schemathesis, duckdb, ckanapi, moto, openpyxl, pyiceberg, pyshacl) where missing"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
fi
# nginx: the reverse proxy in front of kho in the client-address tests.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; }; else sudo apt-get install -y -qq nginx >/dev/null || { sudo apt-get update -qq && sudo apt-get install -y -qq nginx >/dev/null; }; fi
fi
# sqlite3: the backup the README describes is made with it in the tests.
if ! command -v sqlite3 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }; else sudo apt-get install -y -qq sqlite3 >/dev/null || { sudo apt-get update -qq && sudo apt-get install -y -qq sqlite3 >/dev/null; }; fi
fi
# PostgreSQL: the metadata store's second backend passes the same story on a real server, which
# the tests start themselves in a temporary folder (no running service is needed or touched).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq postgresql >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }; else sudo apt-get install -y -qq postgresql >/dev/null || { sudo apt-get update -qq && sudo apt-get install -y -qq postgresql >/dev/null; }; fi
fi
export PATH="$PATH:/usr/sbin"
if ! command -v schemathesis >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check schemathesis
fi
if ! python3 -c "import duckdb" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check duckdb
fi
if ! python3 -c "import ckanapi" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check ckanapi
fi
# moto's S3 server: a real S3-compatible store for the tests of kho's objects in a bucket.
if ! command -v moto_server >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]"
fi
# openpyxl: the peer spreadsheet library reads the workbooks kho writes.
if ! python3 -c "import openpyxl" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check openpyxl
fi
# PyIceberg: the Iceberg client that reads kho's tables through its REST catalog.
if ! python3 -c "import pyiceberg, pyarrow" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check "pyiceberg[pyarrow]"
fi
if ! python3 -c "import pyshacl" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check pyshacl
fi
(cd tests/browser && npm ci --no-audit --no-fund --silent)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

step "Rust unit and integration tests"
cargo test --workspace --all-targets 2>&1 | tee "$logs/cargo.log"

# The same HTTP integration tests again, each kho on a PostgreSQL database and an S3 bucket of its
# own (a few tests of the embedded layout itself stay on SQLite and the local folder).
step "Rust integration tests on PostgreSQL + S3"
KHO_TEST_BACKENDS=postgres+s3 cargo test -p kho --tests 2>&1 | tee "$logs/cargo-cluster.log"

step "browser tests (headless Chromium)"
cargo build -p kho --quiet
(cd tests/browser && npm test) 2>&1 | tee "$logs/browser.log"

step "harvesters: the CKAN API with the ckanapi client, DCAT-AP 3 with pyshacl"
scripts/harvest-compat.sh 2>&1 | tee "$logs/harvest.log"

step "schemathesis against /openapi.json (fails on any 5xx)"
scripts/schemathesis.sh 25 2>&1 | tee "$logs/schemathesis.log"

# One closing line for the whole suite: Rust tests, browser tests and the fuzzed operations.
rust_passed=$(cat "$logs/cargo.log" "$logs/cargo-cluster.log" | grep -o '[0-9]* passed' | awk '{s+=$1} END {print s+0}')
rust_failed=$(cat "$logs/cargo.log" "$logs/cargo-cluster.log" | grep -o '[0-9]* failed' | awk '{s+=$1} END {print s+0}')
cluster_passed=$(grep -o '[0-9]* passed' "$logs/cargo-cluster.log" | awk '{s+=$1} END {print s+0}')
browser_passed=$(awk '/^# pass/ {print $3}' "$logs/browser.log")
browser_failed=$(awk '/^# fail/ {print $3}' "$logs/browser.log")
fuzz_ops=$(grep -o 'Tested: [0-9]*' "$logs/schemathesis.log" | awk '{s+=$2} END {print s+0}')
harvest_checks=$(grep -c '^ok ' "$logs/harvest.log" || true)
echo
echo "Rust: $rust_passed passed ($cluster_passed of them on PostgreSQL + S3); browser: $browser_passed passed; harvesters (ckanapi, DCAT): $harvest_checks checks; schemathesis: $fuzz_ops operations without a server error"
echo "tests: $((rust_passed + browser_passed + harvest_checks + fuzz_ops)) passed, $((rust_failed + browser_failed)) failed"
