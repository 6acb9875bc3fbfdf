#!/usr/bin/env bash
# demo.sh: the main job end to end on one machine, all on 127.0.0.1.
# Installs dependencies (Debian 12) if missing, builds, then starts a mock
# Kafka cluster, cairn-aggregator on the data dir .cairn-demo/data, and
# cairn-collector over generated container logs (mutual TLS with a throwaway
# CA), waits until every line is stored, prints throughput and the collector's
# peak RSS, shows a query, and counts what reached Kafka.
#   DEMO_LINES=200000 bash demo.sh
set -euo pipefail
cd "$(dirname "$0")"
bash .ci/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" >/dev/null
B=$PWD/build
D=$PWD/.cairn-demo
N=${DEMO_LINES:-200000}
rm -rf "$D"
mkdir -p "$D/logs"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
wait_file() { for _ in $(seq 300); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "demo: $2 did not start; see $3" >&2; exit 1; }

echo "== certificates (throwaway CA, server, client node-1) in $D/pki"
bash tests/tools/gen-certs.sh "$D/pki" node-1

echo "== mock Kafka cluster (librdkafka mock, real Kafka protocol)"
"$B/mock-kafka" --port-file "$D/kafka.addr" >"$D/kafka.log" 2>&1 & PIDS+=($!)
wait_file "$D/kafka.addr" "mock Kafka" "$D/kafka.log"
KAFKA=$(cat "$D/kafka.addr")

echo "== cairn-aggregator --data $D/data (log: $D/aggregator.log)"
"$B/cairn-aggregator" --data "$D/data" --listen 127.0.0.1:0 --port-file "$D/agg.addr" \
  --tls-cert "$D/pki/server.pem" --tls-key "$D/pki/server.key" --tls-ca "$D/pki/ca.pem" \
  --kafka-brokers "$KAFKA" --kafka-topic cairn-records >"$D/aggregator.log" 2>&1 & APID=$!
PIDS+=($APID)
wait_file "$D/agg.addr" "cairn-aggregator" "$D/aggregator.log"
AGG=$(cat "$D/agg.addr")

# a real Kafka consumer reads along (the mock cluster keeps only ~5 MB per partition)
"$B/kafka-count" --brokers "$KAFKA" --topic cairn-records --expect "$N" --timeout-ms 300000 >"$D/kafka.out" 2>&1 &
KC=$!
PIDS+=($KC)

echo "== generating $N CRI lines in 8 container log files"
"$B/gen-cri" --dir "$D/logs" --files 8 --lines "$N" --partial-every 500
bytes=$(cat "$D"/logs/*.log | wc -c)

echo "== cairn-collector -> $AGG (log: $D/collector.log)"
t0=$(date +%s.%N)
"$B/cairn-collector" --state "$D/state" --aggregator "$AGG" --server-name localhost \
  --tls-cert "$D/pki/node-1.pem" --tls-key "$D/pki/node-1.key" --tls-ca "$D/pki/ca.pem" \
  --node-name node-1 --input "cri:$D/logs/*.log" >"$D/collector.log" 2>&1 & CPID=$!
PIDS+=($CPID)
count=0
for _ in $(seq 1200); do
  # a polling harness: CAIRN_QUERY_RECORD=0 keeps these polls out of the
  # store's query audit trail (the queries below are recorded)
  count=$(CAIRN_QUERY_RECORD=0 "$B/cairn-query" stats --data "$D/data" --source container --output json 2>/dev/null | sed -n 's/.*"records":\([0-9]*\).*/\1/p' || true)
  count=${count:-0}
  [ "$count" -ge "$N" ] && break
  sleep 0.25
done
t1=$(date +%s.%N)
rss=$(awk '/VmHWM/ {print $2}' /proc/$CPID/status)
ctime=$(awk '{print ($14+$15)/'"$(getconf CLK_TCK)"'}' /proc/$CPID/stat)
kill -TERM $CPID; wait $CPID || true
awk -v n="$count" -v want="$N" -v t0="$t0" -v t1="$t1" -v rss="$rss" -v b="$bytes" -v c="$ctime" 'BEGIN {
  el = t1 - t0; printf "\nstored %d of %d lines (%.1f MB) in %.2f s: %.0f lines/s end to end\n", n, want, b/1e6, el, n/el;
  printf "collector: %.2f CPU-s (%.0f lines per CPU-second), peak RSS %.1f MiB\n", c, (c > 0 ? n/c : 0), rss/1024 }'

echo
echo "== cairn-query search --data $D/data --namespace payments --grep 'status\":500' --limit 5"
"$B/cairn-query" search --data "$D/data" --namespace payments --grep 'status":500' --limit 5 || true
echo
echo "== Kafka: what a real consumer read from the topic"
wait $KC || true
cat "$D/kafka.out"
echo
echo "== stopping the aggregator (it signs a final chain checkpoint), then: cairn-query verify"
kill -TERM $APID; wait $APID || true
"$B/cairn-query" verify --data "$D/data" || true
echo
echo "== every query is itself an audit record: cairn-query search --source query"
"$B/cairn-query" search --data "$D/data" --source query --limit 5 || true
echo
echo "Data stays in $D/data; try: build/cairn-query search --data $D/data --pod <pod> --since 1h"
