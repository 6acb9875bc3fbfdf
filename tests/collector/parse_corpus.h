/* tests/collector/parse_corpus.h: helpers shared by the parser tests: locate
 * the shared corpus (CAIRN_CORPUS), load expected JSONL/summary rows, check
 * every record a parser emits against its expected row field by field, and
 * keep deep copies of emitted records (attrs and audit/k8s rows included).
 * Header-only (static functions) so each *_test.c stays one executable. */
#ifndef CAIRN_TESTS_COLLECTOR_PARSE_CORPUS_H
#define CAIRN_TESTS_COLLECTOR_PARSE_CORPUS_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "collector/internal_audit.h"
#include "collector/internal_parse.h"

/* The corpus root; aborts loudly when the environment does not say. */
static inline const char *corpus_dir(void) {
  const char *d = getenv("CAIRN_CORPUS");
  if (!d || !*d) {
    fprintf(stderr, "CAIRN_CORPUS is not set: run through ctest, or export "
                    "CAIRN_CORPUS=/work/shared/corpus\n");
    abort();
  }
  return d;
}

/* out = <corpus>/<rel>[<suffix>] */
static inline void corpus_path(char *out, size_t cap, const char *prefix, const char *rel,
                               const char *suffix) {
  int n = snprintf(out, cap, "%s/%s%s%s", corpus_dir(), prefix, rel, suffix);
  assert_true(n > 0 && (size_t)n < cap);
}

/* All rows of a JSONL file; *n gets the count. Caller json_decref()s rows. */
static inline json_t **load_jsonl(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open expected file %s", path);
  json_t **rows = NULL;
  size_t cnt = 0;
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  while ((got = getline(&line, &cap, f)) > 0) {
    json_error_t jerr;
    json_t *row = json_loadb(line, (size_t)got, 0, &jerr);
    if (!row) fail_msg("%s: row %zu: %s", path, cnt + 1, jerr.text);
    rows = realloc(rows, (cnt + 1) * sizeof(*rows));
    assert_non_null(rows);
    rows[cnt++] = row;
  }
  free(line);
  fclose(f);
  *n = cnt;
  return rows;
}

static inline void free_rows(json_t **rows, size_t n) {
  for (size_t i = 0; i < n; i++) json_decref(rows[i]);
  free(rows);
}

/* The summary.json object (caller json_decref()s). */
static inline json_t *load_summary(void) {
  char path[4096];
  corpus_path(path, sizeof(path), "expected/", "summary.json", "");
  json_error_t jerr;
  json_t *s = json_load_file(path, 0, &jerr);
  if (!s) fail_msg("cannot load %s: %s", path, jerr.text);
  return s;
}

static inline void sha256_hex(const uint8_t *d, size_t n, char out[65]) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(d, n, md);
  for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) sprintf(out + 2 * i, "%02x", md[i]);
}

/* Decode base64 text into a malloc'd buffer; *n gets the byte count. */
static inline uint8_t *b64_decode(const char *s, size_t *n) {
  size_t sl = strlen(s);
  uint8_t *out = malloc(sl / 4 * 3 + 3);
  assert_non_null(out);
  int got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)sl);
  assert_true(got >= 0);
  size_t pad = 0;
  if (sl >= 1 && s[sl - 1] == '=') pad++;
  if (sl >= 2 && s[sl - 2] == '=') pad++;
  *n = (size_t)got - pad;
  return out;
}

typedef struct row_ctx {
  const char *rel; /* corpus-relative input path, for messages */
  size_t row;      /* 1-based row being checked */
} row_ctx;

static inline void expect_int(const row_ctx *c, json_t *row, const char *key, long long got) {
  json_t *v = json_object_get(row, key);
  if (!json_is_integer(v)) fail_msg("%s row %zu: expected has no integer %s", c->rel, c->row, key);
  if (json_integer_value(v) != got)
    fail_msg("%s row %zu: %s = %lld, expected %lld", c->rel, c->row, key, got,
             (long long)json_integer_value(v));
}

/* got == "" means null */
static inline void expect_str_or_null(const row_ctx *c, json_t *row, const char *key,
                                      const char *got) {
  json_t *v = json_object_get(row, key);
  if (!v) fail_msg("%s row %zu: expected has no %s", c->rel, c->row, key);
  if (json_is_null(v)) {
    if (got[0]) fail_msg("%s row %zu: %s = \"%s\", expected null", c->rel, c->row, key, got);
    return;
  }
  if (strcmp(json_string_value(v), got) != 0)
    fail_msg("%s row %zu: %s = \"%s\", expected \"%s\"", c->rel, c->row, key, got,
             json_string_value(v));
}

static inline void expect_bool(const row_ctx *c, json_t *row, const char *key, bool got) {
  json_t *v = json_object_get(row, key);
  if (!json_is_boolean(v)) fail_msg("%s row %zu: expected has no boolean %s", c->rel, c->row, key);
  if (json_is_true(v) != got)
    fail_msg("%s row %zu: %s = %d, expected %d", c->rel, c->row, key, got, json_is_true(v));
}

/* Bytes b[0..n) against a text key (or its _b64 twin when the text is null). */
static inline void expect_bytes(const row_ctx *c, json_t *row, const char *key, const char *b64key,
                                const uint8_t *b, size_t n) {
  json_t *v = json_object_get(row, key);
  const uint8_t *want;
  size_t wn;
  uint8_t *dec = NULL;
  if (json_is_string(v)) {
    want = (const uint8_t *)json_string_value(v);
    wn = json_string_length(v);
  } else {
    json_t *bv = json_object_get(row, b64key);
    if (!json_is_string(bv)) fail_msg("%s row %zu: neither %s nor %s", c->rel, c->row, key, b64key);
    dec = b64_decode(json_string_value(bv), &wn);
    want = dec;
  }
  if (wn != n || memcmp(want, b, n) != 0)
    fail_msg("%s row %zu: %s bytes differ (%zu vs expected %zu)", c->rel, c->row, key, n, wn);
  free(dec);
}

typedef struct corpus_check {
  row_ctx rc;
  json_t **rows;
  size_t nrows;
  size_t next; /* rows consumed */
  col_meta meta;
  uint64_t malformed[64];
  size_t nmalformed;
} corpus_check;

/* col_rec_cb comparing each record with the next expected row. */
static inline void corpus_check_cb(const col_rec *r, void *ud) {
  corpus_check *k = ud;
  k->rc.row = k->next + 1;
  if (k->next >= k->nrows)
    fail_msg("%s: extra record (line %llu) beyond %zu expected rows", k->rc.rel,
             (unsigned long long)r->last_line, k->nrows);
  json_t *row = k->rows[k->next++];
  const row_ctx *c = &k->rc;
  char hex[65];
  sha256_hex(r->msg, r->msg_len, hex);
  assert_false(r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED);
  if (json_is_true(json_object_get(row, "unparsed"))) {
    if (!(r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED))
      fail_msg("%s row %zu: expected an unparsed row", c->rel, c->row);
    expect_int(c, row, "line", (long long)r->first_line);
    expect_int(c, row, "raw_len", (long long)r->msg_len);
    expect_str_or_null(c, row, "raw_sha256", hex);
    expect_bytes(c, row, "raw", "raw_b64", r->msg, r->msg_len);
    assert_int_equal(r->time_ns, 0);
    assert_int_equal(r->stream, CAIRN__LOG_STREAM__LOG_STREAM_UNKNOWN);
    assert_int_equal(r->fragments, 1);
    assert_true(k->nmalformed < 64);
    k->malformed[k->nmalformed++] = r->first_line;
    return;
  }
  if (r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED)
    fail_msg("%s row %zu: line %llu came out unparsed", c->rel, c->row,
             (unsigned long long)r->first_line);
  expect_int(c, row, "time", r->time_ns);
  expect_str_or_null(c, row, "stream", pb_stream_name(r->stream));
  expect_int(c, row, "message_len", (long long)r->msg_len);
  assert_int_equal(r->full_len, r->msg_len);
  expect_str_or_null(c, row, "message_sha256", hex);
  bool utf8 = !(r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_INVALID_UTF8);
  expect_bool(c, row, "message_utf8_valid", utf8);
  expect_bytes(c, row, "message", "message_b64", r->msg, r->msg_len);
  expect_int(c, row, "fragments", r->fragments);
  expect_int(c, row, "first_line", (long long)r->first_line);
  expect_int(c, row, "last_line", (long long)r->last_line);
  expect_str_or_null(c, row, "namespace", k->meta.kube_namespace);
  expect_str_or_null(c, row, "pod", k->meta.pod);
  expect_str_or_null(c, row, "container", k->meta.container);
  expect_str_or_null(c, row, "container_id", k->meta.container_id);
  expect_str_or_null(c, row, "pod_uid", k->meta.pod_uid);
  json_t *attrs = json_object_get(row, "attrs");
  if (attrs) {
    assert_non_null(r->attrs_json);
    json_t *got = json_loads(r->attrs_json, 0, NULL);
    assert_non_null(got);
    assert_true(json_equal(got, attrs));
    json_decref(got);
  } else {
    assert_null(r->attrs_json);
  }
}

/* Compare a sorted list of strings/ints in summary key with got[0..n). */
static inline void expect_summary_list(const char *rel, json_t *arr, const char *const *gs,
                                       const uint64_t *gi, size_t n) {
  if (!json_is_array(arr) || json_array_size(arr) != n)
    fail_msg("%s: summary list length %zu, expected %zu", rel, n, json_array_size(arr));
  for (size_t i = 0; i < n; i++) {
    json_t *v = json_array_get(arr, i);
    if (gs) assert_string_equal(json_string_value(v), gs[i]);
    if (gi) assert_int_equal(json_integer_value(v), gi[i]);
  }
}

/* Parse corpus file rel as fmt and check every record and the summary. */
static inline void check_corpus_file(Cairn__Format fmt, const char *rel, json_t *summary) {
  char in[4096], exp[4096], err[512];
  corpus_path(in, sizeof(in), "", rel, "");
  corpus_path(exp, sizeof(exp), "expected/", rel, ".jsonl");
  corpus_check k = {.rc = {.rel = rel}};
  k.rows = load_jsonl(exp, &k.nrows);
  col_meta_from_path(in, &k.meta);
  col_file_summary sum;
  cairn_err e = col__parse_file(fmt, 0, in, corpus_check_cb, &k, &sum, err, sizeof(err));
  if (e) fail_msg("%s: %s (%s)", rel, err, cairn_err_name(e));
  if (k.next != k.nrows) fail_msg("%s: %zu records, expected %zu rows", rel, k.next, k.nrows);

  json_t *s = json_object_get(summary, rel);
  if (!s) fail_msg("summary.json has no entry %s", rel);
  assert_int_equal(sum.records, json_integer_value(json_object_get(s, "records")));
  assert_int_equal(sum.unparsed, json_integer_value(json_object_get(s, "unparsed")));
  assert_int_equal(sum.physical_lines, json_integer_value(json_object_get(s, "physical_lines")));
  expect_summary_list(rel, json_object_get(s, "malformed_lines"), NULL, k.malformed, k.nmalformed);
  expect_summary_list(rel, json_object_get(s, "pending_partial_at_eof"), sum.pending, NULL,
                      sum.npending);
  json_t *tail = json_object_get(s, "incomplete_tail");
  if (json_is_null(tail)) {
    assert_int_equal(sum.tail_line, 0);
  } else {
    assert_int_equal(sum.tail_line, json_integer_value(json_object_get(tail, "line")));
    assert_int_equal(sum.tail_bytes, json_integer_value(json_object_get(tail, "bytes")));
  }
  if (sum.npending == 0) {
    /* nothing pending: the checkpoint may advance to the end of the last complete line */
    struct stat st;
    assert_int_equal(stat(in, &st), 0);
    assert_int_equal(sum.safe_offset, (uint64_t)st.st_size - sum.tail_bytes);
  }
  free_rows(k.rows, k.nrows);
}

/* Check every summary.json input whose name starts with prefix; returns the
 * number of files checked. */
static inline size_t check_corpus_prefix(Cairn__Format fmt, const char *prefix) {
  json_t *summary = load_summary();
  const char *key;
  json_t *val;
  size_t n = 0;
  json_object_foreach(summary, key, val) {
    if (strncmp(key, prefix, strlen(prefix)) != 0) continue;
    check_corpus_file(fmt, key, summary);
    n++;
  }
  json_decref(summary);
  return n;
}

/* ---- feeding hand-written lines ---- */

#define REC_MAX 32

/* Deep copies of emitted records, for tests that feed lines by hand. */
typedef struct rec_copy {
  col_rec r;
  uint8_t *msg;            /* owned copy of r.msg */
  const uint8_t *orig_msg; /* pointer as emitted (only for identity checks) */
  char *attrs;             /* owned copy of r.attrs_json */
} rec_copy;

typedef struct rec_list {
  rec_copy v[REC_MAX];
  size_t n;
} rec_list;

static inline void rec_list_cb(const col_rec *r, void *ud) {
  rec_list *l = ud;
  assert_true(l->n < REC_MAX);
  rec_copy *c = &l->v[l->n++];
  c->r = *r;
  c->orig_msg = r->msg;
  c->msg = malloc(r->msg_len + 1);
  assert_non_null(c->msg);
  memcpy(c->msg, r->msg, r->msg_len);
  c->msg[r->msg_len] = '\0';
  c->r.msg = c->msg;
  c->attrs = r->attrs_json ? strdup(r->attrs_json) : NULL;
  c->r.attrs_json = c->attrs;
}

static inline void rec_list_clear(rec_list *l) {
  for (size_t i = 0; i < l->n; i++) {
    free(l->v[i].msg);
    free(l->v[i].attrs);
  }
  l->n = 0;
}

/* Feeder that tracks offsets and line numbers like a tailer does. */
typedef struct feeder {
  col_parser *p;
  uint64_t off;
  uint64_t line_no;
  rec_list out;
} feeder;

static inline void feed(feeder *f, const char *line) {
  size_t n = strlen(line);
  assert_int_equal(
      col_parser_line(f->p, (const uint8_t *)line, n, f->off, ++f->line_no, rec_list_cb, &f->out),
      CAIRN_OK);
  f->off += n + 1;
}

static inline void feed_n(feeder *f, const uint8_t *line, size_t n) {
  assert_int_equal(col_parser_line(f->p, line, n, f->off, ++f->line_no, rec_list_cb, &f->out),
                   CAIRN_OK);
  f->off += n + 1;
}

static inline void feeder_init(feeder *f, Cairn__Format fmt, size_t max_record) {
  memset(f, 0, sizeof(*f));
  assert_int_equal(col_parser_new(fmt, max_record, &f->p), CAIRN_OK);
}

static inline void feeder_fini(feeder *f) {
  rec_list_clear(&f->out);
  col_parser_free(f->p);
}

/* ---- whole-row comparison ---- */

/* Compare two rows key by key in both directions (values with json_equal:
 * numbers, strings, nulls, booleans, nested arrays and objects). */
static inline void expect_row_equal(const char *rel, size_t row, json_t *got, json_t *want) {
  const char *key;
  json_t *v;
  json_object_foreach(want, key, v) {
    json_t *g = json_object_get(got, key);
    if (!g) fail_msg("%s row %zu: output lacks key %s", rel, row, key);
    if (!json_equal(g, v)) {
      char *gs = json_dumps(g, JSON_ENCODE_ANY);
      char *ws = json_dumps(v, JSON_ENCODE_ANY);
      fail_msg("%s row %zu: %s = %.200s, expected %.200s", rel, row, key, gs, ws);
    }
  }
  json_object_foreach(got, key, v) {
    if (!json_object_get(want, key)) fail_msg("%s row %zu: unexpected key %s", rel, row, key);
  }
}

/* ---- growable store of emitted records ---- */

typedef struct stored_attr {
  char *key;    /* owned */
  uint8_t *val; /* owned, NUL-terminated copy */
  size_t len;
} stored_attr;

typedef struct stored_rec {
  col_rec r;          /* r.msg points at msg; attrs/audit cleared */
  uint8_t *msg;       /* owned, NUL-terminated copy */
  stored_attr *attrs; /* owned */
  size_t n_attrs;
  json_t *row; /* audit / k8s dry-run row rendered during the callback, or NULL */
} stored_rec;

typedef struct rec_store {
  stored_rec *v;
  size_t n, cap;
} rec_store;

static inline void rec_store_cb(const col_rec *r, void *ud) {
  rec_store *s = ud;
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 64;
    s->v = realloc(s->v, s->cap * sizeof(*s->v));
    assert_non_null(s->v);
  }
  stored_rec *c = &s->v[s->n++];
  memset(c, 0, sizeof(*c));
  c->r = *r;
  c->msg = malloc(r->msg_len + 1);
  assert_non_null(c->msg);
  memcpy(c->msg, r->msg, r->msg_len);
  c->msg[r->msg_len] = '\0';
  c->r.msg = c->msg;
  c->r.attrs = NULL;
  c->r.audit = NULL;
  c->r.attrs_json = NULL;
  if (r->n_attrs) {
    assert_non_null(r->attrs);
    c->attrs = calloc(r->n_attrs, sizeof(*c->attrs));
    assert_non_null(c->attrs);
  }
  for (size_t i = 0; i < r->n_attrs; i++) {
    c->attrs[i].key = strdup(r->attrs[i].key);
    c->attrs[i].val = malloc(r->attrs[i].len + 1);
    assert_non_null(c->attrs[i].val);
    memcpy(c->attrs[i].val, r->attrs[i].val, r->attrs[i].len);
    c->attrs[i].val[r->attrs[i].len] = '\0';
    c->attrs[i].len = r->attrs[i].len;
  }
  c->n_attrs = r->n_attrs;
  if (r->audit)
    c->row = col__audit_row_json(r);
  else if (r->source == CAIRN__SOURCE__SOURCE_K8S_AUDIT &&
           !(r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED))
    c->row = col__k8s_row_json(r);
}

static inline void rec_store_clear(rec_store *s) {
  for (size_t i = 0; i < s->n; i++) {
    stored_rec *c = &s->v[i];
    free(c->msg);
    for (size_t k = 0; k < c->n_attrs; k++) {
      free(c->attrs[k].key);
      free(c->attrs[k].val);
    }
    free(c->attrs);
    json_decref(c->row);
  }
  free(s->v);
  memset(s, 0, sizeof(*s));
}

/* The k-th (0-based) value of attr key, or NULL. */
static inline const char *rec_attr(const stored_rec *c, const char *key, size_t k) {
  for (size_t i = 0; i < c->n_attrs; i++)
    if (strcmp(c->attrs[i].key, key) == 0 && k-- == 0) return (const char *)c->attrs[i].val;
  return NULL;
}

static inline size_t rec_attr_count(const stored_rec *c, const char *key) {
  size_t n = 0;
  for (size_t i = 0; i < c->n_attrs; i++) n += strcmp(c->attrs[i].key, key) == 0;
  return n;
}

/* Attr key must equal the expected row's value: a string, an integer (as
 * decimal text), or null / absent (then the attr must be absent). */
static inline void expect_attr(const char *rel, size_t row, const stored_rec *c, const char *key,
                               json_t *want) {
  const char *got = rec_attr(c, key, 0);
  char num[32];
  const char *w = NULL;
  if (json_is_string(want)) {
    w = json_string_value(want);
  } else if (json_is_integer(want)) {
    snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(want));
    w = num;
  }
  if (!w && got) fail_msg("%s row %zu: attr %s = \"%s\", expected none", rel, row, key, got);
  if (w && (!got || strcmp(got, w) != 0))
    fail_msg("%s row %zu: attr %s = \"%s\", expected \"%s\"", rel, row, key, got ? got : "(none)",
             w);
}

/* Feed a whole file line by line (like a tailer: the last line without '\n'
 * is held back) into p, storing records in out; returns lines fed. */
static inline uint64_t feed_file(col_parser *p, const char *path, rec_store *out) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  uint64_t off = 0, n = 0;
  while ((got = getline(&line, &cap, f)) > 0) {
    if (line[got - 1] != '\n') break;
    assert_int_equal(
        col_parser_line(p, (const uint8_t *)line, (size_t)got - 1, off, ++n, rec_store_cb, out),
        CAIRN_OK);
    off += (uint64_t)got;
  }
  free(line);
  fclose(f);
  return n;
}

#endif
