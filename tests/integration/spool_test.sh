#!/usr/bin/env bash
# spool_test.sh: the collector's on-disk spool (--spool-dir) carries an
# aggregator outage that outlasts the node's log files.
#  1. Aggregator down: 50,000 lines go into the spool, the checkpoints advance
#     past them (no aggregator ever acked anything), the log files are DELETED,
#     then the aggregator starts: every line is stored exactly once, from the
#     spool alone.
#  2. SIGKILL of the collector while it spools (twice, lines still being
#     written) and while it replays the spool: still exactly once.
#  3. A tiny --spool-max-bytes: the limit is hit (metric + log line), reading
#     falls back to backpressure (the files are the buffer), and once the
#     aggregator is up every line still arrives.
. "$(dirname "$0")/lib.sh"

N=50000
certs
start_aggregator
PORT=${AGG##*:}
stop aggregator || fail "aggregator did not stop"
cp "$T/aggregator.log" "$T/aggregator-first.txt"

# start_col NAME [flags...]: collector NAME with its own state, spool and logs
start_col() {
  local name=$1
  shift
  rm -f "$T/$name-metrics.addr"
  start "$name" "$B/cairn-collector" --state "$T/$name-state" --aggregator "$AGG" \
    --server-name localhost --tls-cert "$T/pki/client.pem" --tls-key "$T/pki/client.key" \
    --tls-ca "$T/pki/ca.pem" --node-name node-1 --input "cri:$T/$name-logs/*.log" \
    --spool-dir "$T/$name-spool" --rotate-wait 1s --metrics-listen 127.0.0.1:0 \
    --metrics-port-file "$T/$name-metrics.addr" "$@"
  wait_for 30 "$name metrics endpoint" test -s "$T/$name-metrics.addr"
}
# metric NAME COLLECTOR: the sample (summed over labels), 0 when absent
metric() {
  curl -sf "http://$(cat "$T/$2-metrics.addr")/metrics" |
    awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { print s + 0 }'
}
metric_ge() { [ "$(metric "$1" "$2")" -ge "$3" ]; }
metric_eq() { [ "$(metric "$1" "$2")" -eq "$3" ]; }
spooled_all() { # every line read, nothing left in memory, something in the spool
  metric_eq cairn_collector_lines_read_total "$1" "$2" &&
    metric_eq cairn_collector_batches_queued "$1" 0 && metric_ge cairn_collector_spool_batches "$1" 1
}

# ---- 1. spool, checkpoint, delete the files, aggregator up ----
mkdir -p "$T/a-logs"
"$B/gen-cri" --dir "$T/a-logs" --files 4 --lines $N --seed 1 >/dev/null || fail "gen-cri failed"
start_col a
wait_for 120 "all $N lines in the spool" spooled_all a $N
wait_for 30 "a checkpoint commit (only the spool can have advanced it)" \
  metric_ge cairn_collector_checkpoint_commits_total a 1
[ "$(metric cairn_collector_records_acked_total a)" -eq 0 ] || fail "acks without an aggregator?"
[ "$(stat -c %a "$T/a-spool")" = 700 ] || fail "spool dir mode $(stat -c %a "$T/a-spool"), want 700"
for f in "$T"/a-spool/*.spool; do
  [ "$(stat -c %a "$f")" = 600 ] || fail "$f mode $(stat -c %a "$f"), want 600"
done
bytes=$(metric cairn_collector_spool_bytes a)
echo "spooled: $(metric cairn_collector_spool_batches a) batches, $bytes bytes"
rm -f "$T"/a-logs/*.log # the node rotated them away
wait_for 60 "the deleted files to be closed" metric_eq cairn_collector_files_tailed a 0
restart_aggregator "$PORT"
wait_for 120 "$N records stored" stored_at_least $N
assert_exactly_once $N
wait_for 30 "the spool to be drained and deleted" metric_eq cairn_collector_spool_batches a 0
wait_for 30 "the spool files to be deleted" metric_eq cairn_collector_spool_bytes a 0
[ -z "$(ls "$T/a-spool")" ] || fail "spool files left after every batch was acked: $(ls "$T/a-spool")"
pass "1: $N lines stored exactly once from the spool after the log files were deleted"
stop a || fail "collector a did not exit 0 on SIGTERM"

# ---- 2. SIGKILL while spooling and while replaying ----
stop aggregator || fail "aggregator did not stop"
mkdir -p "$T/b-logs"
start gen "$B/gen-cri" --dir "$T/b-logs" --files 4 --lines $N --start $N --seed 2 --rate 10000
start_col b --max-inflight 1 --batch-max-records 100
RANDOM=$$
for i in 1 2; do
  wait_for 60 "collector b to spool (round $i)" metric_ge cairn_collector_spool_appended_total b 1
  sleep "0.$(printf '%03d' $((RANDOM % 1000)))"
  stop b KILL 2>/dev/null || true
  cp "$T/b.log" "$T/b-run$i.txt"
  echo "kill $i while spooling: $(ls "$T/b-spool" | wc -l) segment files"
  start_col b --max-inflight 1 --batch-max-records 100
done
wait "$PID_gen" || fail "gen-cri failed"
settled() { # this run read something and holds nothing in memory
  metric_ge cairn_collector_lines_read_total b 1 && metric_eq cairn_collector_batches_queued b 0 &&
    metric_eq cairn_collector_unacked_bytes b 0 && metric_ge cairn_collector_spool_batches b 1
}
wait_for 120 "collector b to spool what it read" settled
# SIGTERM during the outage: what is in memory joins the spool, exit 0
stop b || fail "collector b did not exit 0 on SIGTERM during the outage"
grep -q 'batches .* not acked within' "$T/b.log" && fail "SIGTERM left batches unspooled"
cp "$T/b.log" "$T/b-run-term.txt"
start_col b --max-inflight 1 --batch-max-records 100
# counted while the aggregator is down: once it is up, b replays at once
before=$(stored_count)
restart_aggregator "$PORT"
wait_for 120 "the replay to begin" metric_ge cairn_collector_records_acked_total b 1
stop b KILL 2>/dev/null || true
cp "$T/b.log" "$T/b-run3.txt"
after_kill=$(stored_count)
echo "kill 3 while replaying: $((after_kill - before)) records stored from the spool so far"
start_col b
wait_for 180 "$((2 * N)) records stored" stored_at_least $((2 * N))
assert_exactly_once $((2 * N))
# what was not stored at the kill came from b's files or from its spool: more
# than it read from the files means the restart found the killed run's spool
from_files=$(metric cairn_collector_lines_read_total b)
if [ $((2 * N - after_kill)) -gt "$from_files" ]; then
  grep -q 'spool .*: [1-9][0-9]* batches .* waiting' "$T/b.log" \
    || fail "the restarted collector b did not find the rest of the spool of the killed one"
fi
pass "2: $N more lines stored exactly once across 3 SIGKILLs (2 spooling, 1 replaying)"
stop b || fail "collector b did not exit 0 on SIGTERM"

# ---- 3. the spool limit ----
stop aggregator || fail "aggregator did not stop"
mkdir -p "$T/c-logs"
"$B/gen-cri" --dir "$T/c-logs" --files 4 --lines $N --start $((2 * N)) --seed 3 >/dev/null \
  || fail "gen-cri failed"
start_col c --spool-max-bytes 256KiB --memory-budget 2MiB
wait_for 60 "the spool limit to be hit" metric_ge cairn_collector_spool_full_total c 1
wait_for 30 "the limit log line" grep -q 'spool .* is full .*--spool-max-bytes 262144' "$T/c.log"
wait_for 30 "reads to pause (backpressure)" metric_eq cairn_collector_reads_paused c 1
read_now=$(metric cairn_collector_lines_read_total c)
[ "$read_now" -lt $N ] || fail "all $N lines were read although the spool is full"
[ "$(metric cairn_collector_spool_bytes c)" -le 262144 ] || fail "spool beyond its limit"
echo "at the limit: $read_now of $N lines read, $(metric cairn_collector_spool_bytes c) spool bytes"
restart_aggregator "$PORT"
wait_for 180 "$((3 * N)) records stored" stored_at_least $((3 * N))
assert_exactly_once $((3 * N))
pass "3: spool limit hit $(metric cairn_collector_spool_full_total c) times, then all $N lines stored exactly once"
stop c || fail "collector c did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
