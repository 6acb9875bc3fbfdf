#!/usr/bin/env bash
# fault_aggregator_kill_test.sh: the aggregator is killed with SIGKILL 5 times
# at random moments while 200,000 CRI lines are written (gen-cri --rate), and
# restarted on the same port each time. The collector keeps every unacked
# batch (acks come only after the LMDB commit), reconnects with backoff and
# re-sends; the aggregator's dedupe by (instance, stream, offset), which lives
# in the same LMDB transactions as the records, drops what it had already
# committed before the kill: every line is stored exactly once.
. "$(dirname "$0")/lib.sh"

N=200000
RATE=10000
certs
start_aggregator
PORT=${AGG##*:}
mkdir -p "$T/logs"
start_collector "$T/logs/*.log"
start gen "$B/gen-cri" --dir "$T/logs" --files 4 --lines $N --rate $RATE

# restart_aggregator: same data dir, same port (the collector has only this address)
restart_aggregator() {
  local tries=0
  until start_aggregator --listen "127.0.0.1:$PORT" && [ "$(cat "$T/agg.addr")" = "$AGG" ]; do
    tries=$((tries + 1))
    [ $tries -lt 20 ] || fail "cannot restart the aggregator on port $PORT"
    sleep 0.2
  done
}

RANDOM=$$
for i in 1 2 3 4 5; do
  # a random moment 1.0-3.0 s from now (the stream lasts N/RATE = 20 s)
  sleep "$((1 + RANDOM % 2)).$(printf '%03d' $((RANDOM % 1000)))"
  before=$(stored_count)
  stop aggregator KILL 2>/dev/null || true
  cp "$T/aggregator.log" "$T/aggregator-run$i.txt"
  # down for a moment: connects are refused meanwhile
  sleep "0.$(printf '%03d' $((RANDOM % 1000)))"
  restart_aggregator
  echo "kill $i: $before records stored before the kill"
done
wait "$PID_gen" || fail "gen-cri failed"
wait_for 100 "$N records stored" stored_at_least $N
assert_exactly_once $N
grep -q 'lost connection to aggregator\|cannot connect to aggregator' "$T/collector.log" \
  || fail "the collector never noticed the kills"
pass "$N lines stored exactly once across 5 SIGKILLs of the aggregator"
stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
