#!/usr/bin/env bash
# crash_test.sh: the collector is killed with SIGKILL 5 times at random
# moments while 100,000 CRI lines are written, and restarted each time. It
# resumes from the checkpoints it committed (only acked offsets are
# checkpointed), re-sends what was in flight, and the aggregator's dedupe by
# (instance, stream, end offset) drops the repeats: every line is stored
# exactly once.
. "$(dirname "$0")/lib.sh"

N=100000
certs
start_aggregator
mkdir -p "$T/logs"
start_collector "$T/logs/*.log"
start writer "$B/rotating-writer" --file "$T/logs/app.log" --lines $N --rate 10000
RANDOM=$$
for i in 1 2 3 4 5; do
  # a random moment 0.3-1.5 s from now: mid-read, mid-batch, mid-commit
  sleep "$(printf '0.%03d' $((RANDOM % 1000)))"
  sleep 0.3
  stop collector KILL 2>/dev/null || true
  cp "$T/collector.log" "$T/collector-run$i.txt"
  before=$(stored_count)
  start_collector "$T/logs/*.log"
  echo "kill $i: $before records stored before the restart"
done
wait "$PID_writer" || fail "writer failed"
wait_for 120 "$N records stored" stored_at_least $N
assert_exactly_once $N
pass "$N lines stored exactly once across 5 SIGKILLs of the collector"
stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
