#!/usr/bin/env bash
# Coverage-guided fuzzing of kho's parsers with libFuzzer (cargo fuzz; needs a nightly toolchain):
# the CSV reader, the spreadsheet reader, JSON rows, the Table Schema check, the rows API's
# filter language and the SQL guard.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 600 seconds for each of the six targets
#
# Each target starts from fuzz/seeds/<target> and keeps what it finds in fuzz/corpus/<target>
# (not committed); an input that crashes, hangs (over 30 s) or passes 4 GB is saved under
# fuzz/artifacts/<target>/, the run's output in fuzz/logs/<target>.log, and the script exits
# with an error. The test suite runs the same
# entry points over the seeds and their mutations without libFuzzer (kho_core::fuzz).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(csv spreadsheet json_rows table_schema filter sql)
fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
# Instrumented nightly builds must not mix with the stable build cache.
export CARGO_TARGET_DIR="${KHO_FUZZ_TARGET_DIR:-$HOME/.cache/kho-fuzz-target}"

# Optimised dev builds (fuzz/Cargo.toml), without a sanitizer: kho's code is safe Rust, and
# what these targets look for is panics, overflows (debug assertions are on), hangs and memory.
flags=(--dev --sanitizer none --fuzz-dir fuzz)
cargo +nightly fuzz build "${flags[@]}" 2>&1 | tail -n 3

status=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" fuzz/logs
  cp -n fuzz/seeds/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
  echo "== $t: ${seconds} s"
  if cargo +nightly fuzz run "${flags[@]}" "$t" "fuzz/corpus/$t" -- \
      -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -max_len=65536 \
      -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 2>"fuzz/logs/$t.log"; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "fuzz/logs/$t.log" | grep -o '[0-9]*$' || echo "?")
    echo "   no crash: $runs inputs run, corpus $(ls "fuzz/corpus/$t" | wc -l) files ($(du -sh "fuzz/corpus/$t" | cut -f1))"
  else
    status=1
    echo "   FAILED: see fuzz/logs/$t.log; the input is saved in fuzz/artifacts/$t/"
    grep -a -A 3 "panicked at\|ERROR: libFuzzer" "fuzz/logs/$t.log" | head -n 20
  fi
done
exit $status
