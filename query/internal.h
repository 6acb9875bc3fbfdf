/* query/internal.h: declarations shared by the files of query/ only.
 * Nothing outside query/ (tests excepted) includes this header.
 *
 * cli.c turns argv into a qry_opts, search.c/stats.c run one command against
 * the store, output.c renders records as text, JSON or CSV.
 */
#ifndef CAIRN_QUERY_INTERNAL_H
#define CAIRN_QUERY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/err.h"
#include "proto/proto.h"
#include "query/query.h"
#include "storage/storage.h"

#define QRY_DEFAULT_LIMIT 100u

typedef enum qry_format {
  QRY_FMT_TEXT = 0,
  QRY_FMT_JSON,
  QRY_FMT_CSV,
} qry_format;

/* One parsed command line. Strings are borrowed from argv / the qry_env. */
typedef struct qry_opts {
  const char *cmd;      /* "search", "stats" */
  const char *data_dir; /* --data or CAIRN_DATA; never NULL once parsed */
  sto_query q;          /* filters, time range, limit, order */
  qry_format format;    /* --output */
  bool print_stats;     /* --stats: index used / examined / matched to err */
} qry_opts;

/* ---- commands (search.c, stats.c); each returns a QRY_EXIT_* status ---- */

/* Open o->data_dir read-only into *out. On failure writes the one-line
 * reason (storage's own message when it has one) to env->err and returns
 * QRY_EXIT_USAGE; QRY_EXIT_OK otherwise. Close with sto_close. */
int qry__store_open(const qry_opts *o, const qry_env *env, sto_env **out);

/* Run a search and render the matches to env->out. 0 / 1 (nothing) / 2. */
int qry__search_cmd(const qry_opts *o, const qry_env *env);

/* Print the store counters (sto_stats_get) in o->format. 0 / 2. */
int qry__stats_cmd(const qry_opts *o, const qry_env *env);

/* ---- rendering (output.c) ---- */

/* Renders records one by one. In aligned text mode rows are held back in
 * windows of QRY_ALIGN_WINDOW so the columns of a window line up; everything
 * else is written as soon as it is rendered. */
#define QRY_ALIGN_WINDOW 256u

typedef struct qry_row {
  size_t off;       /* start of this row's cells in qry_writer.rows */
  size_t len[4];    /* bytes of time, node, ident, stream cells */
  size_t msg_len;   /* bytes of the escaped message */
  int stream_class; /* 0 plain, 1 stderr (coloured red) */
} qry_row;

typedef struct qry_writer {
  FILE *out;          /* borrowed */
  qry_format fmt;     /* private */
  bool align;         /* private: text only, buffer rows to align columns */
  bool color;         /* private: ANSI colours in text output */
  cairn_buf line;     /* private: scratch for one rendered record */
  cairn_buf rows;     /* private: cells of held-back rows (align mode) */
  qry_row *pending;   /* private: QRY_ALIGN_WINDOW rows, owned */
  size_t npending;    /* private */
  size_t width[3];    /* private: column widths so far (node, ident, stream) */
  uint64_t written;   /* read-only: records rendered */
} qry_writer;

/* Set up w for out. align/color only affect QRY_FMT_TEXT. CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err qry__writer_init(qry_writer *w, FILE *out, qry_format fmt, bool align,
                                            bool color);

/* Write what precedes the first record (the CSV header row). CAIRN_E_IO. */
CAIRN_MUST_CHECK cairn_err qry__writer_begin(qry_writer *w);

/* Render one record (borrowed for the call). CAIRN_E_NOMEM, CAIRN_E_IO
 * (errno tells why). */
CAIRN_MUST_CHECK cairn_err qry__writer_record(qry_writer *w, const Cairn__Record *r);

/* Write held-back rows and flush out. CAIRN_E_NOMEM, CAIRN_E_IO. */
CAIRN_MUST_CHECK cairn_err qry__writer_finish(qry_writer *w);

/* Release w's memory (does not close out). Safe on a zeroed writer. */
void qry__writer_fini(qry_writer *w);

/* Append bytes p[0..n) for a terminal: valid printable UTF-8 as is, \n \r \t
 * and \\ as two-character escapes, other control characters (C0, DEL, C1) as
 * \xNN or \uNNNN, and every byte that is not part of valid UTF-8 as \xNN.
 * The result is one line of valid UTF-8. CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err qry__text_escape(cairn_buf *out, const uint8_t *p, size_t n);

/* Append p[0..n) as one RFC 4180 field: quoted (with "" for ") when it holds
 * a comma, quote, CR or LF or starts/ends with a space; bytes that are not
 * valid UTF-8 and NUL become \xNN so the file stays valid UTF-8 text.
 * CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err qry__csv_field(cairn_buf *out, const uint8_t *p, size_t n);

/* Length of the valid UTF-8 sequence starting at p[0..n), or 0 when p[0]
 * does not start one (overlong forms, surrogates and > U+10FFFF are invalid).
 * *cp receives the code point when the result is non-zero. */
size_t qry__utf8_seq(const uint8_t *p, size_t n, uint32_t *cp);

#endif
