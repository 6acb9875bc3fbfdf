#!/usr/bin/env bash
# pipeline_test.sh: the whole pipeline with real processes on loopback:
# mock Kafka + cairn-aggregator + cairn-collector over mutual TLS; 100,000 CRI
# lines across 4 files must be stored exactly once, be found by cairn-query,
# and arrive in Kafka exactly once.
. "$(dirname "$0")/lib.sh"

N=100000
certs
start_kafka
start_aggregator --kafka-brokers "$KAFKA" --kafka-topic cairn-records
# a real consumer reads along from the start (the mock cluster keeps only the
# last ~5 MB of each partition, so it must not fall far behind)
"$B/kafka-count" --brokers "$KAFKA" --topic cairn-records --expect $N --timeout-ms 400000 \
  >"$T/kafka.out" 2>"$T/kafka-count.log" &
KC=$!
PIDS+=("$KC")
mkdir -p "$T/logs"
# first half, then a collector restart (resume from checkpoints), then the rest
"$B/gen-cri" --dir "$T/logs" --files 4 --lines $((N / 2)) --partial-every 1000
start_collector "$T/logs/*.log"
wait_for 240 "first half stored" stored_at_least $((N / 2))
stop collector || fail "collector did not exit 0 on SIGTERM"
"$B/gen-cri" --dir "$T/logs" --files 4 --lines $((N / 2)) --start $((N / 2)) --partial-every 1000
start_collector "$T/logs/*.log"

wait_for 240 "$N records stored" stored_at_least $N
"$B/cairn-query" search --data "$T/data" --limit 0 --output json >"$T/all.jsonl"
got=$(wc -l <"$T/all.jsonl")
[ "$got" -eq $N ] || fail "stored $got records, want $N"
dups=$(grep -o 'seq=[0-9]\{8\}' "$T/all.jsonl" | sort | uniq -d | wc -l)
uniq=$(grep -o 'seq=[0-9]\{8\}' "$T/all.jsonl" | sort -u | wc -l)
[ "$dups" -eq 0 ] || fail "$dups lines stored more than once"
[ "$uniq" -eq $N ] || fail "only $uniq distinct lines stored, want $N"
pass "$N lines stored exactly once"

grep -q '"node":"node-1"' "$T/all.jsonl" || fail "records lack the node name"
grep -q '"identity":"node-1"' "$T/all.jsonl" || fail "records lack the certificate identity"

# find one chosen line by pod and by text
line=$(grep -m1 'seq=00054321' "$T/all.jsonl")
pod=$(sed -n 's/.*"pod":"\([^"]*\)".*/\1/p' <<<"$line")
[ -n "$pod" ] || fail "record has no pod: $line"
out=$("$B/cairn-query" search --data "$T/data" --pod "$pod" --grep 'seq=00054321' --output json)
[ "$(wc -l <<<"$out")" -eq 1 ] || fail "query by pod+text returned: $out"
grep -q 'seq=00054321' <<<"$out" || fail "wrong record: $out"
"$B/cairn-query" search --data "$T/data" --grep 'seq=00054321' --output text | grep -q "$pod" \
  || fail "text query does not show the pod"
rc=0
"$B/cairn-query" search --data "$T/data" --pod "$pod" --grep 'no-such-line' >/dev/null || rc=$?
[ $rc -eq 1 ] || fail "no match must exit 1, got $rc"
pass "cairn-query finds the chosen line by pod and by text"

wait "$KC" || fail "Kafka: $(cat "$T/kafka.out")"
pass "Kafka consumer read exactly $N records ($(cat "$T/kafka.out"))"

stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
