#!/usr/bin/env bash
# rotation_test.sh: rename+create rotation (logrotate "create", kubelet) while
# the collector tails: 200,000 CRI lines, the file renamed to app.log.<k> and
# recreated every 1,000 lines; storage must hold every line exactly once.
# Rotated files still open are drained under their new name; app.log.<k>
# (matched only as a rotated name) is never read again as a new input.
. "$(dirname "$0")/lib.sh"

N=200000
certs
start_aggregator
mkdir -p "$T/logs"
start_collector "$T/logs/*.log" --rotate-wait 1s
# a rotated file that is already there at the first scan is history and left
# alone (docs/INPUTS.md; rotation_startup_test.sh): under load the writer's
# first rotation (40 ms in) can beat a slowly starting collector, so write only
# after the first scan
wait_for 30 "the collector's first scan" grep -q 'first scan done' "$T/collector.log"
t0=$SECONDS
"$B/rotating-writer" --file "$T/logs/app.log" --lines $N --rotate-every 1000 --mode rename \
  --rate 25000 || fail "writer failed"
wrote=$((SECONDS - t0))
wait_for 120 "$N records stored" stored_at_least $N
took=$((SECONDS - t0))
assert_exactly_once $N
pass "$N lines across $(ls "$T/logs" | wc -l) rotated files stored exactly once (write ${wrote}s, stored after ${took}s)"
grep -q 'was rotated to' "$T/collector.log" || fail "no rotation was logged"
stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
