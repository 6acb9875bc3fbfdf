#!/usr/bin/env bash
# aggregator_restart_test.sh: the aggregator is SIGKILLed twice while 100,000
# CRI lines are written at a steady rate, and restarted on the same port and
# data dir each time. The collector keeps every unacked batch, reconnects with
# backoff and re-sends; the aggregator acks only committed batches and its
# dedupe drops what it had already stored: every line is stored exactly once.
. "$(dirname "$0")/lib.sh"

N=100000
RATE=${RATE:-12500} # lines/s: the write takes 8 s
certs
start_aggregator
PORT=${AGG##*:}
mkdir -p "$T/logs"
start_collector "$T/logs/*.log"
start writer "$B/gen-cri" --dir "$T/logs" --files 2 --lines $N --rate $RATE --partial-every 500
for i in 1 2; do
  # mid-stream: after about a quarter, then about two thirds, of the lines
  want=$((N * (i == 1 ? 25 : 65) / 100))
  wait_for 60 "$want records stored before kill $i" stored_at_least $want
  stop aggregator KILL 2>/dev/null || true
  before=$(stored_count)
  echo "kill $i: $before records stored when the aggregator was killed"
  sleep 0.5 # the collector notices, backs off, retries
  restart_aggregator "$PORT"
done
wait "$PID_writer" || fail "writer failed"
wait_for 90 "$N records stored" stored_at_least $N
assert_exactly_once $N
grep -q 'reconnecting to' "$T/collector.log" || fail "the collector never noticed the aggregator went away"
pass "$N lines stored exactly once across 2 SIGKILLs of the aggregator"
stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
