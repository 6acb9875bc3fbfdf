#!/usr/bin/env bash
# fault_kafka_errors_test.sh: the (mock) Kafka cluster answers bursts of
# Produce requests with retriable errors (NOT_LEADER_FOR_PARTITION,
# REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS, LEADER_NOT_AVAILABLE, ...) several
# times in the middle of a stream, injected with
# rd_kafka_mock_push_request_errors through mock-kafka --control. The
# idempotent producer must retry them without losing, reordering or wedging:
# every line stored exactly once, a real consumer sees every record, and the
# "kafka" cursor in LMDB reaches the last stored seq.
. "$(dirname "$0")/lib.sh"

N=80000
RATE=4000 # the stream lasts 20 s
BURSTS=5
certs
start mock-kafka "$B/mock-kafka" --port-file "$T/kafka.addr" --partitions 4 --control "$T/kafka.ctl"
wait_for 30 "mock Kafka to listen" test -s "$T/kafka.addr"
KAFKA=$(cat "$T/kafka.addr")
start_aggregator --kafka-brokers "$KAFKA" --kafka-topic cairn-records \
  --metrics-listen 127.0.0.1:0 --metrics-port-file "$T/metrics.addr"
wait_for 30 "metrics endpoint" test -s "$T/metrics.addr"
METRICS=$(cat "$T/metrics.addr")
metric() { curl -sf "http://$METRICS/metrics" | sed -n "s/^$1 \([0-9]*\)$/\1/p"; }

"$B/kafka-count" --brokers "$KAFKA" --topic cairn-records --expect $N --timeout-ms 120000 \
  >"$T/kafka.out" 2>"$T/kafka-count.log" &
KC=$!
PIDS+=("$KC")
mkdir -p "$T/logs"
start_collector "$T/logs/*.log"
start gen "$B/gen-cri" --dir "$T/logs" --files 4 --lines $N --rate $RATE

# inject a burst whenever another 8,000 records have been stored, all within
# the first half of the stream: an injected error is served only to a Produce
# request (a retry counts), so records must still be coming after the last
# burst (gen-cri writes the other 40,000 lines over 10 s)
errs=(NOT_LEADER_FOR_PARTITION,REQUEST_TIMED_OUT
  NOT_ENOUGH_REPLICAS,LEADER_NOT_AVAILABLE
  REQUEST_TIMED_OUT,NOT_ENOUGH_REPLICAS_AFTER_APPEND
  NOT_LEADER_FOR_PARTITION,NOT_ENOUGH_REPLICAS,REQUEST_TIMED_OUT
  LEADER_NOT_AVAILABLE,NOT_LEADER_FOR_PARTITION)
# served_at_least K: the producer was served every error of K bursts
served_at_least() { [ "$(grep -c 'every injected Produce error was served' "$T/mock-kafka.log")" -ge "$1" ]; }
for i in $(seq 0 $((BURSTS - 1))); do
  wait_for 60 "$(((i + 1) * 8000)) records stored" stored_at_least $(((i + 1) * 8000))
  echo "produce-errors 20 ${errs[$i]} 50" >"$T/kafka.ctl.tmp"
  mv "$T/kafka.ctl.tmp" "$T/kafka.ctl"
  wait_for 10 "mock-kafka to take burst $((i + 1))" test ! -e "$T/kafka.ctl"
  # the producer must run into every injected error (and get past them)
  wait_for 60 "the producer to be served burst $((i + 1))" served_at_least $((i + 1))
done
pushed=$(grep -c 'pushed 20 Produce errors' "$T/mock-kafka.log" || true)
[ "$pushed" -eq $BURSTS ] || fail "mock-kafka pushed $pushed error bursts, want $BURSTS"
pass "$BURSTS bursts of 20 Produce errors injected mid-stream and served to the producer"

wait "$PID_gen" || fail "gen-cri failed"
wait_for 90 "$N records stored" stored_at_least $N
assert_exactly_once $N
pass "$N lines stored exactly once while Kafka answered $BURSTS bursts of Produce errors"

rc=0
wait "$KC" || rc=$?
out=$(cat "$T/kafka.out")
msgs=$(sed -n 's/.*messages=\([0-9]*\).*/\1/p' <<<"$out")
distinct=$(sed -n 's/.*distinct_seq=\([0-9]*\).*/\1/p' <<<"$out")
[ -n "$distinct" ] || fail "kafka-count printed no result (exit $rc): $out"
[ "$distinct" -eq $N ] || fail "Kafka consumer saw $distinct distinct records, want $N ($out)"
pass "Kafka consumer saw all $N records; duplicates: $((msgs - distinct)) (at-least-once)"

# the cursor (committed in LMDB) reaches the last stored seq: a fresh store
# numbers records 1..N
cursor_at() { [ "$(metric cairn_aggregator_kafka_cursor)" = "$1" ]; }
wait_for 60 "kafka cursor to reach seq $N" cursor_at $N
failed=$(metric cairn_aggregator_kafka_failed_total)
pass "kafka cursor at seq $N; failed delivery reports: ${failed:-?} (retried by librdkafka or produced again)"
if grep -q 'fatal error' "$T/aggregator.log"; then fail "the producer hit a fatal error"; fi

stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
