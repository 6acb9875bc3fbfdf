#!/usr/bin/env bash
# bench/run.sh [--quick] [--reps N] [--no-rsyslog] [--no-callgrind] [--only LETTERS]: the cairn
# benchmark suite (docs/PERFORMANCE.md). Builds a Release tree
# ($CAIRN_BENCH_BUILD, default build-bench/), generates seeded inputs, runs
# every scenario N times (default 3; the median is reported, the machine is
# shared and noisy) and prints one table; the full log and the table go to
# bench/results/<UTC stamp>.txt. --only ce runs scenarios c and e alone (the
# table then shows - for the rest).
#
#   a  parser throughput per format, in memory, one thread (bench-parse-bench)
#   b  collector alone: tail+parse+protobuf+zstd+TLS into bench-null-sink
#   c  collector -> aggregator -> LMDB (--no-sync), without and with mock Kafka
#      (one record per message, and $CAIRN_BENCH_KAFKA_PER_MSG, default 500)
#   d  zstd -1 -T1 on the same input file: the compression ceiling
#   e  rsyslog (Debian): imfile -> omfwd TLS -> imtcp TLS -> omfile, same file
#   f  callgrind instruction counts of parse+encode on a fixed input, of the
#      aggregator process (includes startup) and of its hot path alone
#      (bench-agg-ingest: decode + store + index + chain; Kafka rendering)
#   g  query: one pod, one hour, first page over a large store
#   h  end-to-end latency at a fixed 10,000 lines/s: bench-latency writes CRI
#      lines stamped with their write time, collector -> aggregator -> LMDB;
#      p50/p99 of (ingest time - write time) over 60 s (quick: 15 s), and
#      the collector's CPU over the run; one more run on the poll alone
#      (--read-on-change=false)
#   i  the aggregator's hot path in one process (bench-agg-ingest): records
#      per CPU-second into LMDB, and of the Kafka forwarder's scan + JSON
#   q  query benchmark (bench/query/run.sh): 10 M records (quick: 1 M) of
#      container and audit records; selective, audit, regex vs grep, stats
#
# Every process runs on 127.0.0.1 with certificates from
# tests/tools/gen-certs.sh in a temp dir; rsyslogd instances run in the
# foreground with their own config, pid file and work dir there (the system
# rsyslog is never touched). Needs: cmake, zstd, valgrind, curl, rsyslog +
# rsyslog-openssl (apt-get install rsyslog rsyslog-openssl; scenario e is
# skipped with a note when rsyslogd is missing).
set -euo pipefail

S=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
REPS=3
RSYSLOG=1
ONLY=
CALLGRIND=1
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --reps) REPS=$2; shift ;;
    --no-rsyslog) RSYSLOG=0 ;;
    --no-callgrind) CALLGRIND=0 ;;
    --only) ONLY=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "usage: bench/run.sh [--quick] [--reps N] [--no-rsyslog] [--no-callgrind] [--only LETTERS]" >&2; exit 2 ;;
  esac
  shift
done

if [ $QUICK = 1 ]; then
  N=200000          # CRI lines for b..e
  NPARSE=100000     # lines per format for a
  NCG=10000         # callgrind input lines
  NSTORE=300000     # records in the query store
  NQUERY=1000000    # records of the query benchmark (q)
else
  N=1000000
  NPARSE=500000
  NCG=100000
  NSTORE=1000000
  NQUERY=10000000
fi

B=${CAIRN_BENCH_BUILD:-$S/build-bench}
RES=$S/bench/results
mkdir -p "$RES"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RES/$STAMP.txt
T=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench.XXXXXX")
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT

log() { echo "$*" | tee -a "$OUT" >&2; }
die() { log "bench: $*"; exit 1; }

# wait_for SECONDS WHAT COMMAND...
wait_for() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${secs}s waiting for $what"
    sleep 0.05
  done
}

# median of the numbers on stdin
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else print v[int((NR+1)/2)]}'; }
# kv KEY FILE: value of KEY=... on the last line of FILE that has it
kv() { grep -o "\b$1=[^ ]*" "$2" | tail -1 | cut -d= -f2; }
# CPU seconds (user+sys) of a live process
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$1/stat"; }
proc_hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
now_s() { date +%s.%N; }
fsize() { stat -c %s "$1"; }
calc() { awk "BEGIN {printf \"%.${2:-0}f\", $1}" 2>/dev/null || echo -; }
# want X: scenario X runs (all of them unless --only names a subset)
want() { [ -z "$ONLY" ] || [[ $ONLY == *"$1"* ]]; }

# ---- build ----
log "cairn benchmark $STAMP ($([ $QUICK = 1 ] && echo quick || echo full), $REPS reps)"
log "commit $(git -C "$S" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$S" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
log "machine: $(nproc) cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
cmake -S "$S" -B "$B" -DCMAKE_BUILD_TYPE=Release >"$T/cmake.log" 2>&1 || { cat "$T/cmake.log"; die "cmake failed"; }
cmake --build "$B" -j2 --target cairn-collector cairn-aggregator cairn-query gen-cri gen-docker gen-audit \
  mock-kafka bench-parse-bench bench-null-sink bench-store-bench bench-runstat bench-agg-ingest \
  bench-latency bench-query-gen >"$T/build.log" 2>&1 ||
  { tail -30 "$T/build.log"; die "build failed"; }

# ---- inputs ----
bash "$S/tests/tools/gen-certs.sh" "$T/pki" >/dev/null
mkdir -p "$T/in" "$T/parse" "$T/cg"
"$B/gen-cri" --dir "$T/in" --files 1 --lines "$N"
INS=("$T"/in/*.log)
IN=${INS[0]}
INBYTES=$(fsize "$IN")
"$B/gen-cri" --dir "$T/parse" --files 1 --lines "$NPARSE" --seed 2
"$B/gen-docker" --dir "$T/parse" --files 1 --lines "$NPARSE" --seed 2
"$B/gen-audit" --format auditd --out "$T/parse/audit.log" --lines "$NPARSE" --seed 2
"$B/gen-audit" --format k8s-audit --out "$T/parse/k8s-audit.log" --lines $((NPARSE / 5)) --seed 2 # ~800 B lines
"$B/gen-cri" --dir "$T/cg" --files 1 --lines "$NCG" --seed 3
"$B/gen-docker" --dir "$T/cg" --files 1 --lines "$NCG" --seed 3
log "input: $N CRI lines, $INBYTES bytes ($(calc "$INBYTES/$N") B/line)"

declare -A R # results: key -> value

if want a; then
# ---- a: parsers ----
parse_one() { # key format file [extra]
  local key=$1 fmt=$2 file=$3
  shift 3
  "$B/bench-parse-bench" --format "$fmt" --file "$file" --repeat $((REPS < 3 ? 3 : REPS)) "$@" >"$T/pa.$key" ||
    die "parse-bench $key failed"
  R[a.$key.lps]=$(kv lines_per_s "$T/pa.$key")
  R[a.$key.lpc]=$(kv lines_per_cpu_s "$T/pa.$key")
  R[a.$key.mbs]=$(kv mb_per_s "$T/pa.$key")
  cat "$T/pa.$key" >>"$OUT"
}
log "== a: parser throughput (one thread, in memory)"
PCRI=("$T"/parse/*_*.log)
PDOCKER=("$T"/parse/*-json.log)
parse_one cri cri "${PCRI[0]}"
parse_one docker docker "${PDOCKER[0]}"
parse_one docker_ref docker "${PDOCKER[0]}" --reference
parse_one auditd auditd "$T/parse/audit.log"
parse_one k8s k8s-audit "$T/parse/k8s-audit.log"
parse_one cri_enc cri "${PCRI[0]}" --encode

fi

# collector_run REP ADDR STATFILE: the collector on the input until idle (b, c)
collector_run() { # rep addr statfile
  "$B/bench-runstat" "$3" "$B/cairn-collector" --state "$T/state.$1" --aggregator "$2" \
    --server-name localhost --tls-cert "$T/pki/client.pem" --tls-key "$T/pki/client.key" \
    --tls-ca "$T/pki/ca.pem" --node-name node-1 --input "cri:$IN" --exit-when-idle \
    --idle-grace 200ms --log-level warn >>"$T/collector.log" 2>&1
}

if want b; then
# ---- b: collector -> null sink ----
log "== b: collector alone (null TLS receiver)"
for rep in $(seq "$REPS"); do
  rm -rf "$T/state.$rep" "$T/sink.addr"
  "$B/bench-null-sink" --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" \
    --tls-ca "$T/pki/ca.pem" --port-file "$T/sink.addr" --expect "$N" >"$T/sink.out" 2>&1 &
  sp=$!
  PIDS+=("$sp")
  wait_for 20 "null sink" test -s "$T/sink.addr"
  collector_run "$rep" "$(cat "$T/sink.addr")" "$T/rs.b.$rep" || die "collector failed (see $T/collector.log)"
  wait_for 10 "sink to count all records" grep -q DONE "$T/sink.out"
  st=$(kv start_s "$T/rs.b.$rep")
  last=$(kv last_batch_s "$T/sink.out")
  el=$(calc "$last-$st" 3)
  cpu=$(kv cpu_s "$T/rs.b.$rep")
  echo "$(calc "$N/$el")" >>"$T/b.lps"
  echo "$cpu" >>"$T/b.cpu"
  echo "$(calc "$N/$cpu")" >>"$T/b.lpc"
  echo "$(kv maxrss_kb "$T/rs.b.$rep")" >>"$T/b.rss"
  echo "$(calc "$INBYTES/$el")" >>"$T/b.bps"
  echo "$(kv payload_bytes "$T/sink.out")" >>"$T/b.out"
  echo "$(proc_cpu $sp)" >>"$T/b.sinkcpu"
  kill -TERM $sp; wait $sp || true
  log "  rep $rep: $(calc "$N/$el") lines/s, collector cpu ${cpu}s, rss $(kv maxrss_kb "$T/rs.b.$rep") kB, wire $(kv payload_bytes "$T/sink.out") B"
done
for k in lps cpu lpc rss bps out sinkcpu; do R[b.$k]=$(median <"$T/b.$k"); done

fi

if want c; then
# ---- c: collector -> aggregator -> LMDB (+ mock Kafka) ----
metric() { curl -s --max-time 2 "http://$1/metrics" | awk -v k="$2" '$1==k {print $2}'; }
log "== c: end to end into the aggregator (LMDB --no-sync)"
# kafka: 0 = none, 1 = mock Kafka (one record per message, the default),
# 2 = mock Kafka with --kafka-records-per-message $KPER (grouped messages),
# 3 = the same with --kafka-format protobuf (stored bytes, no JSON)
KPER=${CAIRN_BENCH_KAFKA_PER_MSG:-500}
for kafka in 0 1 2 3; do
  for rep in $(seq "$REPS"); do
    tag=c$kafka.$rep
    rm -rf "$T/data.$tag" "$T/state.$tag" "$T/agg.addr" "$T/agg.maddr" "$T/kafka.addr"
    kargs=()
    if [ $kafka != 0 ]; then
      "$B/mock-kafka" --port-file "$T/kafka.addr" --partitions 4 >"$T/kafka.log" 2>&1 &
      kp=$!
      PIDS+=("$kp")
      wait_for 30 "mock Kafka" test -s "$T/kafka.addr"
      kargs=(--kafka-brokers "$(cat "$T/kafka.addr")")
      [ $kafka = 2 ] && kargs+=(--kafka-records-per-message "$KPER")
      [ $kafka = 3 ] && kargs+=(--kafka-records-per-message "$KPER" --kafka-format protobuf)
    fi
    "$B/cairn-aggregator" --data "$T/data.$tag" --listen 127.0.0.1:0 --port-file "$T/agg.addr" \
      --metrics-listen 127.0.0.1:0 --metrics-port-file "$T/agg.maddr" --tls-cert "$T/pki/server.pem" \
      --tls-key "$T/pki/server.key" --tls-ca "$T/pki/ca.pem" --no-sync --log-level warn "${kargs[@]}" \
      >"$T/agg.log" 2>&1 &
    ap=$!
    PIDS+=("$ap")
    wait_for 30 "aggregator" test -s "$T/agg.addr"
    wait_for 30 "aggregator metrics" test -s "$T/agg.maddr"
    maddr=$(cat "$T/agg.maddr")
    cpu0=$(proc_cpu $ap)
    collector_run "$tag" "$(cat "$T/agg.addr")" "$T/rs.$tag" &
    cp=$!
    deadline=$((SECONDS + 300))
    while :; do
      stored=$(metric "$maddr" cairn_aggregator_records_stored_total)
      deliv=$N
      [ $kafka != 0 ] && deliv=$(metric "$maddr" cairn_aggregator_kafka_delivered_total)
      if [ "${stored:-0}" -ge "$N" ] && [ "${deliv:-0}" -ge "$N" ]; then break; fi
      kill -0 $cp 2>/dev/null || [ "${stored:-0}" -ge "$N" ] || die "collector exited before everything was stored (stored=$stored)"
      [ $SECONDS -lt $deadline ] || die "aggregator did not store/deliver $N records in 300s (stored=$stored delivered=$deliv)"
      sleep 0.05
    done
    tdone=$(now_s)
    acpu=$(calc "$(proc_cpu $ap)-$cpu0" 2)
    ahwm=$(proc_hwm_kb $ap)
    wait $cp || die "collector failed (see $T/collector.log)"
    st=$(kv start_s "$T/rs.$tag")
    el=$(calc "$tdone-$st" 3)
    ccpu=$(kv cpu_s "$T/rs.$tag")
    echo "$(calc "$N/$el")" >>"$T/c$kafka.lps"
    echo "$acpu" >>"$T/c$kafka.acpu"
    echo "$(calc "$N/$acpu")" >>"$T/c$kafka.alpc"
    echo "$(calc "$acpu*1000000000/$N")" >>"$T/c$kafka.ans"
    echo "$ahwm" >>"$T/c$kafka.arss"
    echo "$(calc "$N/($acpu+$ccpu)")" >>"$T/c$kafka.e2elpc"
    kill -TERM $ap; wait $ap || true
    if [ $kafka != 0 ]; then kill -TERM $kp; wait $kp || true; fi
    rm -rf "$T/data.$tag"
    log "  kafka=$kafka rep $rep: $(calc "$N/$el") records/s end to end, aggregator cpu ${acpu}s ($(calc "$N/$acpu") rec/cpu-s), collector cpu ${ccpu}s, aggregator rss ${ahwm} kB"
  done
  for k in lps acpu alpc ans arss e2elpc; do R[c$kafka.$k]=$(median <"$T/c$kafka.$k"); done
done

fi

if want h; then
# ---- h: end-to-end latency at a fixed rate ----
LATRATE=10000
stored_ge() { local v; v=$(metric "$1" cairn_aggregator_records_stored_total); [ "${v:-0}" -ge "$2" ]; }
LATSECS=$([ $QUICK = 1 ] && echo 15 || echo 60)
log "== h: end-to-end latency, $LATRATE lines/s for ${LATSECS}s (collector defaults) -> aggregator (--no-sync)"
# reps 1..N with the collector's defaults (reads on inotify write events,
# --batch-max-delay 100ms bounds the latency); one more run, "t", without the
# events: the --read-interval poll (250ms) alone, the fallback on NFS
for rep in $(seq "$REPS") t; do
  tag=h.$rep
  cargs=()
  [ "$rep" = t ] && cargs=(--read-on-change=false)
  rm -rf "$T/data.$tag" "$T/state.$tag" "$T/lat.$rep" "$T/agg.addr" "$T/agg.maddr"
  mkdir -p "$T/lat.$rep"
  LATF=$T/lat.$rep/latency-app-6c5d8-00001_payments_api-$(printf '%064d' "${rep/t/99}").log
  : >"$LATF"
  "$B/cairn-aggregator" --data "$T/data.$tag" --listen 127.0.0.1:0 --port-file "$T/agg.addr" \
    --metrics-listen 127.0.0.1:0 --metrics-port-file "$T/agg.maddr" --tls-cert "$T/pki/server.pem" \
    --tls-key "$T/pki/server.key" --tls-ca "$T/pki/ca.pem" --no-sync --log-level warn >"$T/agg.log" 2>&1 &
  ap=$!
  PIDS+=("$ap")
  wait_for 30 "aggregator" test -s "$T/agg.addr"
  wait_for 30 "aggregator metrics" test -s "$T/agg.maddr"
  "$B/cairn-collector" --state "$T/state.$tag" --aggregator "$(cat "$T/agg.addr")" --server-name localhost \
    --tls-cert "$T/pki/client.pem" --tls-key "$T/pki/client.key" --tls-ca "$T/pki/ca.pem" \
    --node-name node-1 --input "cri:$T/lat.$rep/*.log" --log-level warn "${cargs[@]}" >>"$T/collector.log" 2>&1 &
  cp=$!
  PIDS+=("$cp")
  # the collector has picked up the (empty) file once a first line written is stored
  "$B/bench-latency" write --file "$LATF" --rate 100 --seconds 0.01 >/dev/null
  wait_for 30 "collector to pick up the latency file" stored_ge "$(cat "$T/agg.maddr")" 1
  hc0=$(proc_cpu $cp)
  "$B/bench-latency" write --file "$LATF" --rate "$LATRATE" --seconds "$LATSECS" >"$T/h.write.$rep" ||
    die "bench-latency write failed"
  want=$((LATRATE * LATSECS + 1))
  wait_for 60 "aggregator to store all $want latency lines" stored_ge "$(cat "$T/agg.maddr")" "$want"
  hcpu=$(calc "$(proc_cpu $cp) - $hc0" 2)
  "$B/bench-latency" report --data "$T/data.$tag" --skip-seconds 1 >"$T/h.out.$rep" || die "bench-latency report failed"
  kill -TERM $cp $ap
  wait $cp $ap || true
  cat "$T/h.write.$rep" "$T/h.out.$rep" >>"$OUT"
  for k in p50_ms p99_ms max_ms; do
    if [ "$rep" = t ]; then R[ht.$k]=$(kv "$k" "$T/h.out.$rep"); else kv "$k" "$T/h.out.$rep" >>"$T/h.$k"; fi
  done
  if [ "$rep" = t ]; then R[ht.cpu]=$hcpu; else echo "$hcpu" >>"$T/h.cpu"; fi
  log "  rep $rep${cargs[*]:+ (${cargs[*]})}: $(cat "$T/h.out.$rep") collector_cpu_s=$hcpu"
  rm -rf "$T/data.$tag"
done
for k in p50_ms p99_ms max_ms cpu; do R[h.$k]=$(median <"$T/h.$k"); done

fi

if want i; then
# ---- i: the aggregator's hot path in one process ----
log "== i: aggregator hot path in one process (bench-agg-ingest, $N records, 8 batches per txn)"
"$B/bench-agg-ingest" --file "$IN" --data "$T/data.i" --repeat "$REPS" --kafka >"$T/i.out" ||
  die "bench-agg-ingest failed"
cat "$T/i.out" >>"$OUT"
R[i.ingest]=$(kv ingest_per_cpu_s "$T/i.out")
R[i.forward]=$(kv forward_per_cpu_s "$T/i.out")
rm -rf "$T/data.i"

fi

if want d; then
# ---- d: zstd ceiling ----
log "== d: zstd -1 -T1 on the same file"
for rep in $(seq "$REPS"); do
  "$B/bench-runstat" "$T/rs.d.$rep" zstd -q -1 -T1 -c "$IN" >"$T/zstd.out"
  echo "$(calc "$INBYTES/$(kv wall_s "$T/rs.d.$rep")")" >>"$T/d.bps"
  echo "$(calc "$INBYTES/$(kv cpu_s "$T/rs.d.$rep")")" >>"$T/d.bpc"
done
R[d.bps]=$(median <"$T/d.bps")
R[d.bpc]=$(median <"$T/d.bpc")
R[d.out]=$(fsize "$T/zstd.out")
rm -f "$T/zstd.out"
log "  zstd: $(calc "${R[d.bps]}/1000000" 1) MB/s, output ${R[d.out]} B"

fi

# ---- e: rsyslog ----
RSD=$(command -v rsyslogd || true)
[ -z "$RSD" ] && [ -x /usr/sbin/rsyslogd ] && RSD=/usr/sbin/rsyslogd
if [ $RSYSLOG = 1 ] && [ -n "$RSD" ] && want e; then
  log "== e: rsyslog $("$RSD" -v | head -1 | awk '{print $2}' | tr -d ,) imfile -> omfwd (TLS, ossl) -> imtcp (TLS) -> omfile"
  for rep in $(seq "$REPS"); do
    d=$T/rs$rep
    mkdir -p "$d/recv" "$d/ship"
    cat >"$d/recv.conf" <<EOF
global(workDirectory="$d/recv" maxMessageSize="64k"
       DefaultNetstreamDriver="ossl" DefaultNetstreamDriverCAFile="$T/pki/ca.pem"
       DefaultNetstreamDriverCertFile="$T/pki/server.pem" DefaultNetstreamDriverKeyFile="$T/pki/server.key")
module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="store") { action(type="omfile" file="$d/recv/out.log" template="raw") }
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="$d/recv.port" ruleset="store")
EOF
    "$RSD" -n -f "$d/recv.conf" -i "$d/recv.pid" >"$d/recv.log" 2>&1 &
    rp=$!
    PIDS+=("$rp")
    wait_for 20 "rsyslog receiver port" test -s "$d/recv.port"
    cat >"$d/ship.conf" <<EOF
global(workDirectory="$d/ship" maxMessageSize="64k"
       DefaultNetstreamDriver="ossl" DefaultNetstreamDriverCAFile="$T/pki/ca.pem"
       DefaultNetstreamDriverCertFile="$T/pki/client.pem" DefaultNetstreamDriverKeyFile="$T/pki/client.key")
module(load="imfile" mode="inotify")
template(name="raw" type="string" string="%rawmsg%")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port="$(head -1 "$d/recv.port")" protocol="tcp" template="raw"
         TCP_Framing="octet-counted"
         StreamDriver="ossl" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
         StreamDriverPermittedPeers="localhost")
}
input(type="imfile" file="$IN" tag="bench" ruleset="fwd")
EOF
    st=$(now_s)
    "$RSD" -n -f "$d/ship.conf" -i "$d/ship.pid" >"$d/ship.log" 2>&1 &
    shp=$!
    PIDS+=("$shp")
    deadline=$((SECONDS + 300))
    until [ -f "$d/recv/out.log" ] && [ "$(fsize "$d/recv/out.log")" -ge "$INBYTES" ]; do
      [ $SECONDS -lt $deadline ] || { cat "$d"/*.log >&2; die "rsyslog did not deliver the file in 300s"; }
      kill -0 $shp 2>/dev/null || { cat "$d/ship.log" >&2; die "rsyslog shipper exited"; }
      sleep 0.05
    done
    tdone=$(now_s)
    scpu=$(proc_cpu $shp)
    rcpu=$(proc_cpu $rp)
    shwm=$(proc_hwm_kb $shp)
    rhwm=$(proc_hwm_kb $rp)
    kill -TERM $shp $rp
    wait $shp $rp || true
    lines=$(wc -l <"$d/recv/out.log")
    [ "$lines" -eq "$N" ] || die "rsyslog receiver wrote $lines lines, expected $N"
    el=$(calc "$tdone-$st" 3)
    echo "$(calc "$N/$el")" >>"$T/e.lps"
    echo "$scpu" >>"$T/e.scpu"
    echo "$rcpu" >>"$T/e.rcpu"
    echo "$(calc "$N/$scpu")" >>"$T/e.slpc"
    echo "$(calc "$N/$rcpu")" >>"$T/e.rlpc"
    echo "$(calc "$N/($scpu+$rcpu)")" >>"$T/e.e2elpc"
    echo "$shwm" >>"$T/e.srss"
    echo "$rhwm" >>"$T/e.rrss"
    rm -rf "$d"
    log "  rep $rep: $(calc "$N/$el") lines/s, shipper cpu ${scpu}s rss ${shwm} kB, receiver cpu ${rcpu}s rss ${rhwm} kB"
  done
  for k in lps scpu rcpu slpc rlpc e2elpc srss rrss; do R[e.$k]=$(median <"$T/e.$k"); done
else
  log "== e: rsyslog skipped ($([ $RSYSLOG = 0 ] && echo --no-rsyslog || echo 'rsyslogd not installed: apt-get install rsyslog rsyslog-openssl'))"
fi

# ---- f: callgrind ----
cg_one() { # key lines format file [extra]
  local key=$1 lines=$2 fmt=$3 file=$4
  shift 4
  valgrind --tool=callgrind --callgrind-out-file="$T/cg.$key.out" "$B/bench-parse-bench" \
    --format "$fmt" --file "$file" --repeat 1 --lines "$lines" "$@" >"$T/cg.$key.log" 2>&1 ||
    die "callgrind $key failed"
  local ir
  ir=$(callgrind_annotate "$T/cg.$key.out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !d {gsub(",","",$1); print $1; d=1}')
  R[f.$key.ir]=$(calc "$ir/$lines")
  callgrind_annotate --inclusive=no "$T/cg.$key.out" 2>/dev/null |
    awk '/file:function/ {on=1; next} on && NF && k < 15 {print; k++}' >"$T/cg.$key.top"
  {
    echo "-- callgrind $key: $ir instructions for $lines lines (self cost, top 15):"
    cat "$T/cg.$key.top"
  } >>"$OUT"
}
if [ $CALLGRIND = 1 ] && command -v valgrind >/dev/null && want f; then
  log "== f: callgrind ($NCG lines)"
  CGCRI=("$T"/cg/*_*.log)
  CGDOCKER=("$T"/cg/*-json.log)
  cg_one cri_enc "$NCG" cri "${CGCRI[0]}" --encode
  cg_one cri "$NCG" cri "${CGCRI[0]}"
  cg_one docker "$NCG" docker "${CGDOCKER[0]}"
  cg_one docker_ref $((NCG / 5)) docker "${CGDOCKER[0]}" --reference # ~10x the instructions
  # the aggregator's whole hot path (TLS, zstd, decode, dedupe, LMDB, chain)
  # for NCG/5 records sent by a collector; includes its startup and shutdown
  nag=$((NCG / 5))
  mkdir -p "$T/cgagg"
  "$B/gen-cri" --dir "$T/cgagg" --files 1 --lines "$nag" --seed 4
  rm -f "$T/agg.addr"
  valgrind --tool=callgrind --callgrind-out-file="$T/cg.agg.out" "$B/cairn-aggregator" \
    --data "$T/data.cg" --listen 127.0.0.1:0 --port-file "$T/agg.addr" --tls-cert "$T/pki/server.pem" \
    --tls-key "$T/pki/server.key" --tls-ca "$T/pki/ca.pem" --no-sync --log-level warn >"$T/cg.agg.log" 2>&1 &
  vp=$!
  PIDS+=("$vp")
  wait_for 120 "aggregator under callgrind" test -s "$T/agg.addr"
  "$B/cairn-collector" --state "$T/state.cg" --aggregator "$(cat "$T/agg.addr")" --server-name localhost \
    --tls-cert "$T/pki/client.pem" --tls-key "$T/pki/client.key" --tls-ca "$T/pki/ca.pem" \
    --node-name node-1 --input "cri:$T/cgagg/*.log" --exit-when-idle --idle-grace 200ms \
    --log-level warn >>"$T/collector.log" 2>&1 || die "collector (callgrind run) failed"
  kill -TERM $vp
  wait $vp || true
  ir=$(callgrind_annotate "$T/cg.agg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !d {gsub(",","",$1); print $1; d=1}')
  R[f.agg.ir]=$(calc "$ir/$nag")
  {
    echo "-- callgrind aggregator: $ir instructions for $nag records (self cost, top 15):"
    callgrind_annotate --inclusive=no "$T/cg.agg.out" 2>/dev/null |
      awk '/file:function/ {on=1; next} on && NF && k < 15 {print; k++}'
  } >>"$OUT"
  rm -rf "$T/data.cg"
  # the aggregator's hot path alone, in one process (no startup, no network):
  # the writer thread's work (decode, dedupe, re-pack, records, indexes,
  # chain, commit) and the Kafka forwarder's (scan + JSON), separately
  valgrind --tool=callgrind --callgrind-out-file="$T/cg.ingest.out" --toggle-collect=ingest_run \
    "$B/bench-agg-ingest" --file "$T/cgagg/"*.log --data "$T/data.cgi" --repeat 1 >"$T/cg.ingest.log" 2>&1 ||
    die "callgrind agg-ingest failed"
  rm -rf "$T/data.cgi"
  valgrind --tool=callgrind --callgrind-out-file="$T/cg.forward.out" --toggle-collect='forward_run*' \
    "$B/bench-agg-ingest" --file "$T/cgagg/"*.log --data "$T/data.cgi" --repeat 1 --kafka >"$T/cg.forward.log" 2>&1 ||
    die "callgrind agg-ingest --kafka failed"
  rm -rf "$T/data.cgi"
  for k in ingest forward; do
    ir=$(callgrind_annotate "$T/cg.$k.out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !d {gsub(",","",$1); print $1; d=1}')
    R[f.$k.ir]=$(calc "$ir/$nag")
    {
      echo "-- callgrind agg-ingest $k: $ir instructions for $nag records (self cost, top 15):"
      callgrind_annotate --inclusive=no "$T/cg.$k.out" 2>/dev/null |
        awk '/file:function/ {on=1; next} on && NF && k < 15 {print; k++}'
    } >>"$OUT"
  done
else
  log "== f: callgrind skipped"
fi

if want g; then
# ---- g: query ----
log "== g: query, one pod one hour, first page (100), over $NSTORE records"
"$B/bench-store-bench" --data "$T/store" --records "$NSTORE" --queries 200 >"$T/g.out" || die "store-bench failed"
cat "$T/g.out" >>"$OUT"
R[g.build]=$(kv records_per_s "$T/g.out")
R[g.p50]=$(kv p50_ms "$T/g.out")
R[g.p99]=$(kv p99_ms "$T/g.out")
pod=$(kv pod "$T/g.out")
since=$(kv since "$T/g.out")
until=$(kv until "$T/g.out")
for rep in $(seq "$REPS"); do
  "$B/bench-runstat" "$T/rs.g.$rep" "$B/cairn-query" search --data "$T/store" --pod "$pod" \
    --since "$since" --until "$until" --limit 100 >"$T/g.cli" 2>&1 || die "cairn-query failed: $(head -3 "$T/g.cli")"
  echo "$(calc "$(kv wall_s "$T/rs.g.$rep")*1000" 1)" >>"$T/g.cli_ms"
done
R[g.cli]=$(median <"$T/g.cli_ms")
R[g.cli_rows]=$(wc -l <"$T/g.cli")
rm -rf "$T/store"

fi

if want q; then
# ---- q: query benchmark (its own table, reprinted below) ----
log "== q: query benchmark over $NQUERY records (bench/query/run.sh)"
CAIRN_BENCH_BUILD=$B CAIRN_BENCH_NO_BUILD=1 bash "$S/bench/query/run.sh" --records "$NQUERY" \
  --reps "$((REPS > 5 ? REPS : 5))" --store "$T/qstore" --table "$T/q.table" >>"$OUT" 2>&1 ||
  die "bench/query/run.sh failed (see $OUT)"
rm -rf "$T/qstore"

fi

# ---- table ----
# (scenarios left out by --only leave their keys unset: print - for them)
set +u
KPER=${KPER:-${CAIRN_BENCH_KAFKA_PER_MSG:-500}}
fmtn() { awk -v x="$1" 'BEGIN {if (x=="" || x=="nan") print "-"; else if (x>=1e6) printf "%.2fM", x/1e6; else if (x>=1e3) printf "%.0fk", x/1e3; else printf "%.3g", x}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a=="" || b=="" || b==0) print "-"; else printf "%.2f", a/b}'; }
{
  echo
  echo "================ cairn benchmark $STAMP ($([ $QUICK = 1 ] && echo quick || echo full): N=$N lines, median of $REPS) ================"
  printf "%-58s %12s %14s %10s\n" "scenario" "lines/s" "lines/cpu-s" "peak RSS"
  printf "%-58s %12s %14s %10s\n" "a. parse cri (in memory)" "$(fmtn "${R[a.cri.lps]}")" "$(fmtn "${R[a.cri.lpc]}")" ""
  printf "%-58s %12s %14s %10s\n" "a. parse docker (fast path)" "$(fmtn "${R[a.docker.lps]}")" "$(fmtn "${R[a.docker.lpc]}")" ""
  printf "%-58s %12s %14s %10s\n" "a. parse docker (jansson only, before)" "$(fmtn "${R[a.docker_ref.lps]}")" "$(fmtn "${R[a.docker_ref.lpc]}")" ""
  printf "%-58s %12s %14s %10s\n" "a. parse auditd" "$(fmtn "${R[a.auditd.lps]}")" "$(fmtn "${R[a.auditd.lpc]}")" ""
  printf "%-58s %12s %14s %10s\n" "a. parse k8s-audit" "$(fmtn "${R[a.k8s.lps]}")" "$(fmtn "${R[a.k8s.lpc]}")" ""
  printf "%-58s %12s %14s %10s\n" "a. parse cri + batch + protobuf + zstd (in memory)" "$(fmtn "${R[a.cri_enc.lps]}")" "$(fmtn "${R[a.cri_enc.lpc]}")" ""
  printf "%-58s %12s %14s %10s\n" "b. collector -> TLS null sink" "$(fmtn "${R[b.lps]}")" "$(fmtn "${R[b.lpc]}")" "$(calc "${R[b.rss]}/1024" 1)M"
  printf "%-58s %12s %14s %10s\n" "c. aggregator, LMDB no Kafka (records; cpu = aggregator)" "$(fmtn "${R[c0.lps]}")" "$(fmtn "${R[c0.alpc]}")" "$(calc "${R[c0.arss]}/1024" 1)M"
  printf "%-58s %12s %14s %10s\n" "c. aggregator, LMDB + mock Kafka" "$(fmtn "${R[c1.lps]}")" "$(fmtn "${R[c1.alpc]}")" "$(calc "${R[c1.arss]}/1024" 1)M"
  printf "%-58s %12s %14s %10s\n" "c. ... + Kafka, $KPER records per message" "$(fmtn "${R[c2.lps]}")" "$(fmtn "${R[c2.alpc]}")" "$(calc "${R[c2.arss]}/1024" 1)M"
  printf "%-58s %12s %14s %10s\n" "c. ... + Kafka, protobuf, $KPER records per message" "$(fmtn "${R[c3.lps]}")" "$(fmtn "${R[c3.alpc]}")" "$(calc "${R[c3.arss]}/1024" 1)M"
  printf "%-58s %12s %14s %10s\n" "c. end to end no Kafka (cpu = collector + aggregator)" "" "$(fmtn "${R[c0.e2elpc]}")" ""
  printf "%-58s %12s %14s %10s\n" "c. end to end + Kafka (cpu = collector + aggregator)" "" "$(fmtn "${R[c1.e2elpc]}")" ""
  printf "%-58s %12s %14s %10s\n" "c. end to end + Kafka protobuf x$KPER (collector + aggregator)" "" "$(fmtn "${R[c3.e2elpc]}")" ""
  printf "%-58s %12s %14s %10s\n" "i. aggregator hot path in process: decode + LMDB + chain" "" "$(fmtn "${R[i.ingest]}")" ""
  printf "%-58s %12s %14s %10s\n" "i. Kafka forwarder in process: scan + JSON (no librdkafka)" "" "$(fmtn "${R[i.forward]}")" ""
  if [ -n "${R[e.lps]:-}" ]; then
    printf "%-58s %12s %14s %10s\n" "e. rsyslog end to end (cpu = shipper + receiver)" "$(fmtn "${R[e.lps]}")" "$(fmtn "${R[e.e2elpc]}")" ""
    printf "%-58s %12s %14s %10s\n" "e. rsyslog shipper (imfile + omfwd TLS)" "" "$(fmtn "${R[e.slpc]}")" "$(calc "${R[e.srss]}/1024" 1)M"
    printf "%-58s %12s %14s %10s\n" "e. rsyslog receiver (imtcp TLS + omfile)" "" "$(fmtn "${R[e.rlpc]}")" "$(calc "${R[e.rrss]}/1024" 1)M"
  fi
  echo
  echo "collector: cpu $(calc "${R[b.cpu]}" 2) s per $N lines = $(calc "${R[b.cpu]}*1e9/$INBYTES" 2) cpu-s/GB; $(calc "${R[b.bps]}/1e6" 1) MB/s in, wire $(calc "${R[b.out]}/1e6" 1) MB (ratio $(ratio "$INBYTES" "${R[b.out]}"))"
  echo "aggregator: $(calc "${R[c0.ans]}" 0) ns cpu/record without Kafka, $(calc "${R[c1.ans]}" 0) with mock Kafka, $(calc "${R[c2.ans]}" 0) with $KPER records per Kafka message, $(calc "${R[c3.ans]}" 0) with $KPER protobuf records per message"
  echo "zstd -1 -T1: $(calc "${R[d.bps]}/1e6" 1) MB/s ($(calc "${R[d.bpc]}/1e6" 1) MB per cpu-s), output $(calc "${R[d.out]}/1e6" 1) MB (ratio $(ratio "$INBYTES" "${R[d.out]}"))"
  echo "ratio cairn-collector / zstd, bytes/s:       $(ratio "${R[b.bps]}" "${R[d.bps]}")   (budget >= 0.5)"
  echo "ratio cairn-collector / zstd, bytes/cpu-s:   $(ratio "$(calc "$INBYTES/${R[b.cpu]}")" "${R[d.bpc]}")"
  if [ -n "${R[e.lps]:-}" ]; then
    echo "ratio collector / rsyslog shipper, lines/cpu-s:   $(ratio "${R[b.lpc]}" "${R[e.slpc]}")   (budget >= 2.5)"
    echo "ratio aggregator+Kafka / rsyslog receiver, lines/cpu-s: $(ratio "${R[c1.alpc]}" "${R[e.rlpc]}")   (budget >= 1.2; without Kafka $(ratio "${R[c0.alpc]}" "${R[e.rlpc]}"), JSON x$KPER $(ratio "${R[c2.alpc]}" "${R[e.rlpc]}"), protobuf x$KPER $(ratio "${R[c3.alpc]}" "${R[e.rlpc]}"))"
    echo "ratio end to end (+Kafka) / rsyslog, lines/cpu-s: $(ratio "${R[c1.e2elpc]}" "${R[e.e2elpc]}")   (budget >= 1.5; without Kafka $(ratio "${R[c0.e2elpc]}" "${R[e.e2elpc]}"), protobuf x$KPER $(ratio "${R[c3.e2elpc]}" "${R[e.e2elpc]}"))"
    echo "ratio cairn end to end / rsyslog, lines/s (wall): $(ratio "${R[c1.lps]}" "${R[e.lps]}")"
  fi
  if [ -n "${R[f.cri_enc.ir]:-}" ]; then
    echo "callgrind instructions per line: cri parse $(calc "${R[f.cri.ir]}"), cri parse+batch+encode $(calc "${R[f.cri_enc.ir]}"), docker fast $(calc "${R[f.docker.ir]}"), docker jansson $(calc "${R[f.docker_ref.ir]}") (includes reading the input); aggregator $(calc "${R[f.agg.ir]}") per record (includes startup)"
  fi
  echo "latency at $LATRATE lines/s over ${LATSECS}s (write -> stored): p50 ${R[h.p50_ms]} ms, p99 ${R[h.p99_ms]} ms, max ${R[h.max_ms]} ms   (budget p99 < 500 ms), collector ${R[h.cpu]} CPU-s; on the poll alone (--read-on-change=false): p50 ${R[ht.p50_ms]} ms, p99 ${R[ht.p99_ms]} ms, collector ${R[ht.cpu]} CPU-s"
  if [ -n "${R[f.ingest.ir]:-}" ]; then
    echo "callgrind aggregator hot path (bench-agg-ingest, no startup): $(calc "${R[f.ingest.ir]}") instructions per record stored, $(calc "${R[f.forward.ir]}") per record forwarded (scan + JSON)"
  fi
  echo "query (${NSTORE} records, store build $(fmtn "${R[g.build]}") records/s): one pod one hour first page p50 ${R[g.p50]} ms, p99 ${R[g.p99]} ms (API); cairn-query CLI ${R[g.cli]} ms wall ($(calc "${R[g.cli_rows]}") rows)   (budget < 50 ms at 10M)"
  [ -f "$T/q.table" ] && cat "$T/q.table"
} | tee -a "$OUT"
echo "results: $OUT" >&2
