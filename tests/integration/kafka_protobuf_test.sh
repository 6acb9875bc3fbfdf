#!/usr/bin/env bash
# kafka_protobuf_test.sh: --kafka-format protobuf. 6,000 CRI lines go
# collector -> aggregator (one record per message) -> (mock) Kafka, then the
# aggregator is restarted with --kafka-records-per-message 250 and 14,000
# more lines follow in grouped messages. A real consumer (kafka-count) must
# read every record once by seq, every value must decode as a
# cairn.RecordBatch with header cairn-format: protobuf and headers that match
# its records, and the records it read, written as records.bin, must be
# byte for byte the records.bin of a verified `cairn-query export` of the
# whole store: Kafka holds exactly the bytes the hash chain covers.
. "$(dirname "$0")/lib.sh"

N1=6000
N2=14000
N=$((N1 + N2))
certs
start_kafka
start_aggregator --kafka-brokers "$KAFKA" --kafka-format protobuf --sign-interval 300ms
cp "$T/data/signing.pub" "$T/auditor.pub"
wait_for 10 "the forwarder's start line" grep -q "kafka forwarding to topic" "$T/aggregator.log"
grep -q "1 record(s) per message as protobuf" "$T/aggregator.log" ||
  fail "start line does not name the format: $(grep 'kafka forwarding' "$T/aggregator.log")"
PORT=${AGG##*:}

mkdir -p "$T/logs"
"$B/gen-cri" --dir "$T/logs" --files 3 --lines $N1
start_collector "$T/logs/*.log"
wait_for 120 "$N1 records stored" stored_at_least $N1
kafka_at() {
  "$B/kafka-count" --brokers "$KAFKA" --topic cairn-records --expect "$1" --timeout-ms 5000 \
    >/dev/null 2>&1
}
wait_for 120 "$N1 records in Kafka" kafka_at $N1
pass "$N1 records forwarded one per message as protobuf"

stop aggregator
restart_aggregator "$PORT" --kafka-brokers "$KAFKA" --kafka-format protobuf \
  --kafka-records-per-message 250 --sign-interval 300ms
wait_for 10 "the forwarder's start line" grep -q "250 record(s) per message as protobuf" "$T/aggregator.log"
"$B/gen-cri" --dir "$T/logs" --files 2 --lines $N2 --start $N1 --seed 2
wait_for 120 "$N records stored" stored_at_least $N
assert_exactly_once $N
wait_for 120 "$N records in Kafka" kafka_at $N
pass "$N2 more records forwarded 250 per message"

"$B/kafka-count" --brokers "$KAFKA" --topic cairn-records --expect $N --timeout-ms 60000 \
  --records-bin "$T/kafka.bin" >"$T/kafka.out" 2>"$T/kafka-count.log" ||
  fail "kafka-count: $(cat "$T/kafka.out" "$T/kafka-count.log")"
out=$(cat "$T/kafka.out")
msgs=$(sed -n 's/.*messages=\([0-9]*\).*/\1/p' <<<"$out")
bad=$(sed -n 's/.*bad_groups=\([0-9]*\).*/\1/p' <<<"$out")
[ "$bad" -eq 0 ] || fail "$bad values that are not RecordBatches matching their headers ($out)"
# one message per record for the first part, 250 per message after: far
# fewer messages than records, more than the first part alone
[ "$msgs" -ge "$N1" ] && [ "$msgs" -lt $((N1 + N2 / 10)) ] ||
  fail "$msgs messages for $N records ($N1 single, then groups of up to 250)"
pass "kafka-count: $out"

all_signed() {
  "$B/cairn-query" verify --data "$T/data" --public-key "$T/auditor.pub" >"$T/verify.out" 2>&1 &&
    grep -q "unsigned:     0 records" "$T/verify.out"
}
wait_for 30 "a checkpoint covering every record" all_signed
"$B/cairn-query" export --data "$T/data" --out "$T/bundle" --source container \
  --public-key "$T/auditor.pub" >"$T/export.out" 2>"$T/export.err" ||
  fail "export failed: $(cat "$T/export.out" "$T/export.err")"
grep -q "(verified)" "$T/export.out" || fail "export did not verify: $(cat "$T/export.out")"
cmp "$T/bundle/records.bin" "$T/kafka.bin" ||
  fail "Kafka's records differ from the exported store records ($(stat -c %s "$T/bundle/records.bin") vs $(stat -c %s "$T/kafka.bin") bytes)"
pass "Kafka's $N records are byte for byte the verified export's records.bin"
