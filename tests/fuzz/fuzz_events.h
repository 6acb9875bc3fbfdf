/* tests/fuzz/fuzz_events.h: the body shared by fuzz_audit.c and fuzz_k8s.c,
 * the parsers that turn lines into events (auditd groups records by serial,
 * a Kubernetes audit line is one JSON event).
 *
 * The input is a log file, split on '\n'; complete lines are fed in order
 * (a last line without '\n' is held back, as the tailer does). An empty line
 * also triggers col_parser_flush(all = false), as an idle file at EOF does,
 * so the fuzzer reaches the flush paths mid-stream; the end of the input is
 * flush(false) then flush(true). Runs with max_record 64 and the default.
 * Checked for every record: msg_len <= max_record, msg_len <= full_len,
 * TRUNCATED exactly when full_len > max_record, source matches the format,
 * stream UNKNOWN, end_offset strictly increasing (dedupe order) and <= bytes
 * fed, 1 <= first_line <= last_line <= lines fed, fragments >= 1 except for a
 * serial-gap record (audit_lost > 0, fragments 0), UNPARSED records are one
 * line with time 0; every attr is read in full. After every line:
 * safe_offset <= bytes fed (for k8s-audit it equals the bytes fed: nothing
 * is ever pending; auditd's may step back while a serial gap is pending, by
 * design). After the final flush(true): nothing pending and safe_offset ==
 * bytes fed.
 */
#ifndef CAIRN_TESTS_FUZZ_FUZZ_EVENTS_H
#define CAIRN_TESTS_FUZZ_FUZZ_EVENTS_H

#include <string.h>

#include "collector/parse.h"
#include "tests/fuzz/fuzz.h"

typedef struct fuzz_ev_ctx {
  Cairn__Format fmt;
  size_t max_record; /* effective limit */
  uint64_t lines;    /* lines fed so far */
  uint64_t fed;      /* bytes fed so far, '\n' included */
  uint64_t last_end; /* end_offset of the previous record */
  uint64_t records;
} fuzz_ev_ctx;

static void fuzz_ev_rec(const col_rec *r, void *ud) {
  fuzz_ev_ctx *c = ud;
  c->records++;
  FUZZ_CHECK(r->msg != NULL || r->msg_len == 0);
  FUZZ_CHECK(r->msg_len <= c->max_record);
  FUZZ_CHECK(r->msg_len <= r->full_len);
  bool truncated = (r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED) != 0;
  FUZZ_CHECK(truncated == (r->full_len > c->max_record));
  if (!truncated) FUZZ_CHECK(r->msg_len == r->full_len);
  FUZZ_CHECK(r->source == (c->fmt == CAIRN__FORMAT__FORMAT_AUDITD
                               ? CAIRN__SOURCE__SOURCE_AUDIT
                               : CAIRN__SOURCE__SOURCE_K8S_AUDIT));
  FUZZ_CHECK(r->stream == CAIRN__LOG_STREAM__LOG_STREAM_UNKNOWN);
  FUZZ_CHECK(r->end_offset > c->last_end);
  FUZZ_CHECK(r->end_offset <= c->fed);
  c->last_end = r->end_offset;
  FUZZ_CHECK(r->first_line >= 1 && r->first_line <= r->last_line);
  FUZZ_CHECK(r->last_line <= c->lines);
  if (r->audit_lost > 0) {
    FUZZ_CHECK(c->fmt == CAIRN__FORMAT__FORMAT_AUDITD);
    FUZZ_CHECK(r->fragments == 0 && r->audit == NULL);
  } else {
    FUZZ_CHECK(r->fragments >= 1);
  }
  if (r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED) {
    FUZZ_CHECK(r->fragments == 1 && r->first_line == r->last_line);
    FUZZ_CHECK(r->time_ns == 0);
  }
  if (c->fmt == CAIRN__FORMAT__FORMAT_K8S_AUDIT) {
    /* one line, one event, emitted while that line is fed */
    FUZZ_CHECK(r->fragments == 1 && r->first_line == r->last_line && r->last_line == c->lines);
    FUZZ_CHECK(r->end_offset == c->fed);
  }
  FUZZ_CHECK(r->attrs != NULL || r->n_attrs == 0);
  for (size_t i = 0; i < r->n_attrs; i++) {
    FUZZ_CHECK(r->attrs[i].key != NULL);
    FUZZ_CHECK(r->attrs[i].val != NULL || r->attrs[i].len == 0);
    fuzz_touch(r->attrs[i].key, strlen(r->attrs[i].key));
    fuzz_touch(r->attrs[i].val, r->attrs[i].len);
  }
  fuzz_touch(r->msg, r->msg_len);
}

/* Feed data as a whole file to a parser for fmt with max_record. */
static void fuzz_ev_file(Cairn__Format fmt, size_t max_record, const uint8_t *data, size_t size) {
  col_parser *p = NULL;
  cairn_err e = col_parser_new(fmt, max_record, &p);
  FUZZ_CHECK(e == CAIRN_OK && p != NULL);
  fuzz_ev_ctx c = {.fmt = fmt, .max_record = max_record ? max_record : (size_t)1 << 20};
  uint64_t safe_prev = 0;
  size_t pos = 0;
  while (pos < size) {
    const uint8_t *nl = memchr(data + pos, '\n', size - pos);
    if (!nl) break; /* incomplete last line: held back */
    size_t len = (size_t)(nl - (data + pos));
    /* an exact-size copy, so a read past the line's end is caught */
    uint8_t *line = malloc(len ? len : 1);
    FUZZ_CHECK(line != NULL);
    memcpy(line, data + pos, len);
    c.lines++;
    c.fed = pos + len + 1;
    e = col_parser_line(p, line, len, pos, c.lines, fuzz_ev_rec, &c);
    free(line);
    FUZZ_CHECK(e == CAIRN_OK); /* CAIRN_E_NOMEM only, never for bad input */
    if (len == 0) FUZZ_CHECK(col_parser_flush(p, false, fuzz_ev_rec, &c) == CAIRN_OK);
    pos += len + 1;

    uint64_t safe = col_parser_safe_offset(p, c.fed);
    FUZZ_CHECK(safe <= c.fed);
    /* auditd may step back: a pending serial gap starts at the line of the
     * serial before the hole, so a re-read finds the hole again */
    if (fmt == CAIRN__FORMAT__FORMAT_K8S_AUDIT) FUZZ_CHECK(safe == c.fed && safe >= safe_prev);
    safe_prev = safe;
  }
  FUZZ_CHECK(col_parser_flush(p, false, fuzz_ev_rec, &c) == CAIRN_OK);
  FUZZ_CHECK(col_parser_flush(p, true, fuzz_ev_rec, &c) == CAIRN_OK);
  FUZZ_CHECK(col_parser_audit_pending(p) == 0);
  FUZZ_CHECK(col_parser_safe_offset(p, c.fed) == c.fed);
  col_parser_free(p);
}

/* The whole target: both max_record settings. */
static int fuzz_ev_input(Cairn__Format fmt, const uint8_t *data, size_t size) {
  fuzz_ev_file(fmt, 64, data, size);
  fuzz_ev_file(fmt, 0, data, size);
  return 0;
}

#endif
