#!/usr/bin/env bash
# badinput_test.sh: bad inputs next to a good one. A FIFO and a directory that
# match the glob, a followed file replaced by a FIFO, and a 100 MB line each
# get one specific log message; the 100 MB line is stored truncated at
# --max-record-size and flagged, the collector's memory stays bounded, and
# every line of the good file is stored exactly once.
. "$(dirname "$0")/lib.sh"

certs
start_aggregator
mkdir -p "$T/logs"
mkfifo "$T/logs/fifo.log"
mkdir "$T/logs/dir.log"
"$B/rotating-writer" --file "$T/logs/swap.log" --lines 10 --start 5000 || fail "writer failed"
start_collector "$T/logs/*.log" --rotate-wait 200ms
wait_for 60 "swap.log stored" stored_at_least 10
# replace a followed file by a FIFO
rm "$T/logs/swap.log"
mkfifo "$T/logs/swap.log"
# a 100 MB line, then a normal one in the same file
ts=$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)
{ printf '%s stdout F big ' "$ts"; head -c 100000000 /dev/zero | tr '\0' 'a'; printf '\n'; } >"$T/logs/big.log"
"$B/rotating-writer" --file "$T/logs/big.log" --lines 1 --start 6000 || fail "writer failed"
"$B/rotating-writer" --file "$T/logs/good.log" --lines 1000 || fail "writer failed"
# a line that is not CRI between two good ones: kept as an unparsed record
"$B/rotating-writer" --file "$T/logs/mixed.log" --lines 1 --start 7000 || fail "writer failed"
printf 'this is not a CRI line \001 marker-unparsed-7\n' >>"$T/logs/mixed.log"
"$B/rotating-writer" --file "$T/logs/mixed.log" --lines 1 --start 7001 || fail "writer failed"
wait_for 120 "all records stored" stored_at_least 1015

log="$T/collector.log"
grep -q 'fifo.log matches an --input glob but is a FIFO' "$log" || fail "no message for the FIFO"
grep -q 'dir.log matches an --input glob but is a directory' "$log" || fail "no message for the directory"
grep -q 'swap.log matches an --input glob but is a FIFO' "$log" || fail "no message for the file replaced by a FIFO"
grep -q 'big.log: line 1 at offset 0 is 1000000[0-9][0-9] bytes, over --max-record-size' "$log" \
  || fail "no message for the 100 MB line"
[ "$(grep -c 'fifo.log matches' "$log")" -eq 1 ] || fail "the FIFO message repeats at every scan"
pass "FIFO, directory, replaced file and 100 MB line each logged once"

"$B/cairn-query" search --data "$T/data" --limit 0 --output json >"$T/all.jsonl"
[ "$(wc -l <"$T/all.jsonl")" -eq 1015 ] || fail "stored $(wc -l <"$T/all.jsonl") records, want 1015"
for s in 00000000 00000999 00005000 00005009 00006000 00007000 00007001; do
  [ "$(grep -c "seq=$s " "$T/all.jsonl")" -eq 1 ] || fail "seq=$s not stored exactly once"
done
bad=$("$B/cairn-query" search --data "$T/data" --grep marker-unparsed-7 --since 1h --output json) \
  || fail "the malformed line is not found (within --since 1h)"
grep -q '"flags":\["unparsed"\]' <<<"$bad" || fail "malformed line not flagged unparsed: $bad"
grep -q 'this is not a CRI line \\u0001 marker' <<<"$bad" || fail "malformed line not kept byte-exact: $bad"
pass "malformed line stored raw, flagged unparsed, stamped with the time it was read"
big=$(grep '"message":"big aaaa' "$T/all.jsonl" | head -1)
grep -q 'truncated' <<<"$big" || fail "the 100 MB record is not flagged truncated"
blen=${#big}
[ "$blen" -lt 1200000 ] || fail "the 100 MB record was not cut at --max-record-size ($blen bytes of JSON)"
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$PID_collector/status")
# ASan's shadow memory and quarantine inflate RSS: the bound is asserted in the
# plain build's pass of the suite (test.sh runs both)
if [ "${CAIRN_SANITIZED:-0}" != 1 ]; then
  [ "$hwm" -lt 65536 ] || fail "collector peak RSS ${hwm} KiB after a 100 MB line"
fi
pass "100 MB line stored truncated and flagged; collector peak RSS ${hwm} KiB; good lines all stored once"
stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
