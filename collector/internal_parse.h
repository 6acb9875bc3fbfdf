/* collector/internal_parse.h: declarations shared by the parser files of
 * collector/ (parse.c, parse_cri.c, parse_docker.c, parse_audit*.c,
 * parse_k8s.c, dry_run*.c). Private to
 * collector/; tests include it to reach the file driver and the helpers.
 *
 * Design: format front-ends only split a physical line into a col_frag; all
 * reassembly, truncation and flagging lives in one place (col__frag_feed).
 */
#ifndef CAIRN_COLLECTOR_INTERNAL_PARSE_H
#define CAIRN_COLLECTOR_INTERNAL_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/parse.h"
#include "common/buf.h"

#define COL_DEFAULT_MAX_RECORD ((size_t)1 << 20)

/* Reassembly buffers above this capacity are released after their record is
 * emitted, so one huge record does not pin memory for the life of the file. */
#define COL_ACC_KEEP_CAP ((size_t)64 << 10)

enum { COL_STREAM_OUT = 0, COL_STREAM_ERR = 1, COL_NSTREAMS = 2 };

/* Per-stream reassembly state. */
typedef struct col_acc {
  cairn_buf buf;       /* reassembled bytes, at most max_record; owned */
  cairn_buf attrs;     /* docker attrs JSON of the first fragment incl. NUL; len 0 = none */
  bool pending;        /* a partial record is open */
  int64_t time_ns;     /* ns, of the first fragment */
  size_t full_len;     /* bytes seen so far, including those beyond max_record */
  uint32_t fragments;  /* physical lines merged so far */
  uint64_t first_line; /* 1-based line of the first fragment */
  uint64_t start_off;  /* file offset of the first fragment's line */
} col_acc;

struct col_audit;

struct col_parser {
  Cairn__Format fmt;
  Cairn__Source source;      /* stamped on every record, unparsed ones too */
  size_t max_record;         /* bytes kept per record */
  col_acc acc[COL_NSTREAMS]; /* indexed by COL_STREAM_* (cri, docker) */
  struct col_audit *audit;   /* auditd grouping state; owned, NULL for other formats */
};

/* One parsed physical line, as handed from a format front-end to the
 * reassembler. Pointers are borrowed for the call. */
typedef struct col_frag {
  int stream;          /* COL_STREAM_* */
  int64_t time_ns;     /* ns */
  const uint8_t *data; /* content bytes (final '\n' already stripped) */
  size_t len;
  bool final;             /* completes the record (CRI F, docker value ending in '\n') */
  const char *attrs_json; /* NUL-terminated, or NULL */
} col_frag;

/* Append f to its stream and emit the record when f is final. A final
 * fragment with nothing pending is emitted straight from f->data (no copy).
 * On CAIRN_E_NOMEM nothing was changed, so the line may be fed again. */
CAIRN_MUST_CHECK cairn_err col__frag_feed(col_parser *p, const col_frag *f, uint64_t off,
                                          uint64_t line_no, uint64_t end_off, col_rec_cb cb,
                                          void *ud);

/* Emit line as an UNPARSED record (raw bytes, truncated at max_record). */
void col__emit_unparsed(const col_parser *p, const uint8_t *line, size_t len, uint64_t line_no,
                        uint64_t end_off, col_rec_cb cb, void *ud);

/* Format front-ends; same contract as col_parser_line. */
CAIRN_MUST_CHECK cairn_err col__cri_line(col_parser *p, const uint8_t *line, size_t len,
                                         uint64_t off, uint64_t line_no, col_rec_cb cb, void *ud);
CAIRN_MUST_CHECK cairn_err col__docker_line(col_parser *p, const uint8_t *line, size_t len,
                                            uint64_t off, uint64_t line_no, col_rec_cb cb,
                                            void *ud);

/* Kubernetes audit front-end; same contract as col_parser_line. */
CAIRN_MUST_CHECK cairn_err col__k8s_line(col_parser *p, const uint8_t *line, size_t len,
                                         uint64_t off, uint64_t line_no, col_rec_cb cb, void *ud);

/* Apply truncation at max_record (keeping whole characters) and the UTF-8
 * flag to r, whose msg holds at least min(full_len, max_record) bytes, then
 * emit it. */
void col__rec_finish_emit(const col_parser *p, col_rec *r, col_rec_cb cb, void *ud);

/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF). */
bool col__utf8_valid(const uint8_t *s, size_t n);

/* Largest m <= n such that cutting s at m does not split a multi-byte UTF-8
 * character that is well-formed so far (used when truncating). */
size_t col__utf8_cut(const uint8_t *s, size_t n);

/* What col__parse_file saw, in the terms of corpus/expected/summary.json. */
typedef struct col_file_summary {
  uint64_t physical_lines; /* '\n'-terminated lines fed */
  uint64_t records;        /* parsed records emitted (audit: records inside the events) */
  uint64_t events;         /* audit events emitted (0 for other formats) */
  uint64_t unparsed;       /* UNPARSED records emitted */
  uint64_t gaps;           /* audit serial gap records emitted */
  uint64_t lost;           /* serials they report missing */
  uint64_t tail_line;      /* line number of an incomplete last line, 0 = none */
  uint64_t tail_bytes;     /* bytes after the last '\n' */
  size_t npending;         /* streams holding partials at EOF */
  const char *pending[2];  /* "stdout"/"stderr", static strings */
  uint64_t safe_offset;    /* col_parser_safe_offset at EOF */
} col_file_summary;

/* Parse the whole file at path as fmt with max_record (0 = default), calling
 * cb for every record; a last line without '\n' is held back (reported in
 * sum, never fed). Pending audit events are flushed at EOF (all = true).
 * CAIRN_E_NOTFOUND / CAIRN_E_IO when the file cannot be
 * read (errbuf says why), CAIRN_E_INVAL for a bad fmt, CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err col__parse_file(Cairn__Format fmt, size_t max_record, const char *path,
                                           col_rec_cb cb, void *ud, col_file_summary *sum,
                                           char *errbuf, size_t errlen);

#endif
