#!/usr/bin/env bash
# fault_kafka_down_test.sh: every broker of the (mock) Kafka cluster goes down
# for 30 s in the middle of a stream (SIGUSR1 to mock-kafka) and comes back
# (SIGUSR2). Ingest into LMDB does not wait for Kafka; the forwarder runs from
# its LMDB cursor, so records pile up in storage meanwhile and are produced
# when the brokers return. Asserted: every line stored exactly once, and a
# real consumer reading along sees every record (no record missing). Delivery
# into Kafka is at-least-once by design (docs/RELIABILITY.md): duplicates are
# reported, not failed.
. "$(dirname "$0")/lib.sh"

N=80000
RATE=2000 # the stream lasts 40 s, the outage 5 s .. 35 s
certs
start_kafka
start_aggregator --kafka-brokers "$KAFKA" --kafka-topic cairn-records
# a real consumer reads along from the start (the mock cluster keeps only the
# last ~5 MB of each partition, so it must not fall far behind)
"$B/kafka-count" --brokers "$KAFKA" --topic cairn-records --expect $N --timeout-ms 110000 \
  >"$T/kafka.out" 2>"$T/kafka-count.log" &
KC=$!
PIDS+=("$KC")
mkdir -p "$T/logs"
start_collector "$T/logs/*.log"
start gen "$B/gen-cri" --dir "$T/logs" --files 4 --lines $N --rate $RATE

wait_for 30 "first records stored" stored_at_least 5000
kill -USR1 "$PID_mock_kafka"
down_at=$(stored_count)
sleep 30
up_at=$(stored_count)
kill -USR2 "$PID_mock_kafka"
echo "brokers down for 30 s: $down_at records stored when they went down, $up_at when they came back"
[ "$up_at" -gt $((down_at + 10000)) ] || fail "ingest stalled while Kafka was down ($down_at -> $up_at)"
grep -q 'brokers down' "$T/mock-kafka.log" || fail "mock-kafka did not take the brokers down"

wait "$PID_gen" || fail "gen-cri failed"
wait_for 60 "$N records stored" stored_at_least $N
assert_exactly_once $N
pass "$N lines stored exactly once; ingest went on while Kafka was down"

rc=0
wait "$KC" || rc=$?
out=$(cat "$T/kafka.out")
msgs=$(sed -n 's/.*messages=\([0-9]*\).*/\1/p' <<<"$out")
distinct=$(sed -n 's/.*distinct_seq=\([0-9]*\).*/\1/p' <<<"$out")
[ -n "$distinct" ] || fail "kafka-count printed no result (exit $rc): $out"
[ "$distinct" -eq $N ] || fail "Kafka consumer saw $distinct distinct records, want $N ($out)"
dups=$((msgs - distinct))
pass "Kafka consumer saw every one of the $N records after a 30 s outage; duplicates: $dups (at-least-once)"
grep -q 'kafka (brokers .*retrying\|kafka delivery of seq' "$T/aggregator.log" \
  || fail "the aggregator logged nothing about the Kafka outage"

stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
