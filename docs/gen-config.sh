#!/usr/bin/env bash
# docs/gen-config.sh: regenerate the option tables in docs/CONFIGURATION.md
# from the daemons' own --help output (which comes from their option tables,
# so the doc cannot drift from the code).
#
#   docs/gen-config.sh BUILD_DIR           rewrite the generated blocks in place
#   docs/gen-config.sh --check BUILD_DIR   exit 1 (with a diff) when they are stale
#
# The blocks sit between "<!-- BEGIN generated: DAEMON -->" and
# "<!-- END generated: DAEMON -->"; everything else in the file is kept.
set -euo pipefail

check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
build=${1:?usage: docs/gen-config.sh [--check] BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
doc="$here/CONFIGURATION.md"

# table DAEMON: the markdown table for one daemon, from `DAEMON --help`.
# --help prints, per option:
#   "  --flag VALUE"                            (VALUE absent for booleans)
#   "      CAIRN_ENV[ (required)][, default D]; key K"
#   "      help text"
table() {
  "$build/$1" --help | awk '
    function flush() {
      if (flag == "") return
      gsub(/\|/, "\\|", help)
      printf "| `--%s%s` | `%s` | %s | %s | %s |\n", flag, arg, env, key, def, help
      flag = ""
    }
    /^  --/ {
      flush()
      line = substr($0, 5)
      n = split(line, w, " ")
      flag = w[1]; arg = (n > 1) ? " " w[2] : ""
      env = ""; key = ""; def = ""; help = ""; state = 1
      next
    }
    /^      / && flag != "" {
      text = substr($0, 7)
      if (state == 1) {
        state = 2
        if (flag == "check-config" || flag == "help") { help = text; env = "-"; key = "-"; def = "-"; next }
        split(text, parts, "; ")
        head = parts[1]; rest = substr(text, length(head) + 3)
        if (flag == "config") { env = head; key = "-"; def = "-"; help = rest; next }
        sub(/^key /, "", rest); key = "`" rest "`"
        req = index(head, " (required)") > 0
        sub(/ \(required\)/, "", head)
        d = index(head, ", default ")
        if (d > 0) { def = "`" substr(head, d + 10) "`"; env = substr(head, 1, d - 1) }
        else { env = head; def = req ? "required" : "-" }
        next
      }
      help = (help == "" ? text : help " " text)
    }
    END { flush() }' | {
    echo "| flag | environment | YAML key | default | meaning |"
    echo "| --- | --- | --- | --- | --- |"
    cat
  }
}

render() {
  local d out=$1
  cp "$doc" "$out"
  for d in cairn-aggregator cairn-collector; do
    local tbl
    tbl=$(mktemp)
    table "$d" >"$tbl"
    awk -v d="$d" -v tf="$tbl" '
      $0 == "<!-- BEGIN generated: " d " -->" { print; while ((getline l < tf) > 0) print l; skip = 1; next }
      $0 == "<!-- END generated: " d " -->" { skip = 0 }
      !skip { print }' "$out" >"$out.new"
    mv "$out.new" "$out"
    rm -f "$tbl"
    grep -q "^<!-- BEGIN generated: $d -->" "$out" || { echo "gen-config.sh: no block for $d in $doc" >&2; exit 2; }
  done
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
render "$tmp"
if [ $check -eq 1 ]; then
  if ! diff -u "$doc" "$tmp"; then
    echo "docs/CONFIGURATION.md is stale: run docs/gen-config.sh $build" >&2
    exit 1
  fi
  echo "docs/CONFIGURATION.md matches --help of both daemons"
else
  cp "$tmp" "$doc"
fi
