#!/usr/bin/env bash
# audit_inputs_test.sh: auditd and Kubernetes audit input end to end:
# aggregator + collector with --input auditd:... and --input k8s-audit:... over
# copies of the corpus audit logs (RAW, ENRICHED, API server JSON lines), then
# lines appended while it runs. Storage must hold one record per audit event
# (13 + 2 unparsed lines, 7) and per k8s line (10), plus one record per hole
# in the audit serials (CAIRN_AUDIT_GAP), with typed attrs searchable by
# cairn-query; unparsed audit lines are stored raw and flagged.
. "$(dirname "$0")/lib.sh"

C=${CAIRN_CORPUS:?CAIRN_CORPUS must point at the shared corpus}
certs
start_aggregator
mkdir -p "$T/logs"
cp "$C/audit/audit.log" "$T/logs/audit.log"
cp "$C/audit/audit-enriched.log" "$T/logs/audit-enriched.log"
cp "$C/k8s-audit/audit.log" "$T/logs/k8s-apiserver.log"
start collector "$B/cairn-collector" --state "$T/state" --aggregator "$AGG" \
  --server-name localhost --tls-cert "$T/pki/client.pem" --tls-key "$T/pki/client.key" \
  --tls-ca "$T/pki/ca.pem" --node-name node-1 \
  --input "auditd:$T/logs/audit*.log" --input "k8s-audit:$T/logs/k8s*.log"

q() { "$B/cairn-query" search --data "$T/data" --limit 0 --output json "$@" 2>/dev/null || true; }
count_source() { q --source "$1" | wc -l; }
source_at_least() { [ "$(count_source "$1")" -ge "$2" ]; }

# corpus: audit.log 13 events + 2 unparsed + 9 serial holes; enriched 7 events
# + 6 holes; k8s 10 lines. The last events of a file end on the 2 s timeout.
wait_for 60 "k8s-audit records" source_at_least k8s-audit 10
wait_for 60 "audit records" source_at_least audit $((13 + 2 + 9 + 7 + 6))
sleep 0.5 # anything beyond the expected count would arrive with the same flush
q --source audit >"$T/audit.jsonl"
q --source k8s-audit >"$T/k8s.jsonl"
gaps=$(grep -c '"CAIRN_AUDIT_GAP"' "$T/audit.jsonl" || true)
unparsed=$(grep -c '"unparsed"' "$T/audit.jsonl" || true)
raw=$(grep -c '"path":"[^"]*/audit.log"' "$T/audit.jsonl" || true)
enr=$(grep -c '"path":"[^"]*/audit-enriched.log"' "$T/audit.jsonl" || true)
[ "$gaps" -eq 15 ] || fail "$gaps serial gap records, want 15 (9 + 6 holes in the corpus serials)"
[ "$raw" -eq $((13 + 2 + 9)) ] || fail "audit.log: $raw records, want 13 events + 2 unparsed + 9 gaps"
[ "$enr" -eq $((7 + 6)) ] || fail "audit-enriched.log: $enr records, want 7 events + 6 gaps"
[ "$(wc -l <"$T/k8s.jsonl")" -eq 10 ] || fail "k8s-audit: $(wc -l <"$T/k8s.jsonl") records, want 10"
pass "corpus stored: 13+2 unparsed and 7 audit events, 15 serial gaps, 10 k8s events"

# typed attrs of the failed openat of /etc/shadow (event 48224)
ev=$(grep '"key":"shadow_access"' "$T/audit.jsonl" || true)
[ "$(grep -c . <<<"$ev")" -eq 1 ] || fail "want one shadow_access event, got: $ev"
for kv in '"syscall":"257"' '"success":"no"' '"exit":"-13"' '"serial":"48224"' \
  '"path":"/etc/shadow:NORMAL"' '"types":"SYSCALL,CWD,PATH,PROCTITLE,EOE"'; do
  grep -qF "$kv" <<<"$ev" || fail "shadow_access event lacks $kv: $ev"
done
grep -qF '"proctitle":"ls -la /etc/ssh"' "$T/audit.jsonl" || fail "hex proctitle not decoded"
grep -qF '"cmd":"systemctl restart ssh"' "$T/audit.jsonl" || fail "USER_CMD cmd not decoded"
grep -qF '"AUID":"bob"' "$T/audit.jsonl" || fail "ENRICHED fields missing"
pass "audit records carry typed attrs (key, syscall, success, exit, path, decoded hex)"

# unparsed audit lines: flagged, raw bytes kept
[ "$unparsed" -eq 2 ] || fail "$unparsed unparsed audit records, want 2"
grep '"unparsed"' "$T/audit.jsonl" | grep -qF 'audit: backlog limit exceeded' \
  || fail "unparsed line 42 not stored raw"
grep '"unparsed"' "$T/audit.jsonl" | grep -qF 'type=PATH msg=audit(1705314261.3' \
  || fail "unparsed line 36 not stored raw"
pass "2 unparsed audit lines stored raw and flagged"

grep -qF '"message":"audit serials 48253..48254 missing (2 events lost by the kernel or auditd)"' \
  "$T/audit.jsonl" || fail "gap 48253..48254 not reported: $(grep CAIRN_AUDIT_GAP "$T/audit.jsonl" | head -3)"
grep -q 'audit serials 48253..48254 missing' "$T/collector.log" || fail "gap not logged"

# Kubernetes audit: verb, user, resource, code
k=$(grep '"verb":"list"' "$T/k8s.jsonl" | grep '"code":"403"' | grep -F '"user":"system:serviceaccount:ci:deployer"' || true)
[ "$(grep -c . <<<"$k")" -eq 1 ] || fail "want the forbidden list of secrets by ci:deployer, got: $k"
grep -qF '"resource":"secrets"' <<<"$k" || fail "k8s record lacks resource: $k"
grep -qF '"namespace":"kube-system"' <<<"$k" || fail "k8s record lacks namespace: $k"
[ "$(grep -c '"verb":' "$T/k8s.jsonl")" -eq 10 ] || fail "k8s records without verb"
[ "$(grep -c '"user":' "$T/k8s.jsonl")" -eq 10 ] || fail "k8s records without user"
pass "k8s audit records carry verb/user/resource/code attrs"

# appended while running: an interleaved pair whose later-starting event
# (48257, last line 4) is over first, at the USER_ACCT line, while the older
# one (48256, last line 3, no PROCTITLE) ends only on the 2 s timeout: its end
# offset is below one already shipped, and dedupe used to drop it. Plus a
# serial hole and a k8s line.
cat >>"$T/logs/audit.log" <<'AUD'
type=SYSCALL msg=audit(1705314270.000:48256): arch=c000003e syscall=2 success=yes exit=3 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=900 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=3 comm="cat" exe="/usr/bin/cat" key="appended_a"
type=SYSCALL msg=audit(1705314270.000:48257): arch=c000003e syscall=2 success=yes exit=3 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=901 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=3 comm="cat" exe="/usr/bin/cat" key="appended_b"
type=CWD msg=audit(1705314270.000:48256): cwd="/root"
type=PROCTITLE msg=audit(1705314270.000:48257): proctitle="cat"
type=USER_ACCT msg=audit(1705314270.100:48262): pid=1 uid=0 auid=1000 ses=3 msg='op=PAM:accounting acct="alice" exe="/usr/bin/sudo" hostname=? addr=? terminal=/dev/pts/1 res=success'
AUD
tail -n 1 "$C/k8s-audit/audit.log" >>"$T/logs/k8s-apiserver.log"
wait_for 30 "appended k8s line" source_at_least k8s-audit 11
wait_for 30 "appended audit events" source_at_least audit $((13 + 2 + 9 + 7 + 6 + 4))
sleep 0.5
q --source audit >"$T/audit2.jsonl"
for key in appended_a appended_b; do
  [ "$(grep -c "\"key\":\"$key\"" "$T/audit2.jsonl")" -eq 1 ] || fail "event $key not stored once"
done
grep -qF '"cwd":"/root"' <<<"$(grep '"key":"appended_a"' "$T/audit2.jsonl")" \
  || fail "the late CWD did not join its event"
grep -qF 'audit serials 48258..48261 missing (4 events lost' "$T/audit2.jsonl" \
  || fail "appended serial hole not reported"
[ "$(wc -l <"$T/audit2.jsonl")" -eq $((13 + 2 + 9 + 7 + 6 + 4)) ] \
  || fail "$(wc -l <"$T/audit2.jsonl") audit records after the append, want $((13 + 2 + 9 + 7 + 6 + 4))"
pass "appended events stored once each, including the one that completed after a later one"

stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
