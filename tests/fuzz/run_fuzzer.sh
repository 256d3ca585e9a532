#!/usr/bin/env bash
# Runs one libFuzzer target over its checked-in corpus (read only: new
# inputs go to a fresh directory), with its dictionary when there is one.
#
#   run_fuzzer.sh BINARY NAME OUT_DIR [libFuzzer flags...]
#
# OUT_DIR/<NAME>/new gets the inputs found, OUT_DIR/<NAME>/crash-* any
# crashing input, OUT_DIR/<NAME>/log the fuzzer's output. The exit status is
# the fuzzer's: non-zero on a crash, a leak, a timeout or a failed property.
# DEJA_FUZZ_DEADLINE (seconds, default 240) kills a fuzzer that outlives it:
# on an out-of-memory, ASan's heap profile of a large heap can take hours.
set -euo pipefail
binary="$1" name="$2" out="$3"
shift 3
here="$(cd "$(dirname "$0")" && pwd)"
corpus="$here/corpus/$name"
dict=()
if [ -f "$here/$name.dict" ]; then dict=(-dict="$here/$name.dict"); fi
rm -rf "${out:?}/$name/new"
mkdir -p "$out/$name/new"
# A slow input (over 30 s) is a bug too; 2 GiB bounds memory.
status=0
timeout -s KILL "${DEJA_FUZZ_DEADLINE:-240}" "$binary" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$out/$name/" "${dict[@]}" "$@" "$out/$name/new" "$corpus" \
  >"$out/$name/log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  cat "$out/$name/log"
else
  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|new_units_added)' "$out/$name/log" || true
fi
exit "$status"
