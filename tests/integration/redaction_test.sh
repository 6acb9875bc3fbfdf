#!/usr/bin/env bash
# redaction_test.sh: secrets are masked on the node. CRI lines holding an AWS
# key id, a password in a URL, a bearer token, a private key printed line by
# line and a value caught by a user rule (--redact) go through the real
# collector and aggregator; the stored records carry [REDACTED:NAME] and the
# redactions / redaction_rules attrs, every other line is stored as written,
# and no secret byte string is anywhere in the aggregator's LMDB files.
. "$(dirname "$0")/lib.sh"

certs
start_aggregator
mkdir -p "$T/logs"
f="$T/logs/api-5f9c_payments_api-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log"
ts=2024-01-15T10:23:45.000000000Z
{
  echo "$ts stdout F plain line one marker=PLAIN-MARKER-1"
  echo "$ts stdout F aws key id AKIAQWERTYUIOPASDFGH loaded"
  echo "$ts stdout F connecting to postgres://orders:Hunter2Secret@db:5432/orders"
  echo "$ts stderr F GET /v1 Authorization: Bearer tok3nVALUEabcdef0123456789"
  echo "$ts stdout F -----BEGIN RSA PRIVATE KEY-----"
  echo "$ts stdout F MIIEpAIBAAKCAQEAPEMBODYLINEONEzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
  echo "$ts stdout F PEMBODYLINETWOyyyyyyyyyyyy=="
  echo "$ts stdout F -----END RSA PRIVATE KEY-----"
  echo "$ts stdout F order ORD-314159 shipped, caf\xc3\xa9 password=p\xc3\xa4ssw\xc3\xb6rdXYZ ok"
  echo "$ts stdout F plain line two marker=PLAIN-MARKER-2"
} | while IFS= read -r l; do printf '%b\n' "$l"; done >"$f"
N=10
start_collector "$T/logs/*.log" --redact 'order_id=ORD-[0-9]{6}'
wait_for 60 "$N records stored" stored_at_least $N
"$B/cairn-query" search --data "$T/data" --limit 0 --output json >"$T/all.jsonl"
[ "$(wc -l <"$T/all.jsonl")" -eq $N ] || fail "stored $(wc -l <"$T/all.jsonl") records, want $N"

has() { grep -qF -- "$1" "$T/all.jsonl" || fail "no stored record contains: $1"; }
has '"message":"aws key id [REDACTED:aws_access_key] loaded"'
has '"message":"connecting to postgres://orders:[REDACTED:url_password]@db:5432/orders"'
has '"message":"GET /v1 Authorization: Bearer [REDACTED:bearer_token]"'
has '"message":"order [REDACTED:order_id] shipped, café password=[REDACTED:password] ok"'
[ "$(grep -cF '"message":"[REDACTED:private_key]"' "$T/all.jsonl")" -eq 4 ] ||
  fail "the 4 lines of the private key are not each masked: $(grep -F PRIVATE "$T/all.jsonl" || true)"
has '"redactions":"2","redaction_rules":"password,order_id"'
has '"redactions":"1","redaction_rules":"aws_access_key"'
has '"message":"plain line one marker=PLAIN-MARKER-1"'
[ "$(grep -c '"redactions"' "$T/all.jsonl")" -eq 8 ] ||
  fail "want 8 records with a redactions attr: $(grep -c '"redactions"' "$T/all.jsonl")"
grep '"PLAIN-MARKER' "$T/all.jsonl" | grep -q redaction && fail "a plain line got redaction attrs"
pass "stored records carry [REDACTED:NAME] and the redaction attrs; plain lines are untouched"

# the bytes on disk: plain text is stored verbatim (so grep can see it), the
# secrets are nowhere
dbs=$(find "$T/data" -name '*.mdb')
[ -n "$dbs" ] || fail "no LMDB files under $T/data"
# shellcheck disable=SC2086
[ "$(cat $dbs | grep -c -a 'PLAIN-MARKER-1')" -ge 1 ] ||
  fail "plain marker not found in the LMDB files: the secret check below would prove nothing"
for secret in AKIAQWERTYUIOPASDFGH Hunter2Secret tok3nVALUEabcdef0123456789 PEMBODYLINEONE \
  PEMBODYLINETWO ORD-314159 "p$(printf '\xc3\xa4')ssw"; do
  # shellcheck disable=SC2086
  n=$(cat $dbs | grep -c -a -F -- "$secret" || true)
  [ "$n" -eq 0 ] || fail "secret '$secret' found $n times in the LMDB files"
done
pass "no secret is in the aggregator's LMDB files"
FAILED=0
