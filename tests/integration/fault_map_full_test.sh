#!/usr/bin/env bash
# fault_map_full_test.sh: the aggregator runs with a tiny --max-map-size, so
# its LMDB map fills up long before the backlog is stored. It must answer
# RETRY (never crash, never ack what it did not commit, never store a later
# batch of a session ahead of one it refused), say so in its log, and the
# collector must keep the data (its checkpoints do not advance past what was
# acked). After a restart with a larger limit, on the same port, every line
# arrives exactly once.
. "$(dirname "$0")/lib.sh"

N=40000
certs
start_aggregator --map-size 1MiB --max-map-size 4MiB
PORT=${AGG##*:}
mkdir -p "$T/logs"
"$B/gen-cri" --dir "$T/logs" --files 4 --lines $N >/dev/null || fail "gen-cri failed"
# small batches: many groups of different sizes hit the full map
start_collector "$T/logs/*.log" --batch-max-records 250 --max-inflight 8

wait_for 60 "the aggregator to report its map full" grep -q 'storage full (map' "$T/aggregator.log"
wait_for 30 "the collector to be asked to retry" grep -q 'asked to retry' "$T/collector.log"
sleep 3 # several rounds of RETRY against the full map
kill -0 "$PID_aggregator" || fail "the aggregator died with a full map"
full=$(stored_count)
[ "$full" -lt $N ] || fail "all $N records fit into a 4 MiB map: the test needs a smaller map"
[ "$(grep -c 'storage full (map' "$T/aggregator.log")" -le 3 ] \
  || fail "the storage-full line is not rate limited"
echo "map full at $full of $N records"
stop aggregator || fail "aggregator with a full map did not exit 0 on SIGTERM"
kill -0 "$PID_collector" || fail "the collector gave up while the aggregator was full"

# a larger limit, same data directory, same port
tries=0
until start_aggregator --listen "127.0.0.1:$PORT" --map-size 1MiB --max-map-size 256MiB &&
  [ "$(cat "$T/agg.addr")" = "$AGG" ]; do
  tries=$((tries + 1))
  [ $tries -lt 20 ] || fail "cannot restart the aggregator on port $PORT"
  sleep 0.2
done
wait_for 90 "$N records stored" stored_at_least $N
assert_exactly_once $N
grep -q 'storage map grown' "$T/aggregator.log" || fail "the map did not grow after the restart"
pass "map full at $full records: RETRY, nothing lost; after raising the limit all $N stored exactly once"
stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
