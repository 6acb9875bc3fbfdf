#!/usr/bin/env bash
# bench/memory/run.sh: collector memory with a large backlog on disk.
#
# Writes SIZE_MB (default 1024) of CRI logs with gen-cri (FILES files,
# default 8, ~200-byte lines), then runs the real cairn-collector against the
# real cairn-aggregator over mutual TLS on loopback (--no-sync) until every
# line is read, acked and checkpointed (--exit-when-idle). Reports the
# collector's peak RSS (VmHWM from /proc, sampled until it exits), its CPU
# time, and the end-to-end throughput. Exit 1 when the peak RSS is over
# BUDGET_MIB (default 32).
#
#   bench/memory/run.sh [BUILD_DIR]     (default: ./build)
#   env: SIZE_MB=1024 FILES=8 BUDGET_MIB=32 KEEP=0 EXTRA_COLLECTOR_FLAGS=...
#
# Needs ~2.5x SIZE_MB of free disk in ${TMPDIR:-/tmp} (logs + LMDB).
set -euo pipefail

S=$(cd "$(dirname "$0")/../.." && pwd)
B=$(cd "${1:-$S/build}" && pwd)
SIZE_MB=${SIZE_MB:-1024}
FILES=${FILES:-8}
BUDGET_MIB=${BUDGET_MIB:-32}
T=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench-mem.XXXXXX")
AGG_PID=
COL_PID=
cleanup() {
  [ -n "$COL_PID" ] && kill "$COL_PID" 2>/dev/null || true
  [ -n "$AGG_PID" ] && kill "$AGG_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

for bin in cairn-collector cairn-aggregator gen-cri; do
  [ -x "$B/$bin" ] || { echo "missing $B/$bin (build it first)" >&2; exit 2; }
done

# ~207 bytes per line on average (gen-cri)
LINES=$((SIZE_MB * 1024 * 1024 / 207))
echo "writing $LINES CRI lines (~$SIZE_MB MB) in $FILES files ..."
mkdir -p "$T/logs"
"$B/gen-cri" --dir "$T/logs" --files "$FILES" --lines "$LINES" >/dev/null
bytes=$(du -sb "$T/logs" | cut -f1)
echo "backlog on disk: $((bytes / 1048576)) MiB"

bash "$S/tests/tools/gen-certs.sh" "$T/pki" >/dev/null 2>&1
"$B/cairn-aggregator" --data "$T/data" --listen 127.0.0.1:0 --port-file "$T/agg.addr" \
  --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" --tls-ca "$T/pki/ca.pem" \
  --no-sync >"$T/aggregator.log" 2>&1 &
AGG_PID=$!
for _ in $(seq 300); do [ -s "$T/agg.addr" ] && break; sleep 0.1; done
[ -s "$T/agg.addr" ] || { echo "aggregator did not start" >&2; cat "$T/aggregator.log" >&2; exit 1; }

t0=$(date +%s%N)
# shellcheck disable=SC2086
"$B/cairn-collector" --state "$T/state" --aggregator "$(cat "$T/agg.addr")" --server-name localhost \
  --tls-cert "$T/pki/client.pem" --tls-key "$T/pki/client.key" --tls-ca "$T/pki/ca.pem" \
  --node-name node-1 --input "cri:$T/logs/*.log" --exit-when-idle --idle-grace 1s \
  ${EXTRA_COLLECTOR_FLAGS:-} >"$T/collector.log" 2>&1 &
COL_PID=$!
hwm=0 rss_max=0 anon_max=0 file_max=0 cpu=0
while kill -0 "$COL_PID" 2>/dev/null; do
  if st=$(cat "/proc/$COL_PID/status" 2>/dev/null); then
    h=$(awk '/^VmHWM/ {print $2}' <<<"$st")
    r=$(awk '/^VmRSS/ {print $2}' <<<"$st")
    [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
    [ -n "$r" ] && [ "$r" -gt "$rss_max" ] && rss_max=$r
    a=$(awk '/^RssAnon/ {print $2}' <<<"$st")
    f=$(awk '/^RssFile/ {print $2}' <<<"$st")
    [ -n "$a" ] && [ "$a" -gt "$anon_max" ] && anon_max=$a
    [ -n "$f" ] && [ "$f" -gt "$file_max" ] && file_max=$f
    # utime + stime in clock ticks (fields 14, 15 of stat)
    c=$(awk '{print $14 + $15}' "/proc/$COL_PID/stat" 2>/dev/null || echo "$cpu")
    [ -n "$c" ] && cpu=$c
  fi
  sleep 0.2
done
rc=0
wait "$COL_PID" || rc=$?
COL_PID=
t1=$(date +%s%N)
[ $rc -eq 0 ] || { echo "collector exited $rc" >&2; tail -20 "$T/collector.log" >&2; exit 1; }
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) / 1e9}')
# the idle grace (1 s) and the idle detection are not shipping time
ship=$(awk -v s="$secs" 'BEGIN {printf "%.2f", s - 1.2}')
hz=$(getconf CLK_TCK)
cpus=$(awk -v c="$cpu" -v h="$hz" 'BEGIN {printf "%.2f", c / h}')
acked=$(grep -o 'records acked' "$T/collector.log" >/dev/null &&
  sed -n 's/.*stopped: \([0-9]*\) lines read, \([0-9]*\) records acked.*/\2/p' "$T/collector.log")
echo "collector: $acked records acked of $LINES lines"
echo "collector peak RSS (VmHWM): $((hwm / 1024)) MiB ($hwm KiB); highest samples: VmRSS $((rss_max / 1024)) MiB, RssAnon $((anon_max / 1024)) MiB, RssFile $((file_max / 1024)) MiB"
echo "collector CPU: ${cpus} s ($(awk -v c="$cpus" -v n="$LINES" 'BEGIN {printf "%.0f", n / c}') lines per CPU-second)"
echo "throughput: $(awk -v s="$ship" -v n="$LINES" 'BEGIN {printf "%.0f", n / s}') lines/s" \
  "($(awk -v s="$ship" -v b="$bytes" 'BEGIN {printf "%.1f", b / s / 1048576}') MiB/s) over ${ship} s end to end"
[ "$acked" = "$LINES" ] || { echo "FAIL: not every line was acked" >&2; exit 1; }
if [ $((hwm / 1024)) -ge "$BUDGET_MIB" ]; then
  echo "FAIL: peak RSS over the ${BUDGET_MIB} MiB budget" >&2
  exit 1
fi
echo "ok: peak RSS within the ${BUDGET_MIB} MiB budget"
