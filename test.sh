#!/usr/bin/env bash
# test.sh: install dependencies, build with -Werror, run every test (ctest),
# then build again with AddressSanitizer + UndefinedBehaviorSanitizer and run
# every test under them, then fuzz every decoder with libFuzzer (clang) for
# CAIRN_FUZZ_SECS seconds each (default 30; any crash fails).
# CAIRN_TEST_FAST=1 skips the sanitizer and fuzzing passes.
set -euo pipefail
cd "$(dirname "$0")"
bash .ci/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

echo "== build (warnings are errors)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
echo "== tests"
(cd build && ctest --output-on-failure -j"$jobs" --timeout 600)

if [ "${CAIRN_TEST_FAST:-0}" != 1 ]; then
  echo "== build with ASan + UBSan"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCAIRN_WERROR=ON -DCAIRN_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  echo "== tests under ASan + UBSan"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j"$jobs" --timeout 900)
  echo "== fuzzing (libFuzzer + ASan + UBSan, ${CAIRN_FUZZ_SECS:-30}s per target)"
  bash tests/fuzz/run.sh "${CAIRN_FUZZ_SECS:-30}"
fi
