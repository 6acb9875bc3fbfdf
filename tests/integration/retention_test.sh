#!/usr/bin/env bash
# retention_test.sh: hot retention never prunes what Kafka has not
# acknowledged. The aggregator runs with --retention 2s while every (mock)
# Kafka broker is down: the records expire but stay in LMDB. When the
# brokers come back the forwarder delivers them, the kafka cursor advances,
# and only then are they pruned; a real consumer sees every one of them, and
# `cairn-query verify` still accepts the pruned store. Without Kafka the
# aggregator warns at start that retention prunes by age alone.
. "$(dirname "$0")/lib.sh"

N=20000
certs
start_kafka
kill -USR1 "$PID_mock_kafka" # every broker down before the first record
wait_for 10 "mock-kafka to take the brokers down" grep -q 'brokers down' "$T/mock-kafka.log"
start_aggregator --kafka-brokers "$KAFKA" --kafka-topic cairn-records --retention 2s \
  --sign-interval 1s --metrics-listen 127.0.0.1:0 --metrics-port-file "$T/metrics.addr"
wait_for 30 "metrics endpoint" test -s "$T/metrics.addr"
METRICS=$(cat "$T/metrics.addr")
metric() { curl -sf "http://$METRICS/metrics" | sed -n "s/^$1 \([0-9]*\)$/\1/p"; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }
grep -q 'retention 2s: records older than that are deleted .* once Kafka acknowledged' \
  "$T/aggregator.log" || fail "the aggregator did not log what --retention does"

mkdir -p "$T/logs"
start_collector "$T/logs/*.log"
start gen "$B/gen-cri" --dir "$T/logs" --files 4 --lines $N
wait "$PID_gen" || fail "gen-cri failed"
wait_for 60 "$N records stored" stored_at_least $N
assert_exactly_once $N
pass "$N lines stored exactly once while Kafka is down"

# the records expire 2 s after their commit; the writer runs a prune step at
# least every second. Watch for 3 times the retention: nothing may go.
t_end=$((SECONDS + 6))
while [ $SECONDS -lt $t_end ]; do
  got=$(stored_count)
  [ "$got" -eq $N ] || fail "$((N - got)) records pruned although Kafka never acknowledged them"
  metric_is cairn_aggregator_pruned_records_total 0 || fail "pruned_records_total moved while Kafka was down"
  sleep 0.5
done
metric_is cairn_aggregator_kafka_cursor 0 || fail "kafka cursor moved while the brokers were down"
metric_is cairn_aggregator_oldest_retained_seq 1 || fail "oldest retained seq is not 1"
pass "nothing pruned during 6 s although every record is past --retention 2s (Kafka down)"

kill -USR2 "$PID_mock_kafka"
"$B/kafka-count" --brokers "$KAFKA" --topic cairn-records --expect $N --timeout-ms 90000 \
  >"$T/kafka.out" 2>"$T/kafka-count.log" &
KC=$!
PIDS+=("$KC")
wait_for 90 "kafka cursor to reach seq $N" metric_is cairn_aggregator_kafka_cursor $N
wait_for 60 "every record to be pruned" metric_is cairn_aggregator_pruned_records_total $N
metric_is cairn_aggregator_oldest_retained_seq $((N + 1)) || fail "oldest retained seq is not $((N + 1))"
got=$(stored_count || true) # cairn-query exits 1 when nothing matched
[ "$got" -eq 0 ] || fail "$got records still stored after pruning"
grep -q "retention: pruned .* records from" "$T/aggregator.log" || fail "no pruning logged"
pass "Kafka back: cursor at $N, then all $N records pruned from LMDB"

rc=0
wait "$KC" || rc=$?
out=$(cat "$T/kafka.out")
distinct=$(sed -n 's/.*distinct_seq=\([0-9]*\).*/\1/p' <<<"$out")
[ -n "$distinct" ] || fail "kafka-count printed no result (exit $rc): $out"
[ "$distinct" -eq $N ] || fail "Kafka consumer saw $distinct distinct records, want $N ($out)"
pass "Kafka consumer saw all $N pruned records"

stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"

"$B/cairn-query" verify --data "$T/data" --public-key "$T/data/signing.pub" >"$T/verify.out" \
  2>"$T/verify.log" || fail "verify of the pruned store failed: $(cat "$T/verify.out" "$T/verify.log")"
grep -q '^verify: OK' "$T/verify.out" || fail "verify did not say OK: $(cat "$T/verify.out")"
grep -q "pruned: *$N records (up to seq $N)" "$T/verify.out" \
  || fail "verify did not report the $N pruned records: $(cat "$T/verify.out")"
pass "cairn-query verify: OK on the pruned store ($N records pruned, reported)"

# without Kafka, --retention prunes by age alone: the aggregator says so
start agg2 "$B/cairn-aggregator" --data "$T/data2" --listen 127.0.0.1:0 \
  --port-file "$T/agg2.addr" --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
  --tls-ca "$T/pki/ca.pem" --no-sync --retention 7d
wait_for 30 "second aggregator to listen" test -s "$T/agg2.addr"
grep -q 'retention 604800s without --kafka-brokers: records older than that are deleted .* by age alone' \
  "$T/agg2.log" || fail "no warning that retention without Kafka prunes by age alone"
stop agg2 || fail "second aggregator did not exit 0"
pass "without Kafka the aggregator warns that retention prunes by age alone"
FAILED=0
