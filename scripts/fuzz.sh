#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, starting from a copy of
# its checked-in seed corpus (tests/fuzz/corpus/<name>/). New interesting inputs stay
# in BUILD_DIR/fuzz-corpus/<name>/; crashes are written to BUILD_DIR/fuzz-crashes/.
# Prints the executions per target; exits non-zero if any target found a crash.
set -uo pipefail
build=${1:?usage: fuzz.sh BUILD_DIR SECONDS}
secs=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$build/fuzz-crashes"
status=0
for bin in "$build"/tests/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  corpus_name=${name#fuzz_}
  work="$build/fuzz-corpus/$corpus_name"
  mkdir -p "$work"
  cp -n "$root/tests/fuzz/corpus/$corpus_name"/* "$work"/ 2>/dev/null || true
  echo "fuzz: $name for ${secs}s"
  log="$build/fuzz-$name.log"
  "$bin" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -artifact_prefix="$build/fuzz-crashes/$name-" "$work" >"$log" 2>&1
  rc=$?
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  [ -n "$execs" ] || execs=$(grep -oE '#[0-9]+' "$log" | tail -1 | tr -d '#')
  echo "fuzz: $name: ${execs:-?} executions, exit $rc"
  if [ $rc -ne 0 ]; then
    tail -30 "$log"
    status=1
  fi
done
exit $status
