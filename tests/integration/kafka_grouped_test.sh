#!/usr/bin/env bash
# kafka_grouped_test.sh: --kafka-records-per-message 500. 50,000 CRI lines
# from 4 files go collector -> aggregator -> (mock) Kafka; a real consumer
# (kafka-count) reading along must see every record exactly once by seq, in
# far fewer messages than records, each message's headers (cairn-first-seq,
# cairn-last-seq, cairn-count) matching its JSON lines, and the "kafka"
# cursor must reach the last stored seq, while the (mock) cluster answers
# two bursts of Produce requests with retriable errors (mock-kafka --control,
# as in fault_kafka_errors_test.sh), with the producer settings an operator
# gets by default (no --kafka-property: grouped mode itself sets one Produce
# request in flight per connection). Then every broker goes down while
# 20,000 more lines are stored (until the aggregator has logged the outage),
# and comes back: the consumer must see
# all 70,000 records (duplicates after the outage are allowed: at-least-once).
. "$(dirname "$0")/lib.sh"

N=50000
M=20000
PER=500
# grouped messages need no environment switch any more
unset CAIRN_EXPERIMENTAL_KAFKA_GROUPING
certs
start mock-kafka "$B/mock-kafka" --port-file "$T/kafka.addr" --partitions 4 --control "$T/kafka.ctl"
wait_for 30 "mock Kafka to listen" test -s "$T/kafka.addr"
KAFKA=$(cat "$T/kafka.addr")
# No --kafka-property: with several Produce requests in flight, librdkafka's
# mock cluster (2.0.2) appended a later batch of a partition although an
# earlier batch of the same producer failed (an injected error), which a
# real broker refuses as OUT_OF_ORDER_SEQUENCE_NUMBER; the idempotent
# producer then reported the earlier batch delivered ("implicitly acked",
# offset -1001) and its records were never in the topic (docs/OPERATIONS.md).
# Grouped mode defaults to one request in flight per connection, so the
# defaults must pass this; the start line says what is in effect.
start_aggregator --kafka-brokers "$KAFKA" --kafka-topic cairn-records \
  --kafka-records-per-message $PER --metrics-listen 127.0.0.1:0 --metrics-port-file "$T/metrics.addr"
wait_for 30 "metrics to listen" test -s "$T/metrics.addr"
MADDR=$(cat "$T/metrics.addr")
metric() { curl -s --max-time 2 "http://$MADDR/metrics" | awk -v k="$1" '$1==k {print $2}'; }
cursor_at() { [ "$(metric cairn_aggregator_kafka_cursor)" = "$1" ]; }
wait_for 10 "the forwarder's start line" grep -q "$PER record(s) per message" "$T/aggregator.log"
grep -q "$PER record(s) per message as JSON, 1 request(s) in flight per connection" "$T/aggregator.log" ||
  fail "grouped mode did not default to one request in flight: $(grep 'kafka forwarding' "$T/aggregator.log")"
pass "grouped messages start without an environment switch, one Produce request in flight by default"

# a real consumer reads along from the start
"$B/kafka-count" --brokers "$KAFKA" --topic cairn-records --expect $N --timeout-ms 120000 \
  >"$T/kafka1.out" 2>"$T/kafka-count1.log" &
KC=$!
PIDS+=("$KC")
mkdir -p "$T/logs"
start_collector "$T/logs/*.log"
# 5,000 lines/s (10 s) and bursts after 5,000 and 15,000 stored lines, so
# records are still being produced after each burst: an injected error is
# served only to a Produce request (a retry counts), one at a time here
start gen "$B/gen-cri" --dir "$T/logs" --files 4 --lines $N --rate 5000
served_at_least() { [ "$(grep -c 'every injected Produce error was served' "$T/mock-kafka.log")" -ge "$1" ]; }
errs=(NOT_LEADER_FOR_PARTITION,REQUEST_TIMED_OUT NOT_ENOUGH_REPLICAS_AFTER_APPEND,LEADER_NOT_AVAILABLE)
for i in 0 1; do
  wait_for 60 "$((i * 10000 + 5000)) records stored" stored_at_least $((i * 10000 + 5000))
  echo "produce-errors 20 ${errs[$i]} 50" >"$T/kafka.ctl.tmp"
  mv "$T/kafka.ctl.tmp" "$T/kafka.ctl"
  wait_for 10 "mock-kafka to take burst $((i + 1))" test ! -e "$T/kafka.ctl"
  wait_for 60 "the producer to be served burst $((i + 1))" served_at_least $((i + 1))
done
pass "2 bursts of 20 Produce errors injected while grouped messages were produced"
wait "$PID_gen" || fail "gen-cri failed"
wait_for 120 "$N records stored" stored_at_least $N
assert_exactly_once $N
wait_for 60 "the kafka cursor to reach seq $N" cursor_at $N
pass "$N lines stored exactly once; the kafka cursor reached seq $N"

rc=0
wait "$KC" || rc=$?
out=$(cat "$T/kafka1.out")
msgs=$(sed -n 's/.*messages=\([0-9]*\).*/\1/p' <<<"$out")
recs=$(sed -n 's/.*records=\([0-9]*\).*/\1/p' <<<"$out")
distinct=$(sed -n 's/.*distinct_seq=\([0-9]*\).*/\1/p' <<<"$out")
bad=$(sed -n 's/.*bad_groups=\([0-9]*\).*/\1/p' <<<"$out")
[ -n "$distinct" ] || fail "kafka-count printed no result (exit $rc): $out"
[ "$bad" -eq 0 ] || fail "$bad messages whose headers do not match their lines ($out)"
gaps=$(sed -n 's/.*offset_gaps=\([0-9]*\).*/\1/p' <<<"$out")
[ "$gaps" -eq 0 ] || fail "the consumer skipped offsets $gaps times ($out)"
[ "$recs" -eq $N ] && [ "$distinct" -eq $N ] ||
  fail "Kafka consumer saw $recs records, $distinct distinct, want exactly $N ($out)"
[ $rc -eq 0 ] || fail "kafka-count exited $rc: $out"
# 4 streams, groups end at a change of stream and at the end of a scan (and
# at 5,000 lines/s a scan finds about 60 records of a stream; 770-950
# messages measured): still far fewer messages than records
[ "$msgs" -le $((N / 25)) ] || fail "$msgs messages for $N records: not grouped ($out)"
pass "Kafka consumer saw each of the $N records exactly once in $msgs messages; headers match (after injected errors)"

# one grouped message, as a consumer sees it: JSON lines, one record each
"$B/kafka-count" --brokers "$KAFKA" --topic cairn-records --timeout-ms 30000 --print \
  >"$T/print.out" 2>"$T/kafka-count-print.log" || fail "kafka-count --print failed"
sed -n 1,3p "$T/print.out" | grep -q '^{"seq":[0-9]*,' ||
  fail "a message line is not a JSON record: $(head -c 300 "$T/print.out")"

# Kafka down while more records are stored; they are produced, grouped, when it returns
delivered_before=$(metric cairn_aggregator_kafka_delivered_total)
kill -USR1 "$PID_mock_kafka"
wait_for 10 "brokers down" grep -q 'brokers down' "$T/mock-kafka.log"
start gen2 "$B/gen-cri" --dir "$T/logs" --files 4 --lines $M --start $N
wait "$PID_gen2" || fail "gen-cri (second run) failed"
wait_for 120 "$((N + M)) records stored while Kafka is down" stored_at_least $((N + M))
cur=$(metric cairn_aggregator_kafka_cursor)
[ "$cur" -lt $((N + M)) ] || fail "the kafka cursor reached $cur while every broker was down"
wait_for 60 "the aggregator to log the outage" \
  grep -q 'kafka (brokers .*retrying\|kafka delivery of seq' "$T/aggregator.log"
kill -USR2 "$PID_mock_kafka"
wait_for 120 "the kafka cursor to reach seq $((N + M)) after the outage" cursor_at $((N + M))
assert_exactly_once $((N + M))
"$B/kafka-count" --brokers "$KAFKA" --topic cairn-records --expect $((N + M)) --timeout-ms 120000 \
  >"$T/kafka2.out" 2>"$T/kafka-count2.log" || true
out=$(cat "$T/kafka2.out")
recs=$(sed -n 's/.*records=\([0-9]*\).*/\1/p' <<<"$out")
distinct=$(sed -n 's/.*distinct_seq=\([0-9]*\).*/\1/p' <<<"$out")
bad=$(sed -n 's/.*bad_groups=\([0-9]*\).*/\1/p' <<<"$out")
[ -n "$distinct" ] || fail "kafka-count printed no result: $out"
[ "$bad" -eq 0 ] || fail "$bad messages whose headers do not match their lines ($out)"
[ "$distinct" -eq $((N + M)) ] || fail "Kafka consumer saw $distinct distinct records after the outage, want $((N + M)) ($out)"
delivered_after=$(metric cairn_aggregator_kafka_delivered_total)
[ "$delivered_after" -ge $((delivered_before + M)) ] ||
  fail "delivered counter went from $delivered_before to $delivered_after, want +$M at least"
pass "after a Kafka outage every one of the $((N + M)) records is in Kafka; duplicates: $((recs - distinct)) (at-least-once)"

stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
