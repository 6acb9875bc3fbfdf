#!/usr/bin/env bash
# shutdown_stress_test.sh: SIGTERM the aggregator at varied moments while
# everything that shares its teardown is busy: a collector ingesting
# (writer thread), the Kafka forwarder (mock Kafka), --retention pruning
# behind the kafka cursor, remote queries in a loop (query threads) and one
# remote query whose reader stalls, so its thread waits for room in its page
# queue when the aggregator stops. Each of ITER runs must exit 0 with no
# sanitizer report, no "double free" and no libuv handle leak; every query
# client must end (exit 0, 1 or 2) instead of hanging or crashing. At the
# end every line reached Kafka and the pruned store still verifies. Some runs
# also get a SIGHUP (certificate reload) just before the SIGTERM, and
# /metrics is scraped throughout.
# The moment of the SIGTERM is what the test varies (a random delay after
# a condition); no assertion depends on it.
. "$(dirname "$0")/lib.sh"

ITER=${CAIRN_STRESS_ITER:-12}
BACKLOG=20000
RATE=4000
LINES=$((RATE * ITER * 3 / 2))
TOTAL=$((BACKLOG + LINES))
certs node-1 auditor # client.pem (the collector) = node-1
cat >"$T/acl.yaml" <<'EOF'
identities:
  auditor: {namespaces: ["*"], sources: [container, audit, k8s-audit, query]}
EOF
start_kafka
agg_flags=(--query-listen 127.0.0.1:0 --query-acl "$T/acl.yaml" --query-port-file "$T/query.addr"
  --kafka-brokers "$KAFKA" --retention 2s --sign-interval 1s --shutdown-timeout 5s
  --metrics-listen 127.0.0.1:0 --metrics-port-file "$T/metrics.addr")
rm -f "$T/query.addr" "$T/metrics.addr"
start_aggregator "${agg_flags[@]}"
PORT=${AGG##*:}

mkdir -p "$T/logs"
"$B/gen-cri" --dir "$T/logs" --files 4 --lines $BACKLOG >/dev/null || fail "gen-cri failed"
start_collector "$T/logs/*.log" --metrics-listen 127.0.0.1:0 \
  --metrics-port-file "$T/col-metrics.addr"
start gen "$B/gen-cri" --dir "$T/logs" --files 4 --lines $LINES --start $BACKLOG --rate $RATE
wait_for 30 "collector metrics endpoint" test -s "$T/col-metrics.addr"

remote() { # COMMAND [args...] as the auditor
  local cmd=$1
  shift
  "$B/cairn-query" "$cmd" --server "$(cat "$T/query.addr")" --tls-cert "$T/pki/auditor.pem" \
    --tls-key "$T/pki/auditor.key" --tls-ca "$T/pki/ca.pem" "$@"
}
# metric ADDR-FILE NAME: a sample (summed over labels), empty when unreachable
metric() {
  curl -sf "http://$(cat "$1")/metrics" |
    awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2; f = 1 } END { if (f) print s + 0 }'
}
metric_is() { [ "$(metric "$1" "$2")" = "$3" ]; }
# reaped or a zombie: the process has exited
exited() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
# client_ok FILE-PREFIX: exit status 0, 1 (nothing matched) or 2 (the
# aggregator went away: a one-line error), never a signal or a sanitizer report
client_ok() {
  local rc
  rc=$(cat "$1.rc")
  case $rc in 0 | 1 | 2) ;; *) fail "query client $1 exited $rc: $(tail -3 "$1.err")" ;; esac
  ! grep -q 'Sanitizer\|runtime error\|double free' "$1.err" || fail "query client $1: $(head -5 "$1.err")"
}

# a reader that takes the first line, then nothing until released: the
# query thread fills its page queue and waits
slow_reader() {
  IFS= read -r _ || true
  touch "$1.started"
  until [ -e "$1.release" ]; do sleep 0.05; done
  cat >/dev/null
}
# queries back to back until told to stop: full scans (nothing matches the
# grep), stats, and short searches; and a /metrics scrape each time
fast_loop() {
  local p=$1 n=0 rc
  while [ ! -e "$p.stop" ]; do
    curl -sf "http://$(cat "$T/metrics.addr" 2>/dev/null)/metrics" >/dev/null 2>&1 || true
    rc=0
    case $((n % 3)) in
      0) remote search --grep no-such-line-anywhere --limit 0 >/dev/null 2>>"$p.err" || rc=$? ;;
      1) remote stats --by namespace >/dev/null 2>>"$p.err" || rc=$? ;;
      2) remote search --limit 500 --output json >/dev/null 2>>"$p.err" || rc=$? ;;
    esac
    case $rc in 0 | 1 | 2) ;; *) echo "$rc" >"$p.rc"; return ;; esac
    n=$((n + 1))
  done
  echo 0 >"$p.rc"
}

RANDOM=$$
interrupted=0
for i in $(seq 1 "$ITER"); do
  if [ "$i" -gt 1 ]; then
    rm -f "$T/query.addr" "$T/metrics.addr"
    restart_aggregator "$PORT" "${agg_flags[@]}"
  fi
  wait_for 30 "query port (run $i)" test -s "$T/query.addr"
  s="$T/slow-$i" f="$T/fast-$i"
  (
    rc=0
    remote search --limit 0 --output json 2>"$s.err" | slow_reader "$s" || rc=${PIPESTATUS[0]}
    echo "$rc" >"$s.rc"
  ) &
  fast_loop "$f" &
  # three kinds of moment: at once (startup, first connections), soon after
  # the stalled query streams, or later (queue full, pruning, more queries)
  case $((i % 3)) in
    0) ;;
    1) wait_for 60 "the slow query to stream (run $i)" test -e "$s.started"
       sleep "0.$(printf '%03d' $((RANDOM % 300)))" ;;
    2) wait_for 60 "the slow query to stream (run $i)" test -e "$s.started"
       sleep "$((RANDOM % 2)).$(printf '%03d' $((RANDOM % 1000)))" ;;
  esac
  # every fourth run: a certificate reload (SIGHUP, on the thread pool) is
  # still running when the SIGTERM arrives
  [ $((i % 4)) -ne 0 ] || kill -HUP "$PID_aggregator"
  kill -TERM "$PID_aggregator"
  wait_for 30 "the aggregator to exit after SIGTERM (run $i)" exited "$PID_aggregator"
  rc=0
  wait "$PID_aggregator" || rc=$?
  cp "$T/aggregator.log" "$T/agg-run$i.txt"
  [ $rc -eq 0 ] || fail "run $i: aggregator exited $rc after SIGTERM: $(grep -m3 'ERROR\|double free\|error' "$T/aggregator.log")"
  ! grep -q 'Sanitizer\|runtime error\|double free\|corrupted\|handles still open' "$T/aggregator.log" \
    || fail "run $i: $(grep -m5 'Sanitizer\|runtime error\|double free\|corrupted\|handles still open' "$T/aggregator.log")"
  grep -q '"stopped"\|msg=stopped' "$T/aggregator.log" || fail "run $i: no 'stopped' line"
  touch "$s.release" "$f.stop"
  wait_for 60 "the query clients of run $i to end" test -e "$s.rc" -a -e "$f.rc"
  client_ok "$s"
  client_ok "$f"
  grep -q 'QUERY_ERROR: stopped early' "$T/aggregator.log" && interrupted=$((interrupted + 1))
done
pass "$ITER SIGTERMs with ingest, Kafka, retention and remote queries running: exit 0, no sanitizer report, every client ended ($interrupted runs stopped a running query)"
[ "$interrupted" -ge 1 ] || fail "no run stopped a running query: the test did not exercise that path"
grep -q 'retention: pruned' "$T"/agg-run*.txt || fail "no run pruned anything: retention was not exercised"

# nothing lost: the last run takes the rest, Kafka gets every line
rm -f "$T/query.addr" "$T/metrics.addr"
restart_aggregator "$PORT" "${agg_flags[@]}"
wait_for 30 "metrics endpoint" test -s "$T/metrics.addr"
wait "$PID_gen" || fail "gen-cri failed"
wait_for 180 "the collector to read and deliver all $TOTAL lines" \
  metric_is "$T/col-metrics.addr" cairn_collector_lines_read_total $TOTAL
wait_for 120 "the collector to hold nothing unacked" \
  metric_is "$T/col-metrics.addr" cairn_collector_unacked_bytes 0
# every line in Kafka (the lag metric alone can read 0 up to a second
# early: the writer refreshes last_seq once a second)
kafka_distinct() {
  "$B/kafka-count" --brokers "$KAFKA" --topic cairn-records --print --timeout-ms 60000 \
    >"$T/kafka.out" 2>"$T/kafka-count.log" || true
  grep -o 'seq=[0-9]\{8\}' "$T/kafka.out" | sort -u | wc -l
}
kafka_has_all() { [ "$(kafka_distinct)" -eq $TOTAL ]; }
wait_for 120 "the kafka cursor to catch up" metric_is "$T/metrics.addr" cairn_aggregator_kafka_cursor_lag 0
wait_for 120 "all $TOTAL lines in Kafka" kafka_has_all
stop collector || fail "collector did not exit 0"
stop aggregator || fail "aggregator did not exit 0"
"$B/cairn-query" verify --data "$T/data" >"$T/verify.out" 2>&1 || fail "verify failed: $(tail -3 "$T/verify.out")"
pass "after $ITER SIGTERMs all $TOTAL lines reached Kafka and the pruned store verifies"
FAILED=0
