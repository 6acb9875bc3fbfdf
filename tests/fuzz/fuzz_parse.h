/* tests/fuzz/fuzz_parse.h: the body shared by fuzz_cri.c and fuzz_docker.c.
 *
 * The input is a log file: it is split on '\n' and the complete lines are fed
 * to col_parser_line in order, as the tailer does (a last line without '\n'
 * is held back, never fed). It runs twice: with max_record 64, so truncation
 * and the UTF-8 cut are reached by short inputs, and with the default 1 MiB.
 * Checked for every record: msg_len <= max_record, msg_len <= full_len and
 * TRUNCATED set exactly when full_len > max_record, fragments >= 1 and
 * within the record's line span, the record completes on the line being fed,
 * end_offset is just after that line (<= bytes fed), UNPARSED records are
 * single lines; after every line: safe_offset <= bytes fed, never decreasing,
 * and below the bytes fed only while a stream has a partial record pending.
 */
#ifndef CAIRN_TESTS_FUZZ_FUZZ_PARSE_H
#define CAIRN_TESTS_FUZZ_FUZZ_PARSE_H

#include <string.h>

#include "collector/parse.h"
#include "tests/fuzz/fuzz.h"

typedef struct fuzz_parse_ctx {
  Cairn__Format fmt;
  size_t max_record; /* effective limit */
  uint64_t line_no;  /* line being fed */
  uint64_t line_off; /* its first byte */
  uint64_t line_len; /* without '\n' */
  uint64_t fed;      /* bytes fed so far, including this line's '\n' */
  uint64_t records;
} fuzz_parse_ctx;

static void fuzz_parse_rec(const col_rec *r, void *ud) {
  fuzz_parse_ctx *c = ud;
  c->records++;
  FUZZ_CHECK(r->msg != NULL || r->msg_len == 0);
  FUZZ_CHECK(r->msg_len <= c->max_record);
  FUZZ_CHECK(r->msg_len <= r->full_len);
  bool truncated = (r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED) != 0;
  FUZZ_CHECK(truncated == (r->full_len > c->max_record));
  if (!truncated) FUZZ_CHECK(r->msg_len == r->full_len);
  FUZZ_CHECK(r->fragments >= 1);
  FUZZ_CHECK(r->first_line >= 1 && r->first_line <= r->last_line);
  FUZZ_CHECK(r->last_line == c->line_no);
  FUZZ_CHECK(r->fragments <= r->last_line - r->first_line + 1);
  FUZZ_CHECK(r->end_offset == c->line_off + c->line_len + 1);
  FUZZ_CHECK(r->end_offset <= c->fed);
  if (r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED) {
    FUZZ_CHECK(r->fragments == 1 && r->first_line == r->last_line);
    FUZZ_CHECK(r->stream == CAIRN__LOG_STREAM__LOG_STREAM_UNKNOWN && r->time_ns == 0);
    FUZZ_CHECK(r->full_len == c->line_len);
  } else {
    FUZZ_CHECK(r->stream == CAIRN__LOG_STREAM__LOG_STREAM_STDOUT ||
               r->stream == CAIRN__LOG_STREAM__LOG_STREAM_STDERR);
  }
  if (r->attrs_json) {
    FUZZ_CHECK(c->fmt == CAIRN__FORMAT__FORMAT_DOCKER);
    fuzz_touch(r->attrs_json, strlen(r->attrs_json));
  }
  fuzz_touch(r->msg, r->msg_len);
}

/* Feed data as a whole file to a parser for fmt with max_record. */
static void fuzz_parse_file(Cairn__Format fmt, size_t max_record, const uint8_t *data,
                            size_t size) {
  col_parser *p = NULL;
  cairn_err e = col_parser_new(fmt, max_record, &p);
  FUZZ_CHECK(e == CAIRN_OK && p != NULL);
  fuzz_parse_ctx c = {.fmt = fmt, .max_record = max_record ? max_record : (size_t)1 << 20};
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
    c.line_no++;
    c.line_off = pos;
    c.line_len = len;
    c.fed = pos + len + 1;
    uint64_t before = c.records;
    e = col_parser_line(p, line, len, pos, c.line_no, fuzz_parse_rec, &c);
    free(line);
    FUZZ_CHECK(e == CAIRN_OK); /* CAIRN_E_NOMEM only, never for bad input */
    FUZZ_CHECK(c.records - before <= 1); /* one line completes at most one record */
    pos += len + 1;

    uint64_t safe = col_parser_safe_offset(p, c.fed);
    FUZZ_CHECK(safe <= c.fed);
    FUZZ_CHECK(safe >= safe_prev);
    const char *pend[2];
    size_t npend = col_parser_pending(p, pend);
    FUZZ_CHECK(npend <= 2);
    FUZZ_CHECK((safe < c.fed) == (npend > 0)); /* a pending record starts before fed */
    safe_prev = safe;
  }
  col_parser_free(p);
}

/* The whole target: both max_record settings. */
static int fuzz_parse_input(Cairn__Format fmt, const uint8_t *data, size_t size) {
  fuzz_parse_file(fmt, 64, data, size);
  fuzz_parse_file(fmt, 0, data, size);
  return 0;
}

#endif
