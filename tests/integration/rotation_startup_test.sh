#!/usr/bin/env bash
# rotation_startup_test.sh: the boundary of the first scan. A file rotated
# away before the collector's first scan, without a checkpoint, is history:
# it is left alone and the "first scan done" line says so, naming it. A
# rotation after the first scan is followed: the renamed file is drained and
# the new one read from its start. (This is the interleaving that made
# rotation_test and copytruncate_test lose their first 1,000 lines under
# load, when the writer started before the collector had scanned.)
. "$(dirname "$0")/lib.sh"

certs
start_aggregator
mkdir -p "$T/logs"
# before the collector starts: seq 0..999 written and rotated to app.log.1,
# seq 1000..1499 in the live app.log
"$B/rotating-writer" --file "$T/logs/app.log" --lines 1500 --rotate-every 1000 --mode rename \
  || fail "writer failed"
start_collector "$T/logs/*.log" --rotate-wait 1s
wait_for 30 "the collector's first scan" grep -q 'first scan done' "$T/collector.log"
grep -q "first scan done: following 1 files; 1 rotated files .*(e\.g\. $T/logs/app\.log\.1)" \
  "$T/collector.log" || fail "the first scan did not report app.log.1 as left alone: $(grep 'first scan' "$T/collector.log")"
pass "the first scan follows app.log and reports app.log.1 (rotated before it) as left alone"

# after the first scan: rename + create, seq 1500..1999 in the new app.log
mv "$T/logs/app.log" "$T/logs/app.log.2"
"$B/rotating-writer" --file "$T/logs/app.log" --lines 500 --start 1500 || fail "writer failed"
wait_for 60 "1000 records stored" stored_at_least 1000
stop collector || fail "collector did not exit 0 on SIGTERM"
assert_exactly_once 1000
if grep -q 'seq=00000[0-9][0-9][0-9] ' "$T/all.jsonl"; then
  fail "lines of app.log.1 were read although it was rotated before the first scan"
fi
grep -q "was rotated to $T/logs/app.log.2" "$T/collector.log" || fail "the rotation to app.log.2 was not seen"
if grep -q "tailing $T/logs/app.log.1 " "$T/collector.log"; then fail "app.log.1 was opened"; fi
pass "seq 1000..1999 stored exactly once (app.log drained as app.log.2, the new app.log read); seq 0..999 of app.log.1 not read"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
