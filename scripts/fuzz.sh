#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan, the whole library instrumented)
# into build-fuzz/ and runs each on a working copy of its seed corpus (tests/fuzz/corpus/NAME).
#   scripts/fuzz.sh [SECONDS]     each target for SECONDS (default 20), two at a time
#   scripts/fuzz.sh --runs N      each target for N executions instead
# Prints a table (target, executions, findings, coverage edges, corpus size) and exits 1 when a
# target crashed, hung, leaked or took over 10 s on one input (libFuzzer's slow-unit report: the
# server parses these inputs); each finding's reproducer is left in build-fuzz/findings/NAME/,
# and what the target's log says of it is printed under the table.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=(-max_total_time="${1:-20}")
if [ "${1:-}" = "--runs" ]; then limit=(-runs="$2"); fi

bash scripts/setup.sh run test
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCLIPXAI_FUZZ=ON >/dev/null
cmake --build build-fuzz --target fuzz_targets -j"$(nproc)"

run_target() {
  local name=$1
  local corpus=build-fuzz/corpus/$name findings=build-fuzz/findings/$name
  rm -rf "$corpus" "$findings"
  mkdir -p "$corpus" "$findings"
  cp tests/fuzz/corpus/"$name"/* "$corpus"/
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    "build-fuzz/fuzz/$name" "${limit[@]}" -rss_limit_mb=4096 -timeout=30 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="$findings/" "$corpus" >"build-fuzz/$name.log" 2>&1
}

names=()
for source in tests/fuzz/fuzz_*.cpp; do names+=("$(basename "$source" .cpp)"); done
status=0
printf '%s\n' "${names[@]}" | xargs -P 2 -I{} bash -c "$(declare -f run_target); \
  $(declare -p limit); run_target {}" || status=1
rm -rf /tmp/clipxai-fuzz-*  # the targets' scratch files (fuzz_common.h)

printf '| %-18s | %12s | %8s | %8s | %6s |\n' target executions findings coverage corpus
printf '|%s|%s|%s|%s|%s|\n' -------------------- -------------- ---------- ---------- --------
for name in "${names[@]}"; do
  log=build-fuzz/$name.log
  executions=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || echo 0)
  findings=$(find "build-fuzz/findings/$name" -type f | wc -l)
  corpus=$(find "build-fuzz/corpus/$name" -type f | wc -l)
  printf '| %-18s | %12s | %8s | %8s | %6s |\n' "$name" "$executions" "$findings" "$coverage" "$corpus"
  [ "$findings" -eq 0 ] || status=1
done
for name in "${names[@]}"; do
  for finding in "build-fuzz/findings/$name"/*; do
    [ -f "$finding" ] || continue
    echo "== $finding"
    grep -E -A15 '^==[0-9]+==ERROR|deadly signal|Slowest unit|ALARM|out-of-memory' \
      "build-fuzz/$name.log" | head -n 40 || true
    echo "base64: $(base64 -w0 "$finding" | head -c 2000)"
  done
done
exit "$status"
