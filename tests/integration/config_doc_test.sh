# tests/integration/config_doc_test.sh: docs/CONFIGURATION.md lists exactly
# the options of both daemons (regenerated from their --help output by
# docs/gen-config.sh); fails with a diff when an option changed and the doc
# was not regenerated.
source "$(dirname "$0")/lib.sh"

bash "$S/docs/gen-config.sh" --check "$B" >"$T/gen-config.log" 2>&1 ||
  fail "docs/CONFIGURATION.md is stale; run: docs/gen-config.sh $B  ($(head -c 2000 "$T/gen-config.log"))"
pass "docs/CONFIGURATION.md matches --help"

# the examples in the doc are accepted as they are
awk '/^```yaml aggregator/{f=1;next} /^```/{f=0} f' "$S/docs/CONFIGURATION.md" >"$T/agg.yaml"
awk '/^```yaml collector/{f=1;next} /^```/{f=0} f' "$S/docs/CONFIGURATION.md" >"$T/col.yaml"
awk '/^```yaml kafka/{f=1;next} /^```/{f=0} f' "$S/docs/CONFIGURATION.md" >"$T/kafka.yaml"
for f in agg col kafka; do [ -s "$T/$f.yaml" ] || fail "no '$f' YAML example in docs/CONFIGURATION.md"; done
"$B/cairn-aggregator" --config "$T/agg.yaml" --check-config >"$T/agg.out" 2>&1 ||
  fail "aggregator example rejected: $(cat "$T/agg.out")"
NODE_NAME=node-1 "$B/cairn-collector" --config "$T/col.yaml" --check-config >"$T/col.out" 2>&1 ||
  fail "collector example rejected: $(cat "$T/col.out")"
"$B/cairn-aggregator" --config "$T/kafka.yaml" --check-config >"$T/kafka.out" 2>&1 ||
  fail "Kafka example rejected: $(cat "$T/kafka.out")"
grep -q 'security.protocol=SASL_SSL' "$T/kafka.out" || fail "Kafka example lost its properties"
pass "configuration examples pass --check-config"

# a typo in a key is an error with file and line (exit 2)
printf 'listen: 127.0.0.1:0\nmetrics:\n  lisen: 127.0.0.1:0\n' >"$T/typo.yaml"
rc=0
"$B/cairn-aggregator" --config "$T/typo.yaml" --check-config >"$T/typo.out" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "typo: exit $rc, want 2"
grep -q 'typo.yaml:3' "$T/typo.out" || fail "typo error does not name file:line: $(cat "$T/typo.out")"
pass "unknown YAML keys are rejected with file:line"
FAILED=0
