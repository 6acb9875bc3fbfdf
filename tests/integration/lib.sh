# tests/integration/lib.sh: helpers for integration tests that run the real
# binaries as separate processes on 127.0.0.1. Source it; it sets up $T (a
# fresh temp dir), kills every started process on exit, and prints the logs of
# a failed run.
set -euo pipefail

B=${CAIRN_BUILD:?CAIRN_BUILD must point at the build dir}
S=${CAIRN_SRC:?CAIRN_SRC must point at the source dir}
T=$(mktemp -d "${TMPDIR:-/tmp}/cairn-it.XXXXXX")
# cairn-query records each local query in the store (PCI DSS 10.2.1.3); the
# tests count what the pipeline stored and sent to Kafka, so they turn it
# off, silently (remote_query_test.sh turns it back on where it checks it)
export CAIRN_QUERY_RECORD=0
PIDS=()
FAILED=1

cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ $FAILED -ne 0 ] || [ $rc -ne 0 ]; then
    echo "---- logs of the failed run ($T) ----"
    for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 40 "$f"; }; done
  else
    rm -rf "$T"
  fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds.
wait_for() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s waiting for: $what"
    sleep 0.1
  done
}

# start NAME COMMAND...: run in the background, log to $T/NAME.log, remember pid in PID_NAME.
start() {
  local name=$1
  shift
  "$@" >"$T/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  printf -v "PID_${name//-/_}" '%s' "$pid"
}

# stop NAME [SIGNAL]: signal and wait; returns the exit status.
stop() {
  local var="PID_${1//-/_}"
  local pid=${!var}
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  local rc=0
  wait "$pid" || rc=$?
  return $rc
}

certs() { bash "$S/tests/tools/gen-certs.sh" "$T/pki" "$@"; }

# start_kafka: mock cluster; sets KAFKA (bootstrap address)
start_kafka() {
  start mock-kafka "$B/mock-kafka" --port-file "$T/kafka.addr" --partitions 4
  wait_for 30 "mock Kafka to listen" test -s "$T/kafka.addr"
  KAFKA=$(cat "$T/kafka.addr")
}

# start_aggregator [extra flags...]: sets AGG (host:port)
start_aggregator() {
  rm -f "$T/agg.addr"
  start aggregator "$B/cairn-aggregator" --data "$T/data" --listen 127.0.0.1:0 \
    --port-file "$T/agg.addr" --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --tls-ca "$T/pki/ca.pem" --no-sync "$@"
  wait_for 30 "aggregator to listen" test -s "$T/agg.addr"
  AGG=$(cat "$T/agg.addr")
}

# start_collector GLOB [extra flags...]
start_collector() {
  local glob=$1
  shift
  start collector "$B/cairn-collector" --state "$T/state" --aggregator "$AGG" \
    --server-name localhost --tls-cert "$T/pki/client.pem" --tls-key "$T/pki/client.key" \
    --tls-ca "$T/pki/ca.pem" --node-name node-1 --input "cri:$glob" "$@"
}

# stored_count: records in the store (via cairn-query)
stored_count() {
  "$B/cairn-query" search --data "$T/data" --limit 0 --output json 2>/dev/null | wc -l
}

# stored_at_least N
stored_at_least() { [ "$(stored_count)" -ge "$1" ]; }

# assert_exactly_once N: storage holds N records and the markers seq=00000000..
# are each stored once (N distinct, no duplicates); leaves them in $T/all.jsonl.
assert_exactly_once() {
  local n=$1 got dups uniq
  "$B/cairn-query" search --data "$T/data" --limit 0 --output json >"$T/all.jsonl" || true
  got=$(wc -l <"$T/all.jsonl")
  grep -o 'seq=[0-9]\{8\}' "$T/all.jsonl" | sort >"$T/seqs.txt" || true
  dups=$(uniq -d "$T/seqs.txt" | wc -l)
  uniq=$(uniq "$T/seqs.txt" | wc -l)
  # report loss and duplicates together: one fault often causes both
  local problems=""
  [ "$dups" -eq 0 ] || problems="$dups lines stored more than once, e.g. $(uniq -d "$T/seqs.txt" | head -3 | tr '\n' ' ')"
  [ "$uniq" -eq "$n" ] || problems="${problems:+$problems; }$uniq distinct lines stored, want $n ($((n - uniq)) lost)"
  [ -z "$problems" ] || fail "$problems"
  [ "$got" -eq "$n" ] || fail "stored $got records, want $n"
}

# restart_aggregator PORT [extra flags...]: start the aggregator again on the
# same data dir and 127.0.0.1:PORT (collectors reconnect to the address they
# know); the previous run's log is kept as $T/aggregator-prev-N.txt.
restart_aggregator() {
  local port=$1 n=1
  shift
  while [ -e "$T/aggregator-prev-$n.txt" ]; do n=$((n + 1)); done
  [ -f "$T/aggregator.log" ] && cp "$T/aggregator.log" "$T/aggregator-prev-$n.txt"
  rm -f "$T/agg.addr"
  start aggregator "$B/cairn-aggregator" --data "$T/data" --listen "127.0.0.1:$port" \
    --port-file "$T/agg.addr" --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --tls-ca "$T/pki/ca.pem" --no-sync "$@"
  wait_for 30 "aggregator to listen again on port $port" test -s "$T/agg.addr"
  [ "$(cat "$T/agg.addr")" = "127.0.0.1:$port" ] || fail "aggregator listens on $(cat "$T/agg.addr"), not port $port"
}
