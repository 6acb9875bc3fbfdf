/* collector/internal_docker.h: the two halves of the docker json-file
 * front-end (collector/parse_docker.c), exposed so tests and benchmarks can
 * run them separately. Private to collector/.
 *
 * col__docker_line() (declared in internal_parse.h) first tries the fast
 * scanner on the exact shape the docker daemon writes,
 *   {"log":"<chunk>","stream":"stdout|stderr","time":"<RFC3339Nano>"}
 * (no whitespace, no other keys, keys in this order, nothing after '}'), and
 * hands every other line to the jansson path, so the scanner only has to be
 * right about lines it accepts: for those it yields exactly what jansson
 * would (same bytes after JSON unescaping, \uXXXX and surrogate pairs
 * included, same UTF-8 strictness, same time). Lines it declines (attrs,
 * other key order, whitespace, bad escapes, invalid UTF-8, bad time, a log
 * value decoding to more than COL_DOCKER_FAST_MAX bytes) go to jansson, which
 * also decides whether they are unparsed.
 */
#ifndef CAIRN_COLLECTOR_INTERNAL_DOCKER_H
#define CAIRN_COLLECTOR_INTERNAL_DOCKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/internal_parse.h"

/* Largest decoded "log" value the fast scanner handles (the daemon writes
 * chunks of at most 16 KiB); it decodes into a stack buffer of this size. */
#define COL_DOCKER_FAST_MAX ((size_t)16 << 10)

/* One line split by the fast scanner. */
typedef struct col_docker_fields {
  const uint8_t *log; /* decoded log value without its final '\n'; points into the
                         line or into the caller's scratch buffer */
  size_t log_len;
  bool final;      /* the decoded value ended in '\n' (which log_len excludes) */
  int stream;      /* COL_STREAM_OUT or COL_STREAM_ERR */
  int64_t time_ns; /* parsed "time" */
} col_docker_fields;

/* The fast scanner: true when line has the common shape and every field is
 * valid, with *out filled (scratch must hold COL_DOCKER_FAST_MAX bytes and
 * outlive the use of out->log). false means "not sure": use the jansson path.
 * Never allocates. */
bool col__docker_scan_fast(const uint8_t *line, size_t len, uint8_t *scratch,
                           col_docker_fields *out);

/* The jansson path alone (the reference the fast scanner is checked
 * against); same contract as col_parser_line. */
CAIRN_MUST_CHECK cairn_err col__docker_line_json(col_parser *p, const uint8_t *line, size_t len,
                                                 uint64_t off, uint64_t line_no, col_rec_cb cb,
                                                 void *ud);

#endif
