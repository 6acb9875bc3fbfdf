#!/usr/bin/env bash
# query_request_timeout_test.sh: a client that completes the TLS handshake
# on the query port and never sends its QueryRequest holds a
# --query-max-conns slot only until the request deadline (10 s): with both
# slots of --query-max-conns 2 held by silent clients a real query is
# refused, then the aggregator drops the silent ones with a CAIRN_E_TIMEOUT
# line, and the same query succeeds.
. "$(dirname "$0")/lib.sh"

certs node-1 auditor
cat >"$T/acl.yaml" <<'EOF'
identities:
  auditor: {namespaces: ["*"], sources: [container, query]}
EOF
start_aggregator --query-listen 127.0.0.1:0 --query-acl "$T/acl.yaml" \
  --query-port-file "$T/query.addr" --query-max-conns 2
wait_for 30 "query port" test -s "$T/query.addr"
QA=$(cat "$T/query.addr")
remote() {
  "$B/cairn-query" search --server "$QA" --tls-cert "$T/pki/auditor.pem" \
    --tls-key "$T/pki/auditor.key" --tls-ca "$T/pki/ca.pem" "$@"
}
exited() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

# stdin of the silent clients: a FIFO this shell holds open, so they never
# see EOF and never send anything
mkfifo "$T/silence"
exec 7<>"$T/silence"
for i in 1 2; do
  start "silent$i" openssl s_client -connect "$QA" -cert "$T/pki/auditor.pem" \
    -key "$T/pki/auditor.key" -CAfile "$T/pki/ca.pem" -tls1_3 -ign_eof <"$T/silence"
done
t0=$SECONDS
# both handshakes done (s_client prints the peer certificate chain)
wait_for 30 "the silent clients' TLS handshakes" \
  bash -c "grep -q 'Verify return code: 0' '$T/silent1.log' && grep -q 'Verify return code: 0' '$T/silent2.log'"

rc=0
remote --limit 1 >/dev/null 2>"$T/refused.err" || rc=$?
[ $rc -eq 2 ] || fail "a third connection with --query-max-conns 2 held: exit $rc, want 2"
grep -q 'too many query connections (--query-max-conns)' "$T/aggregator.log" \
  || fail "no --query-max-conns refusal in the aggregator log"
pass "two silent TLS clients hold both --query-max-conns slots: a real query is refused (exit 2)"

wait_for 30 "the aggregator to drop both silent clients" \
  bash -c "[ \$(grep -c 'no QueryRequest within 10 s of connecting' '$T/aggregator.log') -ge 2 ]"
took=$((SECONDS - t0))
[ $took -ge 9 ] || fail "silent clients dropped after ${took}s, before the 10 s deadline"
wait_for 30 "the silent clients to see the connection closed" exited "$PID_silent1"
wait_for 30 "the silent clients to see the connection closed" exited "$PID_silent2"
grep 'no QueryRequest within' "$T/aggregator.log" | grep -q 'CAIRN_E_TIMEOUT' \
  || fail "the drop line does not name CAIRN_E_TIMEOUT"
rc=0
remote --limit 1 --output json >"$T/ok.out" 2>"$T/ok.err" || rc=$?
[ $rc -eq 0 ] || [ $rc -eq 1 ] || fail "query after the silent clients were dropped: exit $rc: $(cat "$T/ok.err")"
grep -q 'query search by auditor' "$T/aggregator.log" || fail "the query after the drop was not answered"
pass "silent clients dropped after ${took}s (request deadline 10 s, CAIRN_E_TIMEOUT); the slot serves a real query again"
exec 7>&-
stop aggregator || fail "aggregator did not exit 0"
FAILED=0
