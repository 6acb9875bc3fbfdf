#!/usr/bin/env bash
# unreadable_test.sh: a log file the collector may not read (tests run as root,
# so the collector runs as "nobody" here, via setpriv) gets one specific
# message naming the file and the fix, and every line of the readable files
# next to it is stored exactly once.
. "$(dirname "$0")/lib.sh"

id nobody >/dev/null 2>&1 || fail "this test needs the 'nobody' user"
command -v setpriv >/dev/null || fail "this test needs setpriv (util-linux)"
certs
start_aggregator
chmod 755 "$T"
# everything the unprivileged collector needs lives in a dir it owns
U="$T/nobody"
mkdir -p "$U/logs" "$U/state"
cp "$B/cairn-collector" "$U/cairn-collector"
cp "$T/pki/client.pem" "$T/pki/client.key" "$T/pki/ca.pem" "$U/"
"$B/rotating-writer" --file "$U/logs/good.log" --lines 500 || fail "writer failed"
"$B/rotating-writer" --file "$U/logs/secret.log" --lines 10 --start 9000 || fail "writer failed"
chown -R nobody "$U"
chmod 700 "$U/state"
chmod 600 "$U/client.key"
chown root "$U/logs/secret.log"
chmod 000 "$U/logs/secret.log"

start collector setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
  "$U/cairn-collector" --state "$U/state" --aggregator "$AGG" --server-name localhost \
  --tls-cert "$U/client.pem" --tls-key "$U/client.key" --tls-ca "$U/ca.pem" \
  --node-name node-1 --input "cri:$U/logs/*.log"
wait_for 60 "the readable file stored" stored_at_least 500
wait_for 30 "a message about the unreadable file" \
  grep -q "cannot follow $U/logs/secret.log: .*permission denied.*check permissions" "$T/collector.log"
pass "unreadable file named in one specific message"

"$B/rotating-writer" --file "$U/logs/good.log" --lines 100 --start 500 || fail "writer failed"
wait_for 60 "appended lines stored" stored_at_least 600
assert_exactly_once 600
pass "600 lines of the readable file stored exactly once next to the unreadable one"
stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
