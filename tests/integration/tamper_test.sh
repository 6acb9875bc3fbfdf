#!/usr/bin/env bash
# tamper_test.sh: the tamper-evident store end to end. A real aggregator and
# collector store CRI lines; the aggregator generates its signing key (0600)
# and signs checkpoints; `cairn-query verify` passes. Then copies of the
# store are edited with the LMDB tools (mdb_dump, an awk edit, mdb_load into
# a fresh dir) -- one record modified, one deleted, one inserted, two swapped,
# a checkpoint altered -- and verify must name each exact failure (exit 3).
# Finally the permission rules: a key file readable by others and a data dir
# writable by the group are refused at start with the chmod to run.
. "$(dirname "$0")/lib.sh"

N=3000
for tool in mdb_dump mdb_load openssl; do
  command -v $tool >/dev/null || fail "$tool is needed (Debian packages lmdb-utils, openssl)"
done

certs
start_aggregator --sign-interval 500ms
key="$T/data/signing.key"
[ -f "$key" ] || fail "no signing key generated in the data dir"
[ "$(stat -c %a "$key")" = 600 ] || fail "signing key mode $(stat -c %a "$key"), want 600"
[ "$(stat -c %a "$T/data")" = 700 ] || fail "data dir mode $(stat -c %a "$T/data"), want 700"
[ "$(stat -c %a "$T/data/data.mdb")" = 600 ] || fail "data.mdb mode $(stat -c %a "$T/data/data.mdb"), want 600"
grep -q "generated a new Ed25519 signing key $key" "$T/aggregator.log" || fail "key generation not logged"
[ -s "$T/data/signing.pub" ] || fail "no signing.pub written"
# the auditor keeps their own copy of the public key, taken at deployment
cp "$T/data/signing.pub" "$T/auditor.pub"
pass "signing key generated with mode 0600, data dir 0700, public key exported"

# periodic checkpoints: while the aggregator runs, everything gets signed
verify_all_signed() {
  "$B/cairn-query" verify --data "$T/data" --public-key "$T/auditor.pub" >"$T/verify.out" 2>&1 &&
    grep -q "unsigned:     0 records" "$T/verify.out" && grep -q "up to seq $1)" "$T/verify.out"
}
# two rounds, so the chain has several links and checkpoints
mkdir -p "$T/logs"
"$B/gen-cri" --dir "$T/logs" --files 2 --lines $((N / 2))
start_collector "$T/logs/*.log"
wait_for 60 "$((N / 2)) records stored" stored_at_least $((N / 2))
wait_for 30 "a checkpoint covering $((N / 2)) records" verify_all_signed $((N / 2))
"$B/gen-cri" --dir "$T/logs" --files 2 --lines $((N / 2)) --start $((N / 2))
wait_for 60 "$N records stored" stored_at_least $N
wait_for 30 "a checkpoint covering all $N records" verify_all_signed $N
grep -q "last signed:  position [2-9]" "$T/verify.out" || fail "one checkpoint only: $(cat "$T/verify.out")"
pass "checkpoints signed periodically while running"

stop collector || fail "collector did not exit 0"
stop aggregator || fail "aggregator did not exit 0"
! grep -q "signing a chain checkpoint.*failed" "$T/aggregator.log" || fail "checkpoint signing failed"

out=$("$B/cairn-query" verify --data "$T/data" --public-key "$T/auditor.pub") ||
  fail "verify of the untouched store failed: $out"
grep -q "verify: OK" <<<"$out" || fail "no OK: $out"
grep -q "links, $N records (up to seq $N)" <<<"$out" || fail "wrong counts: $out"
grep -q "unsigned:     0 records" <<<"$out" || fail "records left unsigned after shutdown: $out"
pass "untouched store verifies: $(grep chain: <<<"$out" | tr -s ' ')"

# tamper OP SEQ: dump the whole store, edit the records (or checkpoints) DB
# with awk, load it into the fresh dir $T/t-OP. Keys and values are hex lines.
tamper() {
  local op=$1 seq=$2 dir="$T/t-$1"
  rm -rf "$dir"
  mkdir -m 700 "$dir"
  mdb_dump -a "$T/data" >"$T/dump.txt"
  awk -v op="$op" -v key="$(printf ' %016x' "$seq")" -v nxt="$(printf ' %016x' $((seq + 1)))" '
    /^database=/ { db = substr($0, 10) }
    /^HEADER=END/ { indata = 1; iskey = 1; print; next }
    /^DATA=END/ {
      if (op == "insert" && db == "records") { print key; print lastval }
      indata = 0; print; next
    }
    !indata || (db != "records" && db != "checkpoints") { print; next }
    iskey { k = $0; iskey = 0; next }
    {
      v = $0; iskey = 1
      if (db == "checkpoints") {
        # byte 20 of a checkpoint value lies in the signed chain head
        if (op == "checkpoint") v = substr(v, 1, 41) (substr(v, 42, 1) == "0" ? "1" : "0") substr(v, 43)
        print k; print v; next
      }
      if (op == "delete" && k == key) next
      if (op == "modify" && k == key) { if (!sub(/7365713d/, "5345513d", v)) exit 3 } # seq= -> SEQ=
      if (op == "swap" && k == key) { held = v; next }
      if (op == "swap" && k == nxt) { print key; print v; print nxt; print held; next }
      print k; print v; lastval = v
    }' "$T/dump.txt" >"$T/dump-$op.txt" || fail "awk edit $op failed"
  mdb_load -f "$T/dump-$op.txt" "$dir" 2>"$T/mdb_load.log" || fail "mdb_load $op: $(cat "$T/mdb_load.log")"
}

# expect_fail OP PATTERN...: verify of $T/t-OP exits 3 and stderr has every pattern
expect_fail() {
  local op=$1 rc=0
  shift
  "$B/cairn-query" verify --data "$T/t-$op" --public-key "$T/auditor.pub" \
    >"$T/v-$op.out" 2>"$T/v-$op.err" || rc=$?
  [ $rc -eq 3 ] || fail "$op: verify exited $rc, want 3: $(cat "$T/v-$op.out" "$T/v-$op.err")"
  for p in "$@"; do
    grep -qF -- "$p" "$T/v-$op.err" || fail "$op: missing '$p' in: $(cat "$T/v-$op.err")"
  done
  pass "$op detected: $(tail -n 1 "$T/v-$op.err")"
}

tamper none 0
"$B/cairn-query" verify --data "$T/t-none" --public-key "$T/auditor.pub" >/dev/null ||
  fail "a faithful copy (dump + load) must still verify"
pass "a faithful copy of the store verifies"

# the link holding a seq is only known from the store: read it from the report
link_of() { # prints "chain position P (seq A..B)" as verify reports it
  grep -o 'chain position [0-9]* (seq [0-9]*\.\.[0-9]*)' "$T/v-$1.err"
}

tamper modify 1234
expect_fail modify "MODIFIED: record modified at chain position" "differs from what link"
# the reported link covers the modified seq
range=$(link_of modify | sed 's/.*(seq \([0-9]*\)\.\.\([0-9]*\))/\1 \2/')
read -r lo hi <<<"$range"
[ "$lo" -le 1234 ] && [ "$hi" -ge 1234 ] || fail "modify: reported link $range does not cover seq 1234"

tamper delete 1500
expect_fail delete "REMOVED: record removed at chain position" "record seq 1500 is missing"

tamper insert $((N + 1))
expect_fail insert "INSERTED: record inserted at seq $((N + 1))" \
  "record seq $((N + 1)) is not covered by any link (the chain ends at seq $N)"

tamper swap 2000
expect_fail swap "REORDERED: records reordered at chain position" \
  "record stored at seq 2000 is the record of seq 2001"

tamper checkpoint 0
expect_fail checkpoint "BAD_SIGNATURE: bad signature at chain position" "signature does not verify"

# a key that did not sign the checkpoints
openssl genpkey -algorithm ed25519 -out "$T/other.key" 2>/dev/null
openssl pkey -in "$T/other.key" -pubout -out "$T/other.pub" 2>/dev/null
rc=0
"$B/cairn-query" verify --data "$T/data" --public-key "$T/other.pub" >/dev/null 2>"$T/v-other.err" || rc=$?
[ $rc -eq 3 ] || fail "wrong public key: exit $rc, want 3"
grep -q "not signed by the given public key" "$T/v-other.err" || fail "wrong key: $(cat "$T/v-other.err")"
pass "a wrong public key is refused"

# ---- the checkpoint at shutdown: with a long interval, only the stop signs ----
start_aggregator --sign-interval 1h
"$B/gen-cri" --dir "$T/logs" --files 2 --lines 500 --start $N
start_collector "$T/logs/*.log"
wait_for 60 "$((N + 500)) records stored" stored_at_least $((N + 500))
"$B/cairn-query" verify --data "$T/data" --public-key "$T/auditor.pub" >"$T/v-run.out" 2>&1 ||
  fail "verify while running: $(cat "$T/v-run.out")"
grep -q "unsigned:     500 records" "$T/v-run.out" || fail "want 500 unsigned: $(cat "$T/v-run.out")"
stop collector || fail "collector did not exit 0"
stop aggregator || fail "aggregator did not exit 0"
grep -q "signed the chain checkpoint at position [0-9]* at shutdown" "$T/aggregator.log" ||
  fail "no checkpoint at shutdown"
"$B/cairn-query" verify --data "$T/data" --public-key "$T/auditor.pub" >"$T/v-stop.out" 2>&1 ||
  fail "verify after stop: $(cat "$T/v-stop.out")"
grep -q "unsigned:     0 records" "$T/v-stop.out" || fail "tail unsigned after stop: $(cat "$T/v-stop.out")"
pass "the aggregator signs the head at shutdown (500 unsigned records while running, 0 after)"

# ---- permission rules at start ----
chmod 644 "$key"
rc=0
"$B/cairn-aggregator" --data "$T/data" --listen 127.0.0.1:0 --tls-cert "$T/pki/server.pem" \
  --tls-key "$T/pki/server.key" --tls-ca "$T/pki/ca.pem" --no-sync >"$T/agg-perm.log" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "aggregator with a 0644 signing key exited $rc, want 2"
grep -q "run chmod 600 $key" "$T/agg-perm.log" || fail "no chmod hint: $(cat "$T/agg-perm.log")"
chmod 600 "$key"
pass "a signing key readable by others is refused: $(cat "$T/agg-perm.log")"

chmod 770 "$T/data"
rc=0
"$B/cairn-aggregator" --data "$T/data" --listen 127.0.0.1:0 --tls-cert "$T/pki/server.pem" \
  --tls-key "$T/pki/server.key" --tls-ca "$T/pki/ca.pem" --no-sync >"$T/agg-perm.log" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "aggregator on a group-writable data dir exited $rc, want 2"
grep -q "writable by group or others (mode 0770): run chmod 700 $T/data" "$T/agg-perm.log" ||
  fail "no chmod hint: $(cat "$T/agg-perm.log")"
chmod 700 "$T/data"
pass "a group-writable data dir is refused: $(cat "$T/agg-perm.log")"

rc=0
"$B/cairn-aggregator" --data "$T/data" --listen 127.0.0.1:0 --tls-cert "$T/pki/server.pem" \
  --tls-key "$T/pki/server.key" --tls-ca "$T/pki/ca.pem" --signing-key "$T/missing.key" \
  --no-sync >"$T/agg-perm.log" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "aggregator with a missing --signing-key exited $rc, want 2"
grep -q "openssl genpkey -algorithm ed25519" "$T/agg-perm.log" || fail "no hint: $(cat "$T/agg-perm.log")"
pass "a missing --signing-key is an error, not a silently new identity"
FAILED=0
