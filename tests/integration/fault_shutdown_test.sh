#!/usr/bin/env bash
# fault_shutdown_test.sh: graceful shutdown of both daemons on SIGTERM with
# batches in flight: a backlog of 40,000 lines is shipped at full speed, then
# 160,000 more stream in (gen-cri --rate 10000: a batch closes every 100 ms, --batch-max-delay).
# The aggregator stops accepting, answers the batches it queued (commit, then
# Ack) and exits 0 within --shutdown-timeout; the collector stops reading,
# waits for the acks of everything it read, commits its checkpoints and exits
# 0 within its --shutdown-timeout, having read exactly as many lines as were
# acked. After restarts every line is stored exactly once.
. "$(dirname "$0")/lib.sh"

N=200000
BACKLOG=40000
TIMEOUT_S=5
certs
start_aggregator --shutdown-timeout ${TIMEOUT_S}s
PORT=${AGG##*:}
mkdir -p "$T/logs"
"$B/gen-cri" --dir "$T/logs" --files 4 --lines $BACKLOG >/dev/null || fail "gen-cri failed"
start_collector "$T/logs/*.log" --shutdown-timeout ${TIMEOUT_S}s
start gen "$B/gen-cri" --dir "$T/logs" --files 4 --lines $((N - BACKLOG)) --start $BACKLOG --rate 10000

ms() { date +%s%3N; }

# 1. the aggregator, mid-stream
wait_for 60 "the backlog streaming" stored_at_least 10000
t0=$(ms)
stop aggregator TERM || fail "aggregator did not exit 0 on SIGTERM with batches in flight"
took=$(($(ms) - t0))
at=$(stored_count)
[ "$at" -lt $N ] || fail "the stream was over before the SIGTERM: the test proves nothing"
[ $took -le $((TIMEOUT_S * 1000 + 1000)) ] || fail "aggregator took ${took} ms to stop (--shutdown-timeout ${TIMEOUT_S}s)"
grep -q 'shutting down (SIGTERM)' "$T/aggregator.log" || fail "no shutdown line in the aggregator log"
grep -q 'still unanswered after --shutdown-timeout' "$T/aggregator.log" \
  && fail "the aggregator did not answer its queued batches in time"
pass "aggregator stopped on SIGTERM in ${took} ms, exit 0, at $at of $N records"
cp "$T/aggregator.log" "$T/aggregator-run1.txt"
tries=0
until start_aggregator --listen "127.0.0.1:$PORT" --shutdown-timeout ${TIMEOUT_S}s &&
  [ "$(cat "$T/agg.addr")" = "$AGG" ]; do
  tries=$((tries + 1))
  [ $tries -lt 20 ] || fail "cannot restart the aggregator on port $PORT"
  sleep 0.2
done

# 2. the collector, mid-stream
wait_for 90 "streaming resumed" stored_at_least $((at + 15000))
t0=$(ms)
stop collector TERM || fail "collector did not exit 0 on SIGTERM with batches in flight"
took=$(($(ms) - t0))
at=$(stored_count)
[ "$at" -lt $N ] || fail "the stream was over before the SIGTERM: the test proves nothing"
[ $took -le $((TIMEOUT_S * 1000 + 1000)) ] || fail "collector took ${took} ms to stop (--shutdown-timeout ${TIMEOUT_S}s)"
grep -q 'not acked within' "$T/collector.log" && fail "the collector left batches unacked at shutdown"
stats=$(grep -o 'stopped: [0-9]* lines read, [0-9]* records acked' "$T/collector.log") \
  || fail "no final stats line in the collector log"
read -r _ lines _ _ acked _ _ <<<"$stats"
[ "$lines" -gt 0 ] && [ "$lines" -eq "$acked" ] || fail "collector stopped with unacked lines: $stats"
pass "collector stopped on SIGTERM in ${took} ms, exit 0, every line it read acked ($stats)"
cp "$T/collector.log" "$T/collector-run1.txt"

start_collector "$T/logs/*.log" --shutdown-timeout ${TIMEOUT_S}s
wait "$PID_gen" || fail "gen-cri failed"
wait_for 90 "$N records stored" stored_at_least $N
assert_exactly_once $N
pass "$N lines stored exactly once across a SIGTERM of each daemon"
stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
