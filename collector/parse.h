/* collector/parse.h: streaming log-format parsers (CRI, docker json-file) and
 * Kubernetes path metadata. Private to collector/ (the public collector API is
 * collector/collector.h); tests include it directly.
 *
 * A parser is fed physical lines of one file in order and emits completed
 * records through a callback, in completion order (CRI P..F and docker 16 KiB
 * chunks are reassembled per stream).
 *
 * Caveats:
 *  - A col_rec and every pointer in it are valid only during the callback.
 *  - A line that does not parse is emitted as a record with
 *    CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED and the raw bytes as message;
 *    it is never dropped.
 *  - Checkpoints must use col_parser_safe_offset(), not the offset of the last
 *    line: a partial record of the other stream may still be pending.
 */
#ifndef CAIRN_COLLECTOR_PARSE_H
#define CAIRN_COLLECTOR_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "proto/proto.h"

/* ---- path metadata ---- */

typedef enum col_path_kind {
  COL_PATH_UNKNOWN = 0,
  COL_PATH_CONTAINERS, /* /var/log/containers/<pod>_<ns>_<container>-<64hex>.log */
  COL_PATH_PODS,       /* /var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log[.<ts>[.gz]] */
  COL_PATH_DOCKER,     /* .../<64hex>-json.log */
} col_path_kind;

typedef struct col_meta {
  col_path_kind kind;
  char kube_namespace[256];
  char pod[256];
  char pod_uid[64];
  char container[256];
  char container_id[65];
  int restart_count;      /* -1 when not encoded */
  char rotated_suffix[16]; /* "YYYYMMDD-hhmmss" or "" */
  bool compressed;        /* ends in .gz */
} col_meta;

/* Decompose path (any prefix directories allowed; matching is on the trailing
 * components). Unknown layouts give kind COL_PATH_UNKNOWN and empty fields. */
void col_meta_from_path(const char *path, col_meta *out);

/* ---- record parsers ---- */

typedef struct col_rec {
  int64_t time_ns;          /* of the first fragment; 0 for unparsed lines */
  Cairn__LogStream stream;  /* LOG_STREAM_UNKNOWN for unparsed lines */
  uint32_t flags;           /* CAIRN__RECORD_FLAG__* bits */
  const uint8_t *msg;       /* reassembled bytes (or raw line when unparsed) */
  size_t msg_len;
  size_t full_len;          /* length before truncation (== msg_len unless truncated) */
  uint32_t fragments;       /* physical lines merged */
  uint64_t first_line;      /* 1-based physical line numbers */
  uint64_t last_line;
  uint64_t end_offset;      /* byte offset just after the last line's '\n' */
  const char *attrs_json;   /* docker "attrs" object as JSON text, or NULL */
} col_rec;

typedef void (*col_rec_cb)(const col_rec *r, void *ud);

typedef struct col_parser col_parser;

/* New parser for fmt (CAIRN__FORMAT__FORMAT_CRI or _DOCKER). max_record: bytes
 * a record may hold before it is truncated and flagged (0 = 1 MiB).
 * CAIRN_E_INVAL for an unsupported format, CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err col_parser_new(Cairn__Format fmt, size_t max_record, col_parser **out);
void col_parser_free(col_parser *p); /* NULL is fine */

/* Feed one physical line (without its '\n'); off is the byte offset of the
 * line's first byte in the file, line_no its 1-based number. Emits 0..n
 * records via cb. CAIRN_E_NOMEM only (bad input becomes unparsed records). */
CAIRN_MUST_CHECK cairn_err col_parser_line(col_parser *p, const uint8_t *line, size_t len,
                                           uint64_t off, uint64_t line_no, col_rec_cb cb,
                                           void *ud);

/* The offset from which re-reading the file loses nothing: the start of the
 * oldest pending partial record, or next_off (offset after the last fed line)
 * when nothing is pending. */
uint64_t col_parser_safe_offset(const col_parser *p, uint64_t next_off);

/* Streams that still hold partial fragments ("stdout", "stderr"), for the
 * dry run's summary; returns the count written into out (max 2). */
size_t col_parser_pending(const col_parser *p, const char *out[2]);

/* Dry run: parse the file at file_path as fmt, taking metadata from meta_path
 * (or file_path when NULL), and write one JSON object per record to f in the
 * field names of ../shared/corpus/expected/. Returns CAIRN_E_IO /
 * CAIRN_E_NOTFOUND if the file cannot be read (errbuf says why). */
CAIRN_MUST_CHECK cairn_err col_parse_dry_run(Cairn__Format fmt, const char *file_path,
                                             const char *meta_path, FILE *f, char *errbuf,
                                             size_t errlen);

#endif
