#!/usr/bin/env bash
# bench/query/run.sh [--quick] [--records N] [--reps N] [--store DIR] [--table FILE]:
# the query benchmark of issue 6 (docs/PERFORMANCE.md, "Query").
#
# Builds (or reuses) a store of N generated records (default 10,000,000;
# --quick 1,000,000) with bench-query-gen: container lines from 1000 pods in
# 20 namespaces over 3 days, auditd and Kubernetes audit events, written
# through storage's API without fsync, and the same records' message text as
# one plain file per day. Then, with the real cairn-query binary, median of
# --reps runs (default 5) each:
#   selective  search --pod P --since H --until H+1h --limit 100 (first page)
#   audit      audit --key K, audit --auid A over the whole store (first page)
#   regex      stats --since DAY --until DAY+1 --regex RE (a count, no index
#              but time), against grep -cE RE on that day's text file in the
#              same run: MB of message text per CPU-second, counts compared
#   stats      stats --by namespace over the whole store
# with query recording off (CAIRN_QUERY_RECORD=0), plus the selective query
# once more with it on (its write txn and fsync are part of that wall time).
# and prints one table (also appended to --table FILE when given).
#
# --store DIR keeps the store and text files in DIR (created; reused when it
# already holds N records: building 10 M takes ~3 minutes and ~7 GB), else a
# temp dir removed at exit. The Release build is $CAIRN_BENCH_BUILD
# (default build-bench/), as for bench/run.sh.
set -euo pipefail

S=$(cd "$(dirname "$0")/../.." && pwd)
NREC=10000000
REPS=5
STORE=
TABLE=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) NREC=1000000 ;;
    --records) NREC=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --store) STORE=$2; shift ;;
    --table) TABLE=$2; shift ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "usage: bench/query/run.sh [--quick] [--records N] [--reps N] [--store DIR] [--table FILE]" >&2; exit 2 ;;
  esac
  shift
done

B=${CAIRN_BENCH_BUILD:-$S/build-bench}
T=$(mktemp -d "${TMPDIR:-/tmp}/cairn-qbench.XXXXXX")
cleanup() { rm -rf "$T"; }
trap cleanup EXIT
if [ -z "$STORE" ]; then STORE=$T/q; fi
mkdir -p "$STORE/text"

die() { echo "bench/query: $*" >&2; exit 1; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else print v[int((NR+1)/2)]}'; }
kv() { grep -o "\b$1=[^ ]*" "$2" | tail -1 | cut -d= -f2; }
calc() { awk "BEGIN {printf \"%.${2:-0}f\", $1}"; }

if [ -z "${CAIRN_BENCH_NO_BUILD:-}" ]; then # bench/run.sh has just built the tree
  cmake -S "$S" -B "$B" -DCMAKE_BUILD_TYPE=Release >"$T/cmake.log" 2>&1 || { cat "$T/cmake.log"; die "cmake failed"; }
  cmake --build "$B" -j2 --target cairn-query bench-query-gen bench-runstat >"$T/build.log" 2>&1 ||
    { tail -30 "$T/build.log"; die "build failed"; }
fi

# ---- store ----
"$B/bench-query-gen" --data "$STORE/store" --text "$STORE/text" --records "$NREC" >"$T/gen.out" ||
  die "bench-query-gen failed"
# the per-day sizes are only printed by the run that built the store: keep them
if grep -q msg_bytes "$T/gen.out"; then cp "$T/gen.out" "$STORE/gen.out"; fi
[ -s "$STORE/gen.out" ] || die "$STORE holds a store but not gen.out: use an empty --store"
G=$STORE/gen.out
DAY=2
day_line=$(grep "^DAY k=$DAY " "$G")
day_since=$(echo "$day_line" | grep -o 'since=[^ ]*' | cut -d= -f2)
day_until=$(echo "$day_line" | grep -o 'until=[^ ]*' | cut -d= -f2)
day_bytes=$(echo "$day_line" | grep -o 'msg_bytes=[^ ]*' | cut -d= -f2)
day_file=$STORE/text/day-$DAY.txt
[ -s "$day_file" ] || die "missing $day_file"
pod=$(kv pod "$G")
since=$(kv since "$G")
until=$(kv until "$G")
key=$(kv key "$G")
auid=$(kv auid "$G")
# two regexes: one with a long literal (grep's Boyer-Moore case) and one with
# classes and an alternation that no literal search can skip
RES=("connection (refused|reset)" "expired for [a-z]+ [0-9]+ after [0-9]{4} ms|connection (refused|reset)")
Q=$B/cairn-query
# the table times the queries; recording each query as an audit record (the
# default, one write txn with fsync) is timed once on its own below
export CAIRN_QUERY_RECORD=0

# run NAME CMD...: REPS runs, each's wall/cpu into $T/NAME.wall / .cpu, and
# cairn-query's own elapsed_ms (--stats) into .ms when printed
run() {
  local name=$1
  shift
  for rep in $(seq "$REPS"); do
    "$B/bench-runstat" "$T/rs" "$@" >"$T/$name.out" 2>"$T/$name.err" || {
      local rc=$?
      [ $rc = 1 ] || die "$name failed ($rc): $(head -3 "$T/$name.err")"
    }
    echo "$(calc "$(kv wall_s "$T/rs")*1000" 2)" >>"$T/$name.wall"
    echo "$(kv cpu_s "$T/rs")" >>"$T/$name.cpu"
    if grep -q elapsed_ms "$T/$name.err"; then kv elapsed_ms "$T/$name.err" >>"$T/$name.ms"; fi
  done
}
med() { median <"$T/$1.$2"; }

run sel "$Q" search --data "$STORE/store" --pod "$pod" --since "$since" --until "$until" --limit 100 --stats
sel_rows=$(wc -l <"$T/sel.out")
CAIRN_QUERY_RECORD=1 run selrec "$Q" search --data "$STORE/store" --pod "$pod" --since "$since" \
  --until "$until" --limit 100 --stats
run key "$Q" audit --data "$STORE/store" --key "$key" --stats
run auid "$Q" audit --data "$STORE/store" --auid "$auid" --stats
for i in 0 1; do
  run re$i "$Q" stats --data "$STORE/store" --since "$day_since" --until "$day_until" --regex "${RES[$i]}"
  run grep$i grep -cE "${RES[$i]}" "$day_file"
  cairn_n[$i]=$(awk '/^records/ {print $2}' "$T/re$i.out")
  grep_n[$i]=$(cat "$T/grep$i.out")
  [ "${cairn_n[$i]}" = "${grep_n[$i]}" ] ||
    die "regex '${RES[$i]}': cairn-query counts ${cairn_n[$i]}, grep ${grep_n[$i]}"
  re_mbs[$i]=$(calc "$day_bytes/1e6/$(med re$i cpu)" 0)
  grep_mbs[$i]=$(calc "$day_bytes/1e6/$(med grep$i cpu)" 0)
  re_wmbs[$i]=$(calc "$day_bytes/1e6/($(med re$i wall)/1000)" 0)
  grep_wmbs[$i]=$(calc "$day_bytes/1e6/($(med grep$i wall)/1000)" 0)
done
run ns "$Q" stats --data "$STORE/store" --by namespace --top 0
{
  echo
  echo "================ cairn query benchmark $(date -u +%Y-%m-%dT%H:%MZ), $(git -C "$S" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$S" diff --quiet 2>/dev/null || echo '+'), $NREC records, median of $REPS ================"
  printf "%-58s %10s %12s %10s\n" "query" "wall ms" "in-query ms" "budget"
  printf "%-58s %10s %12s %10s\n" "selective: one pod, one hour, first page ($sel_rows rows)" "$(med sel wall)" "$(med sel ms)" "< 50 ms"
  printf "%-58s %10s %12s %10s\n" "  the same, recording the query in the store (default)" "$(med selrec wall)" "$(med selrec ms)" ""
  printf "%-58s %10s %12s %10s\n" "audit --key $key, whole store, first page" "$(med key wall)" "$(med key ms)" "< 200 ms"
  printf "%-58s %10s %12s %10s\n" "audit --auid $auid, whole store, first page" "$(med auid wall)" "$(med auid ms)" "< 200 ms"
  printf "%-58s %10s %12s %10s\n" "stats --by namespace, whole store" "$(med ns wall)" "" ""
  echo
  echo "regex over day $DAY: $(calc "$day_bytes/1e6" 0) MB of message text, $(echo "$day_line" | grep -o 'records=[^ ]*' | cut -d= -f2) records; cairn-query stats --regex RE (a count) vs grep -cE RE on the day's text file"
  printf "%-58s %10s %10s %10s %10s %7s\n" "regex (same count from both)" "cairn MB/s" "(wall)" "grep MB/s" "(wall)" "ratio"
  for i in 0 1; do
    printf "%-58s %10s %10s %10s %10s %7s\n" "regex $((i + 1)) (${cairn_n[$i]} matches)" "${re_mbs[$i]}" "${re_wmbs[$i]}" "${grep_mbs[$i]}" "${grep_wmbs[$i]}" \
      "$(awk -v a="${re_mbs[$i]}" -v b="${grep_mbs[$i]}" 'BEGIN {printf "%.2f", a/b}')"
  done
  echo "regex 1: '${RES[0]}'"
  echo "regex 2: '${RES[1]}'"
  echo "MB/s = MB of message text per CPU-second of one process (user+sys, one core); (wall) = per wall-clock second; ratio = cairn / grep per CPU-second; budget >= 500 MB/s"
  echo "wall ms = process start to exit (bench-runstat); in-query ms = cairn-query --stats elapsed_ms (sto_query_run alone)"
} | tee -a "${TABLE:-/dev/null}"
