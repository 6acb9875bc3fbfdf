#!/usr/bin/env bash
# read_on_change_test.sh: a line written to a quiet file reaches the
# aggregator within seconds although the collector polls idle files only every
# 10 minutes (--read-interval 10m): the inotify watch on each followed file
# (--read-on-change, the default) triggers the read. Covers a plain file, a
# file followed through a symlink (the watch is on the target's inode), a
# write to a file after it was renamed away (rotation: the watch follows the
# inode), and a deletion. Each line must arrive within 20 s, far below the
# poll; every line is stored exactly once.
. "$(dirname "$0")/lib.sh"

certs
start_aggregator
mkdir -p "$T/logs/containers" "$T/logs/pods/app"
line() { printf '%s stdout F read-on-change %s seq=%08d\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$1" "$2"; }
A=$T/logs/containers/quiet-6c5d8-00001_default_app-$(printf '%064d' 1).log
P=$T/logs/pods/app/0.log
L=$T/logs/containers/linked-6c5d8-00001_default_app-$(printf '%064d' 2).log
line plain 0 >"$A"
line linked 1 >"$P"
ln -s "$P" "$L"
start_collector "$T/logs/containers/*.log" --read-interval 10m --rotate-wait 10m
wait_for 60 "the 2 initial lines stored" stored_at_least 2

seq=2
max_ms=0
# append_and_wait FILE WHAT: one more line to FILE, stored within 20 s
append_and_wait() {
  local t0 ms
  t0=$(date +%s%N)
  line "$2" $seq >>"$1"
  seq=$((seq + 1))
  wait_for 20 "line $((seq - 1)) ($2) stored without a poll (--read-interval 10m)" stored_at_least $seq
  ms=$((($(date +%s%N) - t0) / 1000000))
  [ $ms -gt $max_ms ] && max_ms=$ms
  return 0
}
for i in 1 2 3; do
  append_and_wait "$A" plain
  append_and_wait "$L" linked
done
pass "6 lines written to quiet files stored within 20 s each (slowest ${max_ms} ms, poll 10 min)"

mv "$A" "$A.1" # rotated away: the watch is on the inode, not the name
append_and_wait "$A.1" "renamed"
pass "a line written to a renamed file arrives on change (slowest ${max_ms} ms)"

append_and_wait "$P" "linked-again"
assert_exactly_once $seq
pass "$seq lines stored exactly once"
grep -q 'read-on-change renamed' "$T/all.jsonl" || fail "the renamed file's line is missing"

rm -f "$A.1"
wait_for 20 "the deleted file to be noticed without a poll" grep -q "was deleted" "$T/collector.log"
pass "a deletion is noticed on change too"

stop collector || fail "collector did not exit 0 on SIGTERM"
stop aggregator || fail "aggregator did not exit 0 on SIGTERM"
FAILED=0
