#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS]: fuzz every decoder with libFuzzer.
# Configures a clang build in build-fuzz (-DCAIRN_FUZZ=ON: libFuzzer + ASan +
# UBSan), builds the fuzz targets, generates the corpus-derived seeds, then runs
# each tests/fuzz/fuzz_<name>.c for SECONDS (default 30) with a -max_len suited
# to it, over tests/fuzz/seeds/<name> + its generated seeds, keeping what it
# learns in build-fuzz/fuzz-work/<name>. Prints executions/s and coverage per
# target. Exit 1 if any target crashed (the input is left in
# build-fuzz/fuzz-crash/<name>/: copy it into tests/fuzz/seeds/<name>/ as a
# regression seed). Env: FUZZ_TARGETS="frame cri" to run a subset;
# CAIRN_CORPUS (default ../shared/corpus beside the source tree; without it
# only the committed seeds are used);
# CAIRN_FUZZ_KNOWN="tag0,emptypack" to fuzz on past bugs already reported
# (see tests/fuzz/fuzz_batch.c; never set it in CI).
set -uo pipefail
secs=${1:-30}
src=$(cd "$(dirname "$0")/../.." && pwd)
bdir=$src/build-fuzz
corpus=${CAIRN_CORPUS:-$src/../shared/corpus}

max_len_for() {
  case $1 in
    frame | batch) echo 65536 ;; # a few frames / a batch of some records
    cri | docker | audit | k8s) echo 8192 ;; # a log file of some lines
    time) echo 64 ;;             # one timestamp or duration
    pack) echo 4096 ;;           # input that builds up to 64 records (fuzz_pack.c)
    *) echo 4096 ;;
  esac
}

targets=${FUZZ_TARGETS:-$(cd "$src/tests/fuzz" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')}

echo "== configure $bdir (clang, CAIRN_FUZZ=ON)"
CC=clang cmake -S "$src" -B "$bdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_FUZZ=ON \
  -DCAIRN_CORPUS="$corpus" >/dev/null || exit 1
echo "== build"
build_targets="fuzz-gen-seeds"
for t in $targets; do build_targets="$build_targets fuzz_$t"; done
# shellcheck disable=SC2086
cmake --build "$bdir" -j2 --target $build_targets >"$bdir/fuzz-build.log" 2>&1 || {
  tail -40 "$bdir/fuzz-build.log"
  exit 1
}
if [ -d "$corpus" ]; then
  CAIRN_CORPUS="$corpus" "$bdir/fuzz-gen-seeds" "$bdir/fuzz-seeds" || exit 1
else
  # a clone without ../shared/corpus: the committed seeds, plus the small
  # hand-made frame/batch/time seeds
  echo "== no corpus at $corpus (set CAIRN_CORPUS): fuzzing from tests/fuzz/seeds only"
  "$bdir/fuzz-gen-seeds" --minimal "$bdir/fuzz-seeds" || exit 1
fi

failed=""
printf '%-8s %12s %10s %8s %8s  %s\n' target execs exec/s cov ft result >"$bdir/fuzz-summary.txt"
for t in $targets; do
  work=$bdir/fuzz-work/$t
  crash=$bdir/fuzz-crash/$t
  mkdir -p "$work" "$crash"
  seeds=("$src/tests/fuzz/seeds/$t")
  case $t in
    cri | docker | audit) [ -d "$corpus/$t" ] && seeds+=("$corpus/$t") ;;
    k8s) [ -d "$corpus/k8s-audit" ] && seeds+=("$corpus/k8s-audit") ;;
    *) [ -d "$bdir/fuzz-seeds/$t" ] && seeds+=("$bdir/fuzz-seeds/$t") ;;
  esac
  log=$bdir/fuzz-$t.log
  echo "== fuzz_$t for ${secs}s (max_len $(max_len_for "$t"))"
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    "$bdir/fuzz_$t" -max_total_time="$secs" -max_len="$(max_len_for "$t")" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crash/" \
    "$work" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  result=ok
  if [ $rc -ne 0 ]; then
    result="CRASH (rc $rc): $(ls -t "$crash" | head -1)"
    failed="$failed $t"
    grep -E 'ERROR|invariant failed|runtime error|SUMMARY' "$log" | head -5
  fi
  printf '%-8s %12s %10s %8s %8s  %s\n' "$t" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" \
    "$result" | tee -a "$bdir/fuzz-summary.txt"
done
echo "== summary"
cat "$bdir/fuzz-summary.txt"
if [ -n "$failed" ]; then
  echo "crashed:$failed (inputs in $bdir/fuzz-crash/<target>/, logs in $bdir/fuzz-<target>.log)"
  exit 1
fi
