#!/usr/bin/env bash
# report_html_test.sh: an evidence bundle end to end, rendered in a real
# browser. A real aggregator (signing checkpoints) and collector store CRI
# lines, some of them hostile HTML; `cairn-query export` writes a bundle that
# `verify-export` accepts with the auditor's copy of the public key; headless
# Chromium (Debian package chromium) renders report.html and the DOM it built
# must show the query, who ran it, the counts, the histogram and the
# verification result, and no element injected by a record. A screenshot is
# taken too (kept in $REPORT_SCREENSHOT when set, for a human to look at).
. "$(dirname "$0")/lib.sh"

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || fail "chromium is needed (Debian package chromium; .ci/deps.sh installs it)"

N=600
certs
start_aggregator --sign-interval 300ms
cp "$T/data/signing.pub" "$T/auditor.pub"

mkdir -p "$T/logs"
"$B/gen-cri" --dir "$T/logs" --files 4 --lines $N
# hostile lines: markup and a quote-breaking attribute in the message
hostile="$T/logs/evil-pod-0_payments_api-$(printf '%064d' 7).log"
now=$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)
{
  echo "$now stdout F <script>document.title='pwned'</script> evil-marker-1"
  echo "$now stderr F \"><img src=x onerror=alert(1)><b>evil-marker-2</b>"
} >"$hostile"
start_collector "$T/logs/*.log"
wait_for 60 "$((N + 2)) records stored" stored_at_least $((N + 2))
all_signed() {
  "$B/cairn-query" verify --data "$T/data" --public-key "$T/auditor.pub" >"$T/verify.out" 2>&1 &&
    grep -q "unsigned:     0 records" "$T/verify.out"
}
wait_for 30 "a checkpoint covering every record" all_signed
pass "$((N + 2)) records stored and signed"

# export one namespace
B_DIR="$T/bundle"
"$B/cairn-query" export --data "$T/data" --out "$B_DIR" --namespace payments \
  --public-key "$T/auditor.pub" >"$T/export.out" 2>"$T/export.err" ||
  fail "export failed: $(cat "$T/export.out" "$T/export.err")"
grep -q "(verified)" "$T/export.out" || fail "export did not verify: $(cat "$T/export.out")"
[ ! -s "$T/export.err" ] || fail "export wrote to stderr (not a TTY: no progress expected): $(cat "$T/export.err")"
for f in records.jsonl records.bin manifest.json report.html; do
  [ -s "$B_DIR/$f" ] || fail "bundle lacks $f"
done
count=$(wc -l <"$B_DIR/records.jsonl")
[ "$count" -gt 2 ] || fail "only $count records exported"
grep -q '"namespace":"payments"' "$B_DIR/records.jsonl" || fail "records are not the payments records"
! grep -q '"namespace":"checkout"' "$B_DIR/records.jsonl" || fail "records of another namespace exported"
pass "exported $count payments records"

out=$("$B/cairn-query" verify-export "$B_DIR" --public-key "$T/auditor.pub") ||
  fail "verify-export of the fresh bundle failed: $out"
grep -q "verify-export: OK" <<<"$out" || fail "no OK: $out"
pass "verify-export: $(grep records: <<<"$out" | tr -s ' ')"

# a copy of the bundle with one record edited fails offline
cp -r "$B_DIR" "$T/edited"
sed -i '0,/evil-marker-1/s//EVIL-MARKER-1/' "$T/edited/records.jsonl"
rc=0
"$B/cairn-query" verify-export "$T/edited" --public-key "$T/auditor.pub" >/dev/null 2>"$T/edited.err" || rc=$?
[ $rc -eq 3 ] || fail "edited bundle: exit $rc, want 3"
grep -q "FILE_HASH: records.jsonl" "$T/edited.err" || fail "edited bundle: $(cat "$T/edited.err")"
pass "an edited bundle fails verify-export (exit 3, FILE_HASH)"

# render in headless Chromium
chrome() {
  timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage \
    --user-data-dir="$(mktemp -d "$T/chrome.XXXXXX")" "$@"
}
chrome --dump-dom "file://$B_DIR/report.html" >"$T/dom.html" 2>"$T/chrome.log" ||
  fail "chromium --dump-dom failed"
[ -s "$T/dom.html" ] || fail "chromium produced no DOM"
dom() { grep -q -e "$1" "$T/dom.html" || fail "the rendered page lacks $2"; }
dom 'id="verification-status">VERIFIED<' "the verification result"
dom 'id="query-command">cairn-query export --data' "the query command line"
dom "--namespace payments" "the namespace filter"
dom "id=\"count-total\">$count<" "the record count ($count)"
dom '<table id="count-namespace">' "the counts by namespace"
dom '<td>payments</td><td class="n">'"$count"'<' "payments with $count records"
dom '<td>node-1</td>' "the node count"
dom 'id="exporter-user">'"$(id -un)"'<' "who exported ($(id -un))"
dom '<svg id="histogram-svg"' "the histogram"
dom '<rect class="bar"' "histogram bars"
dom '&lt;script&gt;document.title=' "the hostile record, as text"
# nothing a record carried became an element, and no script ran
! grep -q '<script' "$T/dom.html" || fail "a <script> element is in the rendered DOM"
! grep -q '<img' "$T/dom.html" || fail "an <img> element is in the rendered DOM"
! grep -q '<b>evil-marker' "$T/dom.html" || fail "a <b> element from a record is in the DOM"
grep -q '<title>cairn evidence export</title>' "$T/dom.html" || fail "the title changed: a script ran"
pass "Chromium renders the query, exporter, counts, histogram and VERIFIED; hostile records stay text"

chrome --screenshot="$T/report.png" --window-size=1200,2400 --hide-scrollbars \
  "file://$B_DIR/report.html" >"$T/chrome-shot.log" 2>&1 || fail "chromium --screenshot failed"
[ "$(head -c 8 "$T/report.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
  fail "the screenshot is not a PNG"
[ "$(stat -c %s "$T/report.png")" -gt 20000 ] || fail "the screenshot is nearly empty"
[ -z "${REPORT_SCREENSHOT:-}" ] || cp "$T/report.png" "$REPORT_SCREENSHOT"
pass "screenshot $(stat -c %s "$T/report.png") bytes"

stop collector || fail "collector did not exit 0"
stop aggregator || fail "aggregator did not exit 0"
FAILED=0
