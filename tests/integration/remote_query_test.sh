#!/usr/bin/env bash
# remote_query_test.sh: cairn-query --server against a real aggregator with
# --query-listen and a --query-acl, over mutual TLS 1.3 on loopback:
# a namespace-scoped team sees only its namespaces and is refused another
# namespace and the audit log; an auditor sees everything; remote results
# equal local results for the same query (JSON compared); an identity not in
# the ACL is refused; every query is stored as a source=query record with
# the right identity and count; local queries record themselves too (and say
# so when they cannot), while the aggregator keeps committing and the hash
# chain stays verifiable.
. "$(dirname "$0")/lib.sh"

certs node-1 team-a auditor mallory # client.pem (the collector) = node-1
cat >"$T/acl.yaml" <<'EOF'
identities:
  team-a: {namespaces: ["team-a", "team-a-*"], sources: [container]}
  auditor:
    namespaces: ["*"]
    sources: [container, audit, k8s-audit, query]
EOF
start_aggregator --query-listen 127.0.0.1:0 --query-acl "$T/acl.yaml" \
  --query-port-file "$T/query.addr"
wait_for 30 "query port" test -s "$T/query.addr"
QA=$(cat "$T/query.addr")

# three namespaces of container logs, and auditd events
mkdir -p "$T/logs" "$T/audit"
hex=$(printf '%064d' 0)
for i in $(seq 1 50); do printf '2026-11-28T10:00:%02d.%09dZ stdout F team-a line %d\n' $((i % 60)) "$i" "$i"; done \
  >"$T/logs/web-1_team-a_app-${hex}.log"
for i in $(seq 1 20); do printf '2026-11-28T10:01:%02d.%09dZ stderr F staging line %d\n' $((i % 60)) "$i" "$i"; done \
  >"$T/logs/web-2_team-a-staging_app-${hex}.log"
for i in $(seq 1 30); do printf '2026-11-28T10:02:%02d.%09dZ stdout F team-b secret %d\n' $((i % 60)) "$i" "$i"; done \
  >"$T/logs/api-1_team-b_app-${hex}.log"
"$B/gen-audit" --format auditd --out "$T/audit/audit.log" --lines 60 >/dev/null
start_collector "$T/logs/*.log" --input "auditd:$T/audit/*.log"
wait_for 60 "100 container records stored" stored_at_least 100
events=$(grep -o 'msg=audit([0-9.:]*)' "$T/audit/audit.log" | sort -u | wc -l)
audit_stored() { [ "$("$B/cairn-query" search --data "$T/data" --source audit --limit 0 --output json 2>/dev/null | wc -l)" -eq "$events" ]; }
wait_for 60 "$events audit events stored" audit_stored

remote() { # IDENTITY COMMAND [args...]
  local who=$1
  shift
  local cmd=$1
  shift
  "$B/cairn-query" "$cmd" --server "$QA" --tls-cert "$T/pki/$who.pem" --tls-key "$T/pki/$who.key" \
    --tls-ca "$T/pki/ca.pem" "$@"
}

# ---- team-a: only its namespaces, never another's, never the audit log ----
remote team-a search --limit 0 --output json >"$T/team-a.jsonl" 2>"$T/team-a.err" \
  || fail "team-a search failed: $(cat "$T/team-a.err")"
n=$(wc -l <"$T/team-a.jsonl")
[ "$n" -eq 70 ] || fail "team-a saw $n records, want 70 (50 team-a + 20 team-a-staging)"
grep -v '"namespace":"team-a"\|"namespace":"team-a-staging"' "$T/team-a.jsonl" >"$T/leak.jsonl" || true
[ ! -s "$T/leak.jsonl" ] || fail "team-a received records outside its namespaces: $(head -1 "$T/leak.jsonl")"
grep -q '"source":"container"' "$T/team-a.jsonl" || fail "team-a records are not container records"
pass "team-a sees exactly its 70 records (team-a, team-a-staging), nothing else"

rc=0
remote team-a search --namespace team-b >/dev/null 2>"$T/deny-ns.err" || rc=$?
[ $rc -eq 2 ] || fail "team-a --namespace team-b: exit $rc, want 2"
grep -q "not authorized to read namespace 'team-b'" "$T/deny-ns.err" \
  || fail "no 'not authorized' naming team-b: $(cat "$T/deny-ns.err")"
[ "$(wc -l <"$T/deny-ns.err")" -eq 1 ] || fail "the refusal is not one line: $(cat "$T/deny-ns.err")"
rc=0
remote team-a search --source audit >/dev/null 2>"$T/deny-src.err" || rc=$?
[ $rc -eq 2 ] || fail "team-a --source audit: exit $rc, want 2"
grep -q "not authorized to read source 'audit'" "$T/deny-src.err" \
  || fail "no 'not authorized' naming audit: $(cat "$T/deny-src.err")"
rc=0
remote team-a audit --key exec >/dev/null 2>"$T/deny-audit.err" || rc=$?
[ $rc -eq 2 ] || fail "team-a audit: exit $rc, want 2"
# a glob wider than the grant is narrowed, not refused: team-b stays invisible
remote team-a search --namespace 'team-*' --limit 0 --output json >"$T/glob.jsonl" 2>/dev/null
[ "$(wc -l <"$T/glob.jsonl")" -eq 70 ] || fail "team-a --namespace 'team-*' got $(wc -l <"$T/glob.jsonl"), want 70"
! grep -q 'team-b' "$T/glob.jsonl" || fail "team-a saw team-b through a glob"
pass "team-a is refused namespace team-b and the audit log (exit 2, one line); a wide glob is narrowed"

# ---- the auditor sees everything; remote == local ----
for args in "--limit 0" "--namespace team-b --limit 0" "--source audit --limit 0" \
  "--grep secret --limit 7 --oldest-first" "--regex team-[ab] -i --limit 0" \
  "--pod web-* --stream stderr --limit 0"; do
  # shellcheck disable=SC2086
  remote auditor search $args --output json >"$T/r.jsonl" 2>"$T/r.err" || [ $? -eq 1 ] \
    || fail "auditor search $args: $(cat "$T/r.err")"
  # shellcheck disable=SC2086
  "$B/cairn-query" search --data "$T/data" $args --output json 2>/dev/null | grep -v '"source":"query"' >"$T/l.jsonl" || true
  grep -v '"source":"query"' "$T/r.jsonl" >"$T/r2.jsonl" || true
  [ -s "$T/l.jsonl" ] || fail "local search $args found nothing"
  cmp -s "$T/l.jsonl" "$T/r2.jsonl" || fail "remote != local for search $args: $(diff "$T/l.jsonl" "$T/r2.jsonl" | head -5)"
done
remote auditor audit --key exec --output json >"$T/ra.jsonl" 2>/dev/null || true
"$B/cairn-query" audit --data "$T/data" --key exec --output json >"$T/la.jsonl" 2>/dev/null || true
[ -s "$T/la.jsonl" ] || fail "local audit --key exec found nothing"
cmp -s "$T/la.jsonl" "$T/ra.jsonl" || fail "remote audit != local audit"
remote auditor stats --by namespace --source container --output json >"$T/rs.json" 2>/dev/null \
  || fail "remote stats failed"
"$B/cairn-query" stats --data "$T/data" --by namespace --source container --output json >"$T/ls.json" 2>/dev/null
cmp -s "$T/ls.json" "$T/rs.json" || fail "remote stats != local stats: $(diff "$T/ls.json" "$T/rs.json" | head -4)"
remote team-a stats --by namespace --output json >"$T/ts.json" 2>/dev/null || fail "team-a stats failed"
grep -q '"team-a-staging"' "$T/ts.json" && ! grep -q 'team-b' "$T/ts.json" \
  || fail "team-a stats show more than its namespaces: $(cat "$T/ts.json")"
pass "auditor: remote search, audit and stats output equal local output (JSON, 8 queries); team-a's stats show only its namespaces"

# ---- unknown identity, wrong CA ----
rc=0
remote mallory search >/dev/null 2>"$T/mallory.err" || rc=$?
[ $rc -eq 2 ] || fail "mallory: exit $rc, want 2"
grep -q "identity 'mallory' is not authorized" "$T/mallory.err" || fail "mallory: $(cat "$T/mallory.err")"
rc=0
"$B/cairn-query" search --server "$QA" --tls-cert "$T/pki/rogue.pem" --tls-key "$T/pki/rogue.key" \
  --tls-ca "$T/pki/ca.pem" >/dev/null 2>"$T/rogue.err" || rc=$?
[ $rc -eq 2 ] || fail "rogue CA client: exit $rc, want 2"
pass "an identity not in the ACL is refused by name; a certificate of another CA is refused"

rc=0
remote auditor verify >/dev/null 2>"$T/verify.err" || rc=$?
[ $rc -eq 2 ] && grep -q "cannot run remotely" "$T/verify.err" || fail "verify --server: exit $rc: $(cat "$T/verify.err")"
rc=0
remote auditor export --out "$T/bundle" >/dev/null 2>"$T/export.err" || rc=$?
[ $rc -eq 2 ] && grep -q "cannot run remotely" "$T/export.err" || fail "export --server: exit $rc: $(cat "$T/export.err")"
pass "verify and export with --server exit 2 saying they cannot run remotely"

# ---- every remote query is a source=query record ----
records_of() { "$B/cairn-query" search --data "$T/data" --source query --limit 0 --output json 2>/dev/null; }
wait_for 30 "the mallory refusal recorded" sh -c "$(declare -f records_of); B='$B' T='$T'; records_of | grep -q '\"user\":\"mallory\"'"
records_of >"$T/queries.jsonl"
grep '"user":"team-a"' "$T/queries.jsonl" | grep '"mode":"remote"' | grep '"count":"70"' \
  | grep -q '"identity":"team-a"' || fail "team-a's 70-record search is not recorded with identity and count"
grep '"user":"team-a"' "$T/queries.jsonl" | grep -q "QUERY_DENIED: identity 'team-a' is not authorized to read namespace 'team-b'" \
  || fail "team-a's refused query is not recorded"
grep '"user":"mallory"' "$T/queries.jsonl" | grep -q 'QUERY_DENIED' || fail "mallory's refusal is not recorded"
grep '"user":"auditor"' "$T/queries.jsonl" | grep '"command":"audit"' | grep -q '"filters":"[^"]*key=exec' \
  || fail "the auditor's audit query is not recorded with its filters"
# the auditor's grant includes source query: the records are readable remotely too
remote auditor search --source query --limit 0 --output json >"$T/rq.jsonl" 2>"$T/rq.err" \
  || fail "auditor search --source query: $(cat "$T/rq.err")"
grep -q '"user":"mallory"' "$T/rq.jsonl" || fail "auditor cannot read the query records remotely"
pass "every remote query is stored as source=query with identity, filters, count and result ($(wc -l <"$T/queries.jsonl") so far)"

# ---- local queries record themselves, next to a committing aggregator ----
"$B/gen-cri" --dir "$T/logs" --files 2 --lines 20000 --rate 20000 >/dev/null &
GEN=$!
PIDS+=("$GEN")
before=$(records_of | grep -c '"mode":"local"' || true)
for i in $(seq 1 10); do
  CAIRN_QUERY_RECORD=1 "$B/cairn-query" search --data "$T/data" --namespace team-a --limit 5 >/dev/null 2>"$T/local.err" \
    || fail "local search $i failed: $(cat "$T/local.err")"
  ! grep -q "not recorded" "$T/local.err" || fail "local search $i not recorded: $(cat "$T/local.err")"
done
wait "$GEN" || true
wait_for 120 "the generated lines stored" stored_at_least 20100
after=$(records_of | grep -c '"mode":"local"' || true)
[ $((after - before)) -eq 10 ] || fail "$((after - before)) local queries recorded, want 10"
records_of >"$T/queries.jsonl"
grep '"mode":"local"' "$T/queries.jsonl" | grep '"user":"'"$(id -un)"'"' | grep '"uid":"'"$(id -u)"'"' \
  | grep '"count":"5"' >"$T/local.jsonl" || true
[ "$(wc -l <"$T/local.jsonl")" -ge 10 ] \
  || fail "local query records lack user, uid or count: $(grep '"mode":"local"' "$T/queries.jsonl" | head -1)"
"$B/cairn-query" verify --data "$T/data" --public-key "$T/data/signing.pub" >"$T/verify.out" 2>&1 \
  || fail "verify failed after local writes between aggregator commits: $(tail -3 "$T/verify.out")"
pass "10 local queries recorded (user, uid, count) while the aggregator committed 20,000 lines; verify OK"

# no write access: said on stderr, the query still answers
if [ "$(id -u)" -eq 0 ]; then
  ro() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
  chmod 755 "$T" "$T/data"; chmod 644 "$T/data/data.mdb"; chmod 666 "$T/data/lock.mdb"
  rc=0
  CAIRN_QUERY_RECORD=1 ro "$B/cairn-query" search --data "$T/data" --namespace team-a --limit 1 \
    >/dev/null 2>"$T/ro.err" || rc=$?
  chmod 700 "$T/data"; chmod 600 "$T/data/data.mdb"
  [ $rc -eq 0 ] || fail "read-only user search: exit $rc: $(cat "$T/ro.err")"
  grep -q "query not recorded: no write access to $T/data" "$T/ro.err" || fail "no 'not recorded' line: $(cat "$T/ro.err")"
  pass "without write access the query answers and says 'query not recorded: no write access'"
fi

stop aggregator || fail "aggregator did not exit 0"
FAILED=0
