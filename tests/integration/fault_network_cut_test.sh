#!/usr/bin/env bash
# fault_network_cut_test.sh: the collector reaches the aggregator through a
# loopback TCP proxy (tests/tools/tcp_proxy.c) that cuts the connection in the
# middle of the stream 6 times while 150,000 lines are written: it forwards
# only half of a chunk of TLS bytes (a torn TLS record inside a torn frame)
# and resets both sides. Once the link also stays dead for a while (the proxy
# stops accepting, so the reconnect hangs in the backlog). The aggregator
# drops the torn frame, the collector re-sends every unacked batch on a new
# connection, the aggregator dedupes what it had committed: no loss, no
# duplicate.
. "$(dirname "$0")/lib.sh"

N=150000
RATE=10000
certs
start_aggregator
start proxy "$B/tcp-proxy" --target "$AGG" --port-file "$T/proxy.addr"
wait_for 10 "the proxy to listen" test -s "$T/proxy.addr"
AGG=$(cat "$T/proxy.addr") # the collector only knows the proxy
mkdir -p "$T/logs"
start_collector "$T/logs/*.log"
start gen "$B/gen-cri" --dir "$T/logs" --files 4 --lines $N --rate $RATE

RANDOM=$$
for i in 1 2 3 4 5 6; do
  wait_for 30 "the collector to be connected (cut $i)" grep -q 'accepted connection' "$T/aggregator.log"
  sleep "1.$(printf '%03d' $((RANDOM % 1000)))"
  if [ $i -eq 4 ]; then
    kill -USR2 "$PID_proxy" # stop accepting: the link is down for a while
    kill -USR1 "$PID_proxy"
    sleep 1.5
    kill -USR2 "$PID_proxy"
  else
    kill -USR1 "$PID_proxy"
  fi
  echo "cut $i: $(stored_count) records stored"
done
wait "$PID_gen" || fail "gen-cri failed"
wait_for 100 "$N records stored" stored_at_least $N
assert_exactly_once $N
cuts=$(grep -c 'tcp-proxy: cut [0-9]' "$T/proxy.log")
torn=$(grep -c 'tcp-proxy: cut [0-9]* (mid-stream' "$T/proxy.log" || true)
[ "$cuts" -ge 6 ] || fail "the proxy cut only $cuts connections"
[ "$torn" -ge 3 ] || fail "only $torn cuts landed mid-stream"
reconnects=$(grep -c 'lost connection to aggregator' "$T/collector.log" || true)
pass "$N lines stored exactly once across $cuts connection cuts ($torn mid-stream, torn TLS record), $reconnects reconnect lines"
stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
stop proxy || fail "proxy did not exit 0"
FAILED=0
