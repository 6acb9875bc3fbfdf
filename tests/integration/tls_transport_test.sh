#!/usr/bin/env bash
# tls_transport_test.sh: transport controls with the real binaries:
#  - a TLS key readable by group/others stops both daemons at start, naming
#    the file and "chmod 600 FILE";
#  - SIGHUP reloads the aggregator's certificate without dropping the
#    established collector session (records keep flowing on it), a new
#    connection sees the new certificate (openssl s_client), and a broken
#    certificate on SIGHUP keeps the current one with a logged reason;
#  - SIGHUP on the collector reloads its files (and a bad key is refused
#    there too, keeping the old one);
#  - TLS 1.2 is refused by default and accepted with --tls-min-version 1.2,
#    which is warned about at start.
. "$(dirname "$0")/lib.sh"

certs node-1

# ---- key permissions ----
cp "$T/pki/server.key" "$T/open.key"
chmod 640 "$T/open.key"
rc=0
"$B/cairn-aggregator" --data "$T/data-perm" --listen 127.0.0.1:0 --tls-cert "$T/pki/server.pem" \
  --tls-key "$T/open.key" --tls-ca "$T/pki/ca.pem" --no-sync >"$T/perm-agg.log" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "aggregator with a 0640 key exited $rc, want 2"
grep -qF "the private key is accessible by group or others (mode 0640): run chmod 600 $T/open.key" \
  "$T/perm-agg.log" || fail "aggregator does not name the key and the fix: $(cat "$T/perm-agg.log")"
cp "$T/pki/client.key" "$T/open-client.key"
chmod 604 "$T/open-client.key"
rc=0
"$B/cairn-collector" --state "$T/state-perm" --aggregator 127.0.0.1:9 \
  --tls-cert "$T/pki/client.pem" --tls-key "$T/open-client.key" --tls-ca "$T/pki/ca.pem" \
  --input "cri:$T/none/*.log" >"$T/perm-col.log" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "collector with a 0604 key exited $rc, want 2"
grep -qF "(mode 0604): run chmod 600 $T/open-client.key" "$T/perm-col.log" ||
  fail "collector does not name the key and the fix: $(cat "$T/perm-col.log")"
pass "keys readable by group/others are refused by both daemons"

# ---- reload while a session is established ----
# serial of the certificate a new connection gets
served_serial() {
  openssl s_client -connect "$AGG" -servername localhost -cert "$T/pki/client.pem" \
    -key "$T/pki/client.key" -CAfile "$T/pki/ca.pem" -verify_return_error </dev/null 2>/dev/null |
    openssl x509 -noout -serial
}
# a new server certificate from the same CA (so collectors keep trusting it)
new_server_cert() { # DIR
  mkdir -p "$1"
  (umask 077 && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/server.key" \
    -out "$1/server.csr" -subj "/CN=localhost" 2>/dev/null)
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$1/ext"
  openssl x509 -req -in "$1/server.csr" -CA "$T/pki/ca.pem" -CAkey "$T/pki/ca.key" \
    -CAcreateserial -out "$1/server.pem" -days 30 -extfile "$1/ext" 2>/dev/null
}
count_in() { grep -c "$1" "$2" || true; }

start_aggregator
mkdir -p "$T/logs"
line() { printf '2024-01-15T10:30:%02d.000000000Z stdout F %s\n' $(($1 % 60)) "reload line $1"; }
for i in $(seq 1 50); do line "$i"; done >>"$T/logs/app.log"
start_collector "$T/logs/*.log"
wait_for 30 "first 50 records stored" stored_at_least 50
[ "$(count_in 'session from' "$T/aggregator.log")" -eq 1 ] || fail "expected one session"
old=$(served_serial)
[ -n "$old" ] || fail "openssl s_client could not connect to $AGG"

new_server_cert "$T/pki2"
want=$(openssl x509 -in "$T/pki2/server.pem" -noout -serial)
[ "$want" != "$old" ] || fail "the new certificate has the old serial"
# rotate the files the way a Secret update does: replace, then signal
cp "$T/pki2/server.key" "$T/pki/server.key.new" && mv "$T/pki/server.key.new" "$T/pki/server.key"
cp "$T/pki2/server.pem" "$T/pki/server.pem.new" && mv "$T/pki/server.pem.new" "$T/pki/server.pem"
kill -HUP "$PID_aggregator"
wait_for 20 "aggregator reload logged" grep -q "TLS certificate, key and CA reloaded" "$T/aggregator.log"
got=$(served_serial)
[ "$got" = "$want" ] || fail "a new connection got $got, want the new certificate's $want"
pass "after SIGHUP a new connection gets the new certificate ($want, was $old)"

for i in $(seq 51 100); do line "$i"; done >>"$T/logs/app.log"
wait_for 30 "100 records stored after the reload" stored_at_least 100
[ "$(count_in 'session from' "$T/aggregator.log")" -eq 1 ] ||
  fail "the collector session was re-established (the reload dropped it)"
if grep -q "lost connection to aggregator" "$T/collector.log"; then
  fail "the collector lost its connection during the reload"
fi
pass "the established session kept flowing across the reload"

# a broken certificate: the current one stays
echo "not a certificate" >"$T/pki/server.pem"
kill -HUP "$PID_aggregator"
wait_for 20 "failed reload logged" grep -q "TLS reload failed, new connections keep the current certificate" \
  "$T/aggregator.log"
grep "TLS reload failed" "$T/aggregator.log" | grep -qF "$T/pki/server.pem" ||
  fail "the failed reload does not name the file"
got=$(served_serial)
[ "$got" = "$want" ] || fail "after a failed reload a new connection got $got, want $want"
cp "$T/pki2/server.pem" "$T/pki/server.pem"
pass "a broken certificate on SIGHUP keeps the current one and says why"

# ---- collector SIGHUP ----
kill -HUP "$PID_collector"
wait_for 20 "collector reload logged" grep -q "SIGHUP: TLS files reloaded" "$T/collector.log"
chmod 644 "$T/pki/client.key"
kill -HUP "$PID_collector"
wait_for 20 "collector refused the open key" grep -q "TLS reload failed, keeping the current certificate" \
  "$T/collector.log"
grep "TLS reload failed" "$T/collector.log" | grep -qF "run chmod 600 $T/pki/client.key" ||
  fail "the collector's failed reload does not say chmod 600"
chmod 600 "$T/pki/client.key"
for i in $(seq 101 120); do line "$i"; done >>"$T/logs/app.log"
wait_for 30 "120 records stored after the collector reloads" stored_at_least 120
pass "collector reloads on SIGHUP, refuses an open key and keeps shipping"
stop collector || fail "collector did not exit 0"

# ---- TLS 1.2 ----
tls12() { # ADDR
  openssl s_client -connect "$1" -tls1_2 -servername localhost -cert "$T/pki/client.pem" \
    -key "$T/pki/client.key" -CAfile "$T/pki/ca.pem" -verify_return_error </dev/null >"$T/s12.out" 2>&1
}
if tls12 "$AGG"; then fail "TLS 1.2 was accepted without --tls-min-version 1.2"; fi
stop aggregator || fail "aggregator did not exit 0"
start_aggregator --tls-min-version 1.2
grep -q "tls-min-version 1.2: collectors may connect with TLS 1.2" "$T/aggregator.log" ||
  fail "the TLS 1.2 opt-in is not warned about"
tls12 "$AGG" || fail "TLS 1.2 refused with --tls-min-version 1.2: $(tail -5 "$T/s12.out")"
grep -q "Protocol *: TLSv1.2" "$T/s12.out" || grep -q "TLSv1.2" "$T/s12.out" ||
  fail "s_client did not negotiate TLS 1.2"
pass "TLS 1.2 only with --tls-min-version 1.2 (warned)"
stop aggregator || fail "aggregator did not exit 0"
FAILED=0
