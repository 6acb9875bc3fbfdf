#!/usr/bin/env bash
# failover_test.sh: a collector with two --aggregator addresses. The first
# aggregator is SIGKILLed mid-stream and stays down: the collector moves to the
# second one and everything it had not been acked arrives there. Each store
# holds no line twice, and together they hold every line (a line may be in
# both only if the first aggregator committed it but died before acking).
. "$(dirname "$0")/lib.sh"

N=60000
certs
start_aggregator
A1=$AGG
# a second aggregator with its own store
start aggregator2 "$B/cairn-aggregator" --data "$T/data2" --listen 127.0.0.1:0 \
  --port-file "$T/agg2.addr" --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
  --tls-ca "$T/pki/ca.pem" --no-sync
wait_for 30 "second aggregator to listen" test -s "$T/agg2.addr"
A2=$(cat "$T/agg2.addr")

mkdir -p "$T/logs"
start writer "$B/gen-cri" --dir "$T/logs" --files 2 --lines $N --rate 10000
start collector "$B/cairn-collector" --state "$T/state" --aggregator "$A1" --aggregator "$A2" \
  --server-name localhost --tls-cert "$T/pki/client.pem" --tls-key "$T/pki/client.key" \
  --tls-ca "$T/pki/ca.pem" --node-name node-1 --input "cri:$T/logs/*.log"
wait_for 60 "the first aggregator to store 10000 lines" stored_at_least 10000
stop aggregator KILL || true
pass "first aggregator killed after $(stored_count) lines"
wait "$PID_writer" || fail "generator failed"

count2() { "$B/cairn-query" search --data "$T/data2" --limit 0 --output json 2>/dev/null | wc -l; }
union_complete() {
  cat <("$B/cairn-query" search --data "$T/data" --limit 0 --output json 2>/dev/null) \
      <("$B/cairn-query" search --data "$T/data2" --limit 0 --output json 2>/dev/null) |
    grep -o 'seq=[0-9]\{8\}' | sort -u | wc -l | grep -qx "$N"
}
wait_for 180 "every line in one of the two stores" union_complete
"$B/cairn-query" search --data "$T/data" --limit 0 --output json | grep -o 'seq=[0-9]\{8\}' | sort >"$T/s1"
"$B/cairn-query" search --data "$T/data2" --limit 0 --output json | grep -o 'seq=[0-9]\{8\}' | sort >"$T/s2"
[ -z "$(uniq -d "$T/s1")" ] || fail "the first store holds a line twice"
[ -z "$(uniq -d "$T/s2")" ] || fail "the second store holds a line twice"
both=$(comm -12 "$T/s1" "$T/s2" | wc -l)
[ "$(wc -l <"$T/s2")" -gt 0 ] || fail "nothing reached the second aggregator"
grep -q "connected to aggregator $A2" "$T/collector.log" || fail "the collector never logged the failover to $A2"
pass "$N lines: $(wc -l <"$T/s1") in the first store, $(wc -l <"$T/s2") in the second, $both in both (committed by the first, unacked when it died)"
stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator2 || fail "second aggregator did not exit 0 on SIGTERM"
FAILED=0
