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
#define QRY_MAX_VALUES 32u   /* values of one repeated filter flag (OR) */
#define QRY_FOLLOW_POLL_MS 250u
#define QRY_DEFAULT_TOP 20u  /* stats --by: rows shown */

typedef enum qry_format {
  QRY_FMT_TEXT = 0,
  QRY_FMT_JSON,
  QRY_FMT_CSV,
} qry_format;

/* The raw values of the filter flags of one command line (borrowed from argv). */
typedef struct qry_values {
  const char *v[QRY_MAX_VALUES];
  size_t n;
} qry_values;

typedef struct qry_filter_args {
  qry_values field[STO_FIELD_COUNT_]; /* --namespace ... --status, by sto_field */
  qry_values grep, regex, stream, k8s_namespace;
  bool icase;          /* -i */
} qry_filter_args;

/* One parsed command line. Strings are borrowed from argv / the qry_env. */
typedef struct qry_opts {
  const char *cmd;      /* "search", "stats" */
  const char *data_dir; /* --data or CAIRN_DATA; never NULL once parsed */
  sto_query q;          /* filters, time range, limit, order */
  qry_format format;    /* --output */
  bool print_stats;     /* --stats: index used / examined / matched to err */
  const char *public_key; /* verify --public-key, NULL = DATA/signing.pub */
  /* search / audit / stats additions (filters.c builds them) */
  bool follow;          /* search --follow */
  bool verbose;         /* audit -v: every attr and the raw message */
  int audit_source;     /* audit: 0 both, else the one Cairn__Source the filters imply */
  int group;            /* stats --by: qry_group, -1 = none */
  size_t top;           /* stats --top, 0 = all */
  int64_t bucket_ns;    /* stats --histogram, 0 = none */
  struct qry_filter *filter; /* owned (qry__filter_free): text, regex, names; NULL = none */
  sto_term terms[STO_FIELD_COUNT_][QRY_MAX_VALUES]; /* q.terms point here */
  char strs[4096];      /* normalised filter values the terms point into */
  size_t strs_used;
  /* export / verify-export */
  const char *out_dir;  /* export --out: the bundle directory to create */
  const char *bundle;   /* verify-export BUNDLE_DIR (the one positional argument) */
  qry_filter_args args; /* the filter flags as given (export records them) */
  int argc;             /* the whole command line, for the export manifest */
  char *const *argv;
  /* remote mode (remote.c): NULL server = local store */
  const char *server;   /* --server HOST:PORT */
  const char *tls_cert; /* --tls-cert, --tls-key, --tls-ca: required with --server */
  const char *tls_key;
  const char *tls_ca;
  uint64_t *result_count; /* out: records the command returned, for the query
                             audit record (record_query.c); never NULL once parsed */
} qry_opts;

/* stats --by fields: the sto_field values, then these. */
enum {
  QRY_GROUP_SOURCE = STO_FIELD_COUNT_,
  QRY_GROUP_STREAM,
  QRY_GROUP_DECISION, /* k8s authorization decision attr */
  QRY_GROUP_COUNT_
};

/* ---- filters (filters.c) ---- */

/* Turn a's values into o->q.terms / o->q.stream / o->filter for command cmd
 * ("search", "audit", "stats"). Globs (* ? [) become prefix or glob terms;
 * --auid/--uid take numbers or a user name as logged (ENRICHED AUID=/UID=);
 * --syscall a number or an x86_64 name; --success yes/no; --status a code or
 * a pattern like 4xx. QRY_EXIT_OK, or QRY_EXIT_USAGE after one line on
 * env->err (bad value, bad regex). */
int qry__filters_build(const char *cmd, const qry_filter_args *a, const qry_env *env,
                       qry_opts *o);

/* Free what qry__filters_build allocated (compiled regexes). NULL is fine. */
void qry__filter_free(struct qry_filter *f);

/* x86_64 syscall name of number nr, NULL when not in the table. */
const char *qry__syscall_name(long nr);

/* Name of a stats group ("namespace", ..., "source", "stream", "decision"). */
const char *qry__group_name(int g);

/* Parse a stats --by name into *g; false when unknown. */
bool qry__group_parse(const char *s, int *g);

/* ---- remote mode (remote.c) ---- */

/* Run q like sto_query_run: against sto in local mode, or (o->server set)
 * on the aggregator over mutual TLS 1.3 with o->tls_*, sto unused (NULL).
 * Remotely the filters storage cannot run (q->msg_filter, q->filter) are
 * applied here to the streamed records and q->limit is counted here;
 * st->index is "remote"; st may be NULL.
 * Remote errors are written (one line naming the cause, e.g. the
 * aggregator's "QUERY_DENIED: ...") to env->err before returning
 * CAIRN_E_IO / CAIRN_E_CONFIG / CAIRN_E_NOMEM; report any error with
 * qry__query_failed. Blocking; no libuv. */
CAIRN_MUST_CHECK cairn_err qry__query_run(const qry_opts *o, const qry_env *env, sto_env *sto,
                                          const sto_query *q, sto_record_cb cb, void *ud,
                                          sto_query_stats *st);

/* The remote half of qry__query_run. */
CAIRN_MUST_CHECK cairn_err qry__remote_run(const qry_opts *o, const qry_env *env,
                                           const sto_query *q, sto_record_cb cb, void *ud,
                                           sto_query_stats *st);

/* Report a failed qry__query_run on env->err (local: the store error; remote:
 * nothing more, it was reported). Returns QRY_EXIT_USAGE. */
int qry__query_failed(const qry_opts *o, const qry_env *env, cairn_err e);

/* ---- query audit records (record_query.c) ---- */

/* Local mode: store a source=query record of the command that just ran
 * (who: the Unix user name and uid; when; command; filters; result count
 * *o->result_count; exit status rc) in o->data_dir, through a short write
 * txn of our own (safe next to a running aggregator: storage reloads the
 * chain head inside each write txn). Without write access to the store it
 * writes "query not recorded: no write access to DIR" to env->err instead;
 * other failures are reported there too. Nothing at all when
 * env->record_queries is false. Never changes the exit status. */
void qry__record_local(const qry_opts *o, const qry_env *env, int rc);

/* ---- commands (search.c, stats.c); each returns a QRY_EXIT_* status ---- */

/* Open o->data_dir read-only into *out. On failure writes the one-line
 * reason (storage's own message when it has one) to env->err and returns
 * QRY_EXIT_USAGE; QRY_EXIT_OK otherwise. Close with sto_close. */
int qry__store_open(const qry_opts *o, const qry_env *env, sto_env **out);

/* Run a search and render the matches to env->out. 0 / 1 (nothing) / 2. */
int qry__search_cmd(const qry_opts *o, const qry_env *env);

/* Without --by/--histogram: the store counters (sto_stats_get) in
 * o->format. With them: record counts grouped by a field and/or per time
 * bucket over the records the filters select. 0 / 1 (nothing) / 2. */
int qry__stats_cmd(const qry_opts *o, const qry_env *env);

/* auditd and Kubernetes audit events, one line each (audit.c). 0 / 1 / 2. */
int qry__audit_cmd(const qry_opts *o, const qry_env *env);

/* Report a failed rendering/output (CAIRN_E_IO: errnum) on env->err;
 * returns QRY_EXIT_USAGE. */
int qry__output_failed(const qry_env *env, cairn_err e, int errnum);

/* Verify the hash chain and checkpoint signatures (verify.c); report to
 * env->out. 0 verified / 2 could not run / 3 verification failed. */
int qry__verify_cmd(const qry_opts *o, const qry_env *env);

/* ---- evidence export (export.c, export_verify.c, report.c) ---- */

/* Write an evidence bundle for the query of o into o->out_dir (export.c):
 * records.jsonl, records.bin, manifest.json with the proof, report.html.
 * 0 records exported / 1 nothing matched (an empty bundle is still written)
 * / 2 usage or data error / 3 the store or the proof failed its own check. */
int qry__export_cmd(const qry_opts *o, const qry_env *env);

/* Check the bundle o->bundle offline with o->public_key (export_verify.c).
 * 0 verified / 2 usage (no such dir, unreadable key) / 3 failed. */
int qry__verify_export_cmd(const qry_opts *o, const qry_env *env);

struct json_t; /* jansson's json_t: only export*.c and report.c use these calls */

#define QRY_BUNDLE_FORMAT "cairn-evidence-bundle-v1"
#define QRY_BUNDLE_RECORDS "records.jsonl"
#define QRY_BUNDLE_BIN "records.bin"
#define QRY_BUNDLE_MANIFEST "manifest.json"
#define QRY_BUNDLE_REPORT "report.html"
#define QRY_REPORT_ROWS 200u /* records listed in report.html */

/* Outcome of checking a bundle (qry__bundle_check). */
typedef struct qry_check {
  bool ok;                   /* everything verified */
  char code[24];             /* "" when ok, else the stable upper-case name of the
                                first failure: MANIFEST, FILE_HASH, RECORDS,
                                RECORD_JSON, LEAF, LINK, CHECKPOINT, SIGNATURE, COUNTS */
  char detail[640];          /* one line: what failed, where, and what it means */
  uint64_t records;          /* records in records.bin */
  uint64_t links;            /* links recomputed */
  uint64_t segments;         /* link runs, each ending at a signed checkpoint */
  bool signature_checked;    /* a public key was given and every signature verified */
  char key_fp[17];           /* fingerprint of the key used ("" = none) */
  uint64_t cp_position;      /* highest checkpoint used (0 = none) */
  uint64_t cp_last_seq;      /* its last_seq */
  int64_t cp_time_ns;        /* when it was signed */
} qry_check;

/* Check the bundle in dir against manifest m (borrowed): with check_files,
 * every file's SHA-256 against m.files; then records.bin entries against
 * records.jsonl (each line must be pb_record_json of the entry's bytes), the
 * proof's leaves, the links recomputed from anchor to checkpoint, each
 * checkpoint's Ed25519 signature with pubkey (STO_PUBKEY_LEN raw bytes; NULL =
 * signatures not checked, which leaves out->ok false), and m.counts against
 * the records. The verdict goes to *out (first failure); CAIRN_OK unless it
 * could not run at all (CAIRN_E_NOMEM). */
CAIRN_MUST_CHECK cairn_err qry__bundle_check(const char *dir, const struct json_t *m,
                                             const uint8_t *pubkey, bool check_files,
                                             qry_check *out);

/* Read a PEM Ed25519 public key from path into raw (STO_PUBKEY_LEN) and its
 * fingerprint (hex of the first 8 bytes of SHA-256(raw), 17 bytes with NUL)
 * into fp. false with a one-line reason in why on failure. */
bool qry__pubkey_read(const char *path, uint8_t *raw, char *fp, char *why, size_t cap);

/* Lower-case hex of p[0..n) into out (2n+1 bytes). */
void qry__hex(const uint8_t *p, size_t n, char *out);

/* records.bin: entries seq (u64 BE) || length (u64 BE) || packed bytes, each
 * exactly the input of that record's leaf hash. Read the entry at *off of
 * b[0..len): false at the end or on a truncated entry (*bad set then). */
bool qry__bin_next(const uint8_t *b, size_t len, size_t *off, uint64_t *seq, const uint8_t **p,
                   size_t *n, bool *bad);

/* Write report.html at path: the manifest's query, exporter, counts and
 * histogram, the check result, and the first QRY_REPORT_ROWS records of
 * bin[0..bin_len) (records.bin). Everything from the bundle is HTML-escaped.
 * CAIRN_E_IO (errno), CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err qry__report_write(const char *path, const struct json_t *m,
                                             const qry_check *chk, const uint8_t *bin,
                                             size_t bin_len);

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

/* ---- aligned tables (output.c): audit lines, stats rows ---- */

#define QRY_COLS_MAX 9u

/* A text table: rows of up to QRY_COLS_MAX cells plus a free tail, columns
 * padded to the widest cell seen so far. Rows are held back in windows of
 * `window` rows (0 = all rows, until qry__table_finish) when aligning. */
typedef struct qry_table_row {
  size_t off;                /* start of the row in qry_table.cells */
  size_t len[QRY_COLS_MAX];  /* bytes of each cell */
  size_t tail_len;           /* bytes after the cells (printed after one space) */
  int hl_col;                /* column shown in red, -1 = none */
} qry_table_row;

typedef struct qry_table {
  FILE *out;                 /* borrowed */
  size_t ncols;              /* private */
  bool align, color;         /* private */
  uint32_t right;            /* private: bit c = right-align column c */
  const char *col_color[QRY_COLS_MAX]; /* private: ANSI colour per column or NULL */
  size_t window;             /* private */
  cairn_buf cells;           /* private: held rows */
  cairn_buf line;            /* private: output scratch */
  qry_table_row *rows;       /* private, owned */
  size_t nrows, cap;         /* private */
  size_t width[QRY_COLS_MAX];/* private: display widths so far */
  uint64_t written;          /* read-only: rows added */
} qry_table;

/* Set up t with ncols columns. right: bit mask of right-aligned columns;
 * col_color: ncols entries (NULL entries = no colour), may be NULL.
 * align pads columns (a terminal), color adds ANSI colours. */
void qry__table_init(qry_table *t, FILE *out, size_t ncols, bool align, bool color,
                     uint32_t right, const char *const *col_color, size_t window);

/* Add a row: b holds the ncols cells (already escaped for a terminal, lens[c]
 * bytes each) followed by tail_len tail bytes. b is borrowed and may be reset
 * by the caller afterwards. CAIRN_E_NOMEM, CAIRN_E_IO. */
CAIRN_MUST_CHECK cairn_err qry__table_add(qry_table *t, const cairn_buf *b, const size_t *lens,
                                          size_t tail_len, int hl_col);

/* Write held rows and flush. CAIRN_E_NOMEM, CAIRN_E_IO. */
CAIRN_MUST_CHECK cairn_err qry__table_finish(qry_table *t);

/* Release t's memory. Safe on a zeroed table. */
void qry__table_fini(qry_table *t);

/* Terminal columns of valid UTF-8 p[0..n) (code points). */
size_t qry__display_width(const uint8_t *p, size_t n);

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
