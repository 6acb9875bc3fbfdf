#!/usr/bin/env bash
# copytruncate_test.sh: logrotate "copytruncate" while the collector tails:
# 100,000 CRI lines; every 1,000 lines app.log is copied to app.log.<k> and
# truncated. The collector detects each truncation (size below its offset, or
# first bytes changed), reads the new content as a new stream, and takes the
# lines it had not read yet from the copy, so storage holds every line exactly
# once. (Lines a writer adds between the copy and the truncation are in
# neither file: no tool can read them. This writer adds none.)
. "$(dirname "$0")/lib.sh"

N=100000
certs
start_aggregator
mkdir -p "$T/logs"
start_collector "$T/logs/*.log" --rotate-wait 1s
# a rotated file that is already there at the first scan is history and left
# alone (docs/INPUTS.md; rotation_startup_test.sh): under load the writer's
# first rotation (40 ms in) can beat a slowly starting collector, so write only
# after the first scan
wait_for 30 "the collector's first scan" grep -q 'first scan done' "$T/collector.log"
"$B/rotating-writer" --file "$T/logs/app.log" --lines $N --rotate-every 1000 --mode copytruncate \
  --rate 20000 || fail "writer failed"
wait_for 120 "$N records stored" stored_at_least $N
assert_exactly_once $N
truncs=$(grep -c 'was truncated or rewritten' "$T/collector.log" || true)
copies=$(grep -c 'is the copy of' "$T/collector.log" || true)
pass "$N lines stored exactly once through 99 copytruncate rotations ($truncs truncations seen, $copies copies read from)"
stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
