/* collector/dry_run.c: `cairn-collector parse`: run a parser over a whole file
 * and print every record as one JSON object per line, in the field names of
 * the shared corpus (corpus/expected/). The file driver (col__parse_file) is
 * also what the tests use; like a tailer it holds back a last line that has no
 * '\n' yet, and at EOF it flushes pending audit events. auditd rows are
 * buffered and printed in first-line order (the parser emits them in
 * completion order); audit and Kubernetes rows are built in dry_run_audit.c. */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "collector/internal_audit.h"
#include "collector/internal_parse.h"
#include "common/log.h"

#define READ_CHUNK ((size_t)64 << 10)

typedef struct count_ctx {
  col_rec_cb cb;
  void *ud;
  col_file_summary *sum;
} count_ctx;

static void count_cb(const col_rec *r, void *ud) {
  count_ctx *c = ud;
  if (r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED) {
    c->sum->unparsed++;
  } else if (r->audit_lost) {
    c->sum->gaps++;
    c->sum->lost += r->audit_lost;
  } else if (r->source == CAIRN__SOURCE__SOURCE_AUDIT) {
    c->sum->events++;
    c->sum->records += r->fragments;
  } else {
    c->sum->records++;
  }
  c->cb(r, c->ud);
}

/* Feed every complete line of data[0..len) (starting at file offset *off,
 * line *line_no) and return the bytes consumed. */
static cairn_err feed_lines(col_parser *p, const uint8_t *data, size_t len, uint64_t *off,
                            uint64_t *line_no, count_ctx *cc, size_t *consumed) {
  size_t pos = 0;
  for (;;) {
    const uint8_t *nl = memchr(data + pos, '\n', len - pos);
    if (!nl) break;
    size_t llen = (size_t)(nl - (data + pos));
    cairn_err e = col_parser_line(p, data + pos, llen, *off, *line_no + 1, count_cb, cc);
    if (e) {
      *consumed = pos;
      return e;
    }
    (*line_no)++;
    cc->sum->physical_lines++;
    *off += llen + 1;
    pos += llen + 1;
  }
  *consumed = pos;
  return CAIRN_OK;
}

cairn_err col__parse_file(Cairn__Format fmt, size_t max_record, const char *path, col_rec_cb cb,
                          void *ud, col_file_summary *sum, char *errbuf, size_t errlen) {
  memset(sum, 0, sizeof(*sum));
  if (errlen) errbuf[0] = '\0';
  count_ctx cc = {.cb = cb, .ud = ud, .sum = sum};
  cairn_buf data;
  cairn_buf_init(&data);
  col_parser *p = NULL;
  cairn_err e = col_parser_new(fmt, max_record, &p);
  if (e) {
    snprintf(errbuf, errlen, "%s: cannot parse format %d (use cri, docker, auditd or k8s-audit)",
             path, (int)fmt);
    return e;
  }
  FILE *in = fopen(path, "rb");
  if (!in) {
    int en = errno;
    e = cairn_err_from_errno(en) == CAIRN_E_NOTFOUND ? CAIRN_E_NOTFOUND : CAIRN_E_IO;
    snprintf(errbuf, errlen, "%s: cannot open: %s", path, strerror(en));
    goto out_free_parser;
  }

  uint64_t off = 0, line_no = 0;
  for (;;) {
    e = cairn_buf_reserve(&data, READ_CHUNK);
    if (e) goto out_fini_data;
    size_t got = fread(data.ptr + data.len, 1, READ_CHUNK, in);
    if (got == 0) break;
    size_t scan_from = data.len;
    data.len += got;
    /* only the new bytes can hold the next '\n' */
    if (!memchr(data.ptr + scan_from, '\n', got)) continue;
    size_t consumed;
    e = feed_lines(p, data.ptr, data.len, &off, &line_no, &cc, &consumed);
    cairn_buf_consume(&data, consumed);
    if (e) goto out_fini_data;
  }
  if (ferror(in)) {
    e = CAIRN_E_IO;
    snprintf(errbuf, errlen, "%s: read failed: %s", path, strerror(errno));
    goto out_fini_data;
  }
  if (data.len) {
    sum->tail_line = line_no + 1;
    sum->tail_bytes = data.len;
  }
  e = col_parser_flush(p, true, count_cb, &cc);
  if (e) goto out_fini_data;
  sum->npending = col_parser_pending(p, sum->pending);
  sum->safe_offset = col_parser_safe_offset(p, off);

out_fini_data:
  cairn_buf_fini(&data);
  fclose(in);
out_free_parser:
  col_parser_free(p);
  return e;
}

/* ---- JSON rows ---- */

static json_t *hex_sha256(const uint8_t *d, size_t n) {
  static const char hx[] = "0123456789abcdef";
  unsigned char md[SHA256_DIGEST_LENGTH];
  char out[2 * SHA256_DIGEST_LENGTH + 1];
  SHA256(d, n, md);
  for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
    out[2 * i] = hx[md[i] >> 4];
    out[2 * i + 1] = hx[md[i] & 15];
  }
  out[2 * SHA256_DIGEST_LENGTH] = '\0';
  return json_string(out);
}

static json_t *b64(const uint8_t *d, size_t n) {
  if (n > (size_t)INT32_MAX / 2) return NULL;
  unsigned char *out = malloc(4 * ((n + 2) / 3) + 1);
  if (!out) return NULL;
  EVP_EncodeBlock(out, d, (int)n);
  json_t *j = json_string((const char *)out);
  free(out);
  return j;
}

static json_t *str_or_null(const char *s) { return s[0] ? json_string(s) : json_null(); }

/* Set key to a new reference; a NULL value (allocation failure) marks *ok. */
static void set(json_t *o, const char *key, json_t *v, bool *ok) {
  if (!v || json_object_set_new(o, key, v) != 0) *ok = false;
}

/* The row for a record: the corpus "unparsed" shape for UNPARSED records,
 * else the message shape with metadata from m. NULL on allocation failure. */
static json_t *rec_json(const col_rec *r, const col_meta *m) {
  json_t *o = json_object();
  if (!o) return NULL;
  bool ok = true;
  bool utf8 = !(r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_INVALID_UTF8);
  if (r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED) {
    set(o, "unparsed", json_true(), &ok);
    set(o, "line", json_integer((json_int_t)r->first_line), &ok);
    set(o, "raw_len", json_integer((json_int_t)r->msg_len), &ok);
    set(o, "raw_sha256", hex_sha256(r->msg, r->msg_len), &ok);
    set(o, "raw", utf8 ? json_stringn((const char *)r->msg, r->msg_len) : json_null(), &ok);
    if (!utf8) set(o, "raw_b64", b64(r->msg, r->msg_len), &ok);
  } else if (r->audit_lost) {
    /* an audit serial gap: not a corpus row shape of its own */
    set(o, "audit_gap", json_true(), &ok);
    set(o, "line", json_integer((json_int_t)r->first_line), &ok);
    for (size_t i = 0; i < r->n_attrs; i++) {
      const col_attr *at = &r->attrs[i];
      if (strcmp(at->key, "type") == 0) continue;
      json_t *v = strcmp(at->key, "node") == 0
                      ? json_stringn((const char *)at->val, at->len)
                      : json_integer((json_int_t)strtoull((const char *)at->val, NULL, 10));
      set(o, at->key, v, &ok);
    }
    set(o, "message", json_stringn((const char *)r->msg, r->msg_len), &ok);
  } else if (r->audit) {
    json_decref(o);
    o = col__audit_row_json(r);
    if (!o) return NULL;
  } else if (r->source == CAIRN__SOURCE__SOURCE_K8S_AUDIT) {
    json_decref(o);
    o = col__k8s_row_json(r);
    if (!o) return NULL;
  } else {
    set(o, "time", json_integer((json_int_t)r->time_ns), &ok);
    set(o, "stream", json_string(pb_stream_name(r->stream)), &ok);
    set(o, "message_len", json_integer((json_int_t)r->msg_len), &ok);
    set(o, "message_sha256", hex_sha256(r->msg, r->msg_len), &ok);
    set(o, "message", utf8 ? json_stringn((const char *)r->msg, r->msg_len) : json_null(), &ok);
    set(o, "message_utf8_valid", json_boolean(utf8), &ok);
    if (!utf8) set(o, "message_b64", b64(r->msg, r->msg_len), &ok);
    set(o, "fragments", json_integer(r->fragments), &ok);
    set(o, "first_line", json_integer((json_int_t)r->first_line), &ok);
    set(o, "last_line", json_integer((json_int_t)r->last_line), &ok);
    set(o, "namespace", str_or_null(m->kube_namespace), &ok);
    set(o, "pod", str_or_null(m->pod), &ok);
    set(o, "container", str_or_null(m->container), &ok);
    set(o, "container_id", str_or_null(m->container_id), &ok);
    set(o, "pod_uid", str_or_null(m->pod_uid), &ok);
    if (r->attrs_json) set(o, "attrs", json_loads(r->attrs_json, 0, NULL), &ok);
  }
  if (r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED) {
    set(o, "truncated", json_true(), &ok);
    set(o, "full_len", json_integer((json_int_t)r->full_len), &ok);
  }
  if (!ok) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* A row held back until the end (auditd), with its sort key. */
typedef struct held_row {
  uint64_t line; /* first physical line * 2, + 1 unless a serial gap (it goes first) */
  json_t *row;   /* owned */
} held_row;

typedef struct dry_ctx {
  const col_meta *meta;
  FILE *f;
  cairn_err err;  /* first failure; later records are skipped */
  bool hold;      /* buffer rows, print sorted by first line */
  held_row *held; /* owned */
  size_t nheld, capheld;
} dry_ctx;

static cairn_err print_row(FILE *f, json_t *o) {
  if (json_dumpf(o, f, JSON_COMPACT) != 0 || fputc('\n', f) == EOF) return CAIRN_E_IO;
  return CAIRN_OK;
}

static void dry_cb(const col_rec *r, void *ud) {
  dry_ctx *c = ud;
  if (c->err) return;
  json_t *o = rec_json(r, c->meta);
  if (!o) {
    c->err = CAIRN_E_NOMEM;
    return;
  }
  if (!c->hold) {
    c->err = print_row(c->f, o);
    json_decref(o);
    return;
  }
  if (c->nheld == c->capheld) {
    size_t nc = c->capheld ? c->capheld * 2 : 64;
    held_row *nh = realloc(c->held, nc * sizeof(*nh));
    if (!nh) {
      json_decref(o);
      c->err = CAIRN_E_NOMEM;
      return;
    }
    c->held = nh;
    c->capheld = nc;
  }
  c->held[c->nheld++] = (held_row){r->first_line * 2 + (r->audit_lost ? 0 : 1), o};
}

static int held_cmp(const void *a, const void *b) {
  const held_row *x = a, *y = b;
  return x->line < y->line ? -1 : x->line > y->line;
}

/* Print the held rows in first-line order and free them. */
static void print_held(dry_ctx *c) {
  if (c->nheld) qsort(c->held, c->nheld, sizeof(*c->held), held_cmp);
  for (size_t i = 0; i < c->nheld; i++) {
    if (!c->err) c->err = print_row(c->f, c->held[i].row);
    json_decref(c->held[i].row);
  }
  free(c->held);
  c->held = NULL;
  c->nheld = c->capheld = 0;
}

cairn_err col_parse_dry_run(Cairn__Format fmt, const char *file_path, const char *meta_path,
                            FILE *f, char *errbuf, size_t errlen) {
  col_meta meta;
  col_meta_from_path(meta_path ? meta_path : file_path, &meta);
  dry_ctx c = {.meta = &meta, .f = f, .err = CAIRN_OK, .hold = fmt == CAIRN__FORMAT__FORMAT_AUDITD};
  col_file_summary sum;
  cairn_err e = col__parse_file(fmt, 0, file_path, dry_cb, &c, &sum, errbuf, errlen);
  print_held(&c);
  if (e) return e;
  if (c.err) {
    snprintf(errbuf, errlen, "%s: cannot write output: %s", file_path, cairn_err_name(c.err));
    return c.err;
  }
  if (fflush(f) != 0) {
    snprintf(errbuf, errlen, "%s: cannot write output: %s", file_path, strerror(errno));
    return CAIRN_E_IO;
  }
  char tail[64] = "none";
  if (sum.tail_line)
    snprintf(tail, sizeof(tail), "line %llu (%llu bytes, held back)",
             (unsigned long long)sum.tail_line, (unsigned long long)sum.tail_bytes);
  char events[128] = "";
  if (fmt == CAIRN__FORMAT__FORMAT_AUDITD)
    snprintf(events, sizeof(events), " in %llu events, %llu serial gaps (%llu events lost)",
             (unsigned long long)sum.events, (unsigned long long)sum.gaps,
             (unsigned long long)sum.lost);
  cairn_log_info("collector",
                 "parse %s: %llu lines, %llu records%s, %llu unparsed, pending partial: %s%s%s, "
                 "incomplete tail: %s",
                 file_path, (unsigned long long)sum.physical_lines, (unsigned long long)sum.records,
                 events, (unsigned long long)sum.unparsed, sum.npending ? sum.pending[0] : "none",
                 sum.npending > 1 ? "," : "", sum.npending > 1 ? sum.pending[1] : "", tail);
  return CAIRN_OK;
}
