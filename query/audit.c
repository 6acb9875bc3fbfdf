/* query/audit.c: `cairn-query audit`: auditd and Kubernetes audit events,
 * one line each with the fields an investigator asks about first (who, what,
 * on what, result, rule key), -v for every attr and the raw event.
 *
 * The filters pick the source (auditd or k8s-audit) and the index. Without a
 * source-specific filter both sources are queried, each through its own
 * source index with the limit, and the two ordered streams are merged here,
 * so container logs are never read for an audit view.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeparse.h"
#include "query/internal.h"

#define COL_DIM "\033[2m"
#define COL_IDENT "\033[36m"

enum { C_TIME, C_NODE, C_KIND, C_WHO, C_ACTION, C_OBJECT, C_RESULT, C_KEY, C_NCOLS };

static const ProtobufCBinaryData *attr(const Cairn__Record *r, const char *key) {
  for (size_t i = 0; i < r->n_attrs; i++)
    if (r->attrs[i] && r->attrs[i]->key && strcmp(r->attrs[i]->key, key) == 0)
      return &r->attrs[i]->value;
  return NULL;
}

static bool has(const ProtobufCBinaryData *v) { return v && v->len; }

static cairn_err esc(cairn_buf *b, const ProtobufCBinaryData *v) {
  return qry__text_escape(b, v->data, v->len);
}

/* "name=value" (escaped) when r has the attr; appends nothing otherwise. */
static cairn_err kv(cairn_buf *b, const Cairn__Record *r, const char *name, const char *key,
                    bool *sep) {
  const ProtobufCBinaryData *v = attr(r, key);
  if (!has(v)) return CAIRN_OK;
  cairn_err e = CAIRN_OK;
  if (*sep) e = cairn_buf_append(b, " ", 1);
  if (!e) e = cairn_buf_printf(b, "%s=", name);
  if (!e) e = esc(b, v);
  *sep = true;
  return e;
}

/* Cell helpers: each ends one cell and records its length. */
typedef struct cells {
  cairn_buf *b;
  size_t lens[C_NCOLS];
  size_t start;
  int col;
  cairn_err err; /* first failure of cell_end */
} cells;

static void cell_end(cells *c) {
  if (c->b->len == c->start) {
    cairn_err e = cairn_buf_append(c->b, "-", 1);
    if (e && !c->err) c->err = e;
  }
  c->lens[c->col++] = c->b->len - c->start;
  c->start = c->b->len;
}

/* An id as "1000", "unset" for 4294967295, with the logged name when the
 * event carries one ("1000(alice)"). */
static cairn_err id_cell(cairn_buf *b, const Cairn__Record *r, const char *label,
                         const char *num_key, const char *name_key, bool *sep) {
  const ProtobufCBinaryData *num = attr(r, num_key), *name = attr(r, name_key);
  if (!has(num) && !has(name)) return CAIRN_OK;
  cairn_err e = *sep ? cairn_buf_append(b, " ", 1) : CAIRN_OK;
  *sep = true;
  if (!e) e = cairn_buf_printf(b, "%s=", label);
  if (!e && has(num)) {
    if (num->len == 10 && memcmp(num->data, "4294967295", 10) == 0)
      e = cairn_buf_append_str(b, "unset");
    else
      e = esc(b, num);
  }
  if (!e && has(name)) {
    e = cairn_buf_append(b, "(", 1);
    if (!e) e = esc(b, name);
    if (!e) e = cairn_buf_append(b, ")", 1);
  }
  return e;
}

static cairn_err auditd_cells(cells *c, const Cairn__Record *r, int *hl) {
  cairn_buf *b = c->b;
  cairn_err e = CAIRN_OK;
  bool sep = false;
  /* kind: the event's first record type */
  const ProtobufCBinaryData *types = attr(r, "types");
  if (has(types)) {
    const uint8_t *comma = memchr(types->data, ',', types->len);
    size_t n = comma ? (size_t)(comma - types->data) : types->len;
    e = qry__text_escape(b, types->data, n);
  } else {
    e = cairn_buf_append_str(b, "audit");
  }
  cell_end(c);
  /* who */
  if (!e) e = id_cell(b, r, "auid", "auid", "AUID", &sep);
  if (!e) e = id_cell(b, r, "uid", "uid", "UID", &sep);
  if (!e) e = kv(b, r, "acct", "acct", &sep);
  cell_end(c);
  /* action: the syscall (x86_64 name when known) or the userspace op */
  sep = false;
  const ProtobufCBinaryData *sc = attr(r, "syscall");
  if (!e && has(sc)) {
    char num[24];
    snprintf(num, sizeof(num), "%.*s", (int)(sc->len < 20 ? sc->len : 20), (const char *)sc->data);
    const ProtobufCBinaryData *arch = attr(r, "arch");
    const char *name = (!has(arch) || (arch->len == 8 && memcmp(arch->data, "c000003e", 8) == 0))
                           ? qry__syscall_name(strtol(num, NULL, 10))
                           : NULL;
    e = name ? cairn_buf_printf(b, "syscall=%s", name) : cairn_buf_printf(b, "syscall=%s", num);
  } else if (!e) {
    e = kv(b, r, "op", "op", &sep);
  }
  cell_end(c);
  /* object: the program */
  sep = false;
  if (!e) e = kv(b, r, "exe", "exe", &sep);
  if (!e && !sep) e = kv(b, r, "comm", "comm", &sep);
  cell_end(c);
  /* result */
  sep = false;
  const ProtobufCBinaryData *ok = attr(r, "success");
  if (!e) e = kv(b, r, "success", "success", &sep);
  if (!e) e = kv(b, r, "exit", "exit", &sep);
  if (has(ok) && ok->len == 2 && memcmp(ok->data, "no", 2) == 0) *hl = C_RESULT;
  cell_end(c);
  /* keys, comma-joined */
  bool first = true;
  for (size_t i = 0; i < r->n_attrs && !e; i++) {
    const Cairn__Attr *a = r->attrs[i];
    if (!a || !a->key || strcmp(a->key, "key") != 0) continue;
    e = cairn_buf_append_str(b, first ? "key=" : ",");
    if (!e) e = esc(b, &a->value);
    first = false;
  }
  cell_end(c);
  return e;
}

static cairn_err k8s_cells(cells *c, const Cairn__Record *r, int *hl) {
  cairn_buf *b = c->b;
  cairn_err e = cairn_buf_append_str(b, "k8s");
  const ProtobufCBinaryData *stage = attr(r, "stage");
  if (!e && has(stage)) {
    e = cairn_buf_append(b, ":", 1);
    if (!e) e = esc(b, stage);
  }
  cell_end(c);
  bool sep = false;
  if (!e) e = kv(b, r, "user", "user", &sep);
  if (!e) e = kv(b, r, "as", "impersonated_user", &sep);
  cell_end(c);
  sep = false;
  if (!e) e = kv(b, r, "verb", "verb", &sep);
  cell_end(c);
  /* object: namespace/resource/name/subresource (as in the request path) */
  const char *parts[] = {"namespace", "resource", "name", "subresource"};
  bool any = false;
  for (size_t i = 0; i < 4 && !e; i++) {
    const ProtobufCBinaryData *v = attr(r, parts[i]);
    if (!has(v)) continue;
    if (any) e = cairn_buf_append(b, "/", 1);
    if (!e) e = esc(b, v);
    any = true;
  }
  if (!e && !any) {
    sep = false;
    e = kv(b, r, "uri", "request_uri", &sep);
  }
  cell_end(c);
  sep = false;
  const ProtobufCBinaryData *code = attr(r, "code");
  if (!e) e = kv(b, r, "code", "code", &sep);
  if (!e) e = kv(b, r, "decision", "decision", &sep);
  if (has(code) && code->data[0] >= '4') *hl = C_RESULT;
  cell_end(c);
  cell_end(c); /* no key */
  return e;
}

/* -v: every attr and the raw lines, one per line, indented. */
static cairn_err verbose_tail(cairn_buf *b, const Cairn__Record *r) {
  cairn_err e = CAIRN_OK;
  for (size_t i = 0; i < r->n_attrs && !e; i++) {
    const Cairn__Attr *a = r->attrs[i];
    if (!a || !a->key) continue;
    e = cairn_buf_append_str(b, "\n    ");
    if (!e) e = qry__text_escape(b, (const uint8_t *)a->key, strlen(a->key));
    if (!e) e = cairn_buf_append(b, "=", 1);
    if (!e) e = esc(b, &a->value);
  }
  const uint8_t *p = r->message.data;
  size_t n = r->message.len, at = 0;
  while (!e && p && at < n) {
    const uint8_t *nl = memchr(p + at, '\n', n - at);
    size_t end = nl ? (size_t)(nl - p) : n;
    e = cairn_buf_append_str(b, "\n    | ");
    if (!e) e = qry__text_escape(b, p + at, end - at);
    at = end + 1;
  }
  return e;
}

static cairn_err text_row(qry_table *t, cairn_buf *b, const Cairn__Record *r, bool verbose) {
  cairn_buf_reset(b);
  cells c = {.b = b};
  char ts[40];
  size_t tn = cairn_time_format(r->time_ns, ts, sizeof(ts));
  cairn_err e = cairn_buf_append(b, ts, tn);
  cell_end(&c);
  if (!e) e = qry__text_escape(b, (const uint8_t *)(r->node ? r->node : ""),
                               r->node ? strlen(r->node) : 0);
  cell_end(&c);
  int hl = -1;
  if (!e)
    e = r->source == CAIRN__SOURCE__SOURCE_K8S_AUDIT ? k8s_cells(&c, r, &hl)
                                                      : auditd_cells(&c, r, &hl);
  if (!e) e = c.err;
  if (e) return e;
  size_t tail_start = b->len;
  if (verbose && (e = verbose_tail(b, r))) return e;
  return qry__table_add(t, b, c.lens, b->len - tail_start, hl);
}

/* ---- CSV ---- */

static const char *const csv_cols[] = {
    "types",    "auid",        "uid",       "syscall", "exe",  "comm", "success", "exit",
    "key",      "user",        "verb",      "resource", "subresource", "namespace",
    "name",     "code",        "decision",
};

static cairn_err csv_row(cairn_buf *b, const Cairn__Record *r) {
  char ts[40];
  size_t tn = cairn_time_format(r->time_ns, ts, sizeof(ts));
  cairn_err e = qry__csv_field(b, (const uint8_t *)ts, tn);
  const char *node = r->node ? r->node : "";
  if (!e) e = cairn_buf_append(b, ",", 1);
  if (!e) e = qry__csv_field(b, (const uint8_t *)node, strlen(node));
  const char *src = pb_source_name(r->source);
  if (!e) e = cairn_buf_append(b, ",", 1);
  if (!e) e = qry__csv_field(b, (const uint8_t *)src, strlen(src));
  for (size_t i = 0; i < sizeof(csv_cols) / sizeof(csv_cols[0]) && !e; i++) {
    e = cairn_buf_append(b, ",", 1);
    if (strcmp(csv_cols[i], "key") == 0) { /* repeated: joined with ; */
      cairn_buf tmp;
      cairn_buf_init(&tmp);
      for (size_t k = 0; k < r->n_attrs && !e; k++) {
        const Cairn__Attr *a = r->attrs[k];
        if (!a || !a->key || strcmp(a->key, "key") != 0) continue;
        if (tmp.len) e = cairn_buf_append(&tmp, ";", 1);
        if (!e) e = cairn_buf_append(&tmp, a->value.data, a->value.len);
      }
      if (!e) e = qry__csv_field(b, tmp.ptr, tmp.len);
      cairn_buf_fini(&tmp);
      continue;
    }
    const ProtobufCBinaryData *v = attr(r, csv_cols[i]);
    if (!e && v) e = qry__csv_field(b, v->data, v->len);
  }
  if (!e) e = cairn_buf_append(b, "\r\n", 2);
  return e;
}

/* ---- the command ---- */

typedef struct audit_out {
  const qry_opts *o;
  const qry_env *env;
  qry_table table;   /* text */
  cairn_buf row;     /* scratch */
  uint64_t written;
  cairn_err err;
  int err_errno;
} audit_out;

static bool emit(audit_out *a, const Cairn__Record *r) {
  cairn_err e = CAIRN_OK;
  switch (a->o->format) {
  case QRY_FMT_JSON:
    cairn_buf_reset(&a->row);
    e = pb_record_json(r, &a->row);
    if (!e) e = cairn_buf_append(&a->row, "\n", 1);
    if (!e && fwrite(a->row.ptr, 1, a->row.len, a->env->out) != a->row.len) e = CAIRN_E_IO;
    break;
  case QRY_FMT_CSV:
    cairn_buf_reset(&a->row);
    e = csv_row(&a->row, r);
    if (!e && fwrite(a->row.ptr, 1, a->row.len, a->env->out) != a->row.len) e = CAIRN_E_IO;
    break;
  default:
    e = text_row(&a->table, &a->row, r, a->o->verbose);
    break;
  }
  if (e) {
    a->err = e;
    a->err_errno = errno;
    return false;
  }
  a->written++;
  return true;
}

static bool on_event(const Cairn__Record *r, void *ud) { return emit(ud, r); }

/* Events of one source kept packed, for the two-source merge. */
typedef struct packed {
  cairn_buf bytes;  /* records: u32 length + packed bytes */
  size_t *off;      /* start of each record in bytes */
  size_t n, cap;
  int64_t *time;    /* time_ns of each */
  uint64_t *seq;
} packed;

static bool on_pack(const Cairn__Record *r, void *ud) {
  packed *p = ud;
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 128;
    size_t *off = realloc(p->off, cap * sizeof(*off));
    if (off) p->off = off;
    int64_t *t = realloc(p->time, cap * sizeof(*t));
    if (t) p->time = t;
    uint64_t *s = realloc(p->seq, cap * sizeof(*s));
    if (s) p->seq = s;
    if (!off || !t || !s) return false;
    p->cap = cap;
  }
  size_t at = p->bytes.len;
  uint8_t len[4] = {0};
  if (cairn_buf_append(&p->bytes, len, 4) || pb_record_pack(r, &p->bytes)) return false;
  uint32_t n = (uint32_t)(p->bytes.len - at - 4);
  memcpy(p->bytes.ptr + at, &n, 4);
  p->off[p->n] = at;
  p->time[p->n] = r->time_ns;
  p->seq[p->n] = r->seq;
  p->n++;
  return true;
}

static void packed_fini(packed *p) {
  cairn_buf_fini(&p->bytes);
  free(p->off);
  free(p->time);
  free(p->seq);
}

/* Merge the auditd and k8s results in the query order, up to the limit. */
static int merge_both(audit_out *a, sto_env *sto, sto_query_stats *st) {
  /* remote: one request per source (each recorded by the aggregator) */
  const qry_opts *o = a->o;
  packed p[2];
  memset(p, 0, sizeof(p));
  cairn_buf_init(&p[0].bytes);
  cairn_buf_init(&p[1].bytes);
  static const int srcs[2] = {CAIRN__SOURCE__SOURCE_AUDIT, CAIRN__SOURCE__SOURCE_K8S_AUDIT};
  int rc = QRY_EXIT_OK;
  for (int k = 0; k < 2; k++) {
    sto_query q = o->q;
    q.source = srcs[k];
    sto_query_stats s1;
    cairn_err e = qry__query_run(o, a->env, sto, &q, on_pack, &p[k], &s1);
    if (!e && p[k].n != s1.matched) e = CAIRN_E_NOMEM;
    st->examined += s1.examined;
    if (e) {
      rc = qry__query_failed(o, a->env, e);
      goto out_free;
    }
  }
  st->index = "source";
  size_t i[2] = {0, 0};
  cairn_arena ar;
  cairn_arena_init(&ar, 16u << 10);
  while (!a->err && (!o->q.limit || a->written < o->q.limit)) {
    int k;
    if (i[0] < p[0].n && i[1] < p[1].n) {
      int64_t t0 = p[0].time[i[0]], t1 = p[1].time[i[1]];
      bool first0 = t0 != t1 ? t0 < t1 : p[0].seq[i[0]] < p[1].seq[i[1]];
      k = (first0 != o->q.newest_first) ? 0 : 1;
    } else if (i[0] < p[0].n) {
      k = 0;
    } else if (i[1] < p[1].n) {
      k = 1;
    } else {
      break;
    }
    uint32_t n;
    memcpy(&n, p[k].bytes.ptr + p[k].off[i[k]], 4);
    Cairn__Record *r;
    cairn_err e = pb_record_unpack(p[k].bytes.ptr + p[k].off[i[k]] + 4, n, &ar, &r);
    if (e) {
      a->err = e;
      break;
    }
    emit(a, r);
    cairn_arena_reset(&ar);
    i[k]++;
  }
  cairn_arena_fini(&ar);
  st->matched = a->written;
out_free:
  packed_fini(&p[0]);
  packed_fini(&p[1]);
  return rc;
}

int qry__audit_cmd(const qry_opts *o, const qry_env *env) {
  sto_env *sto = NULL;
  int rc = o->server ? QRY_EXIT_OK : qry__store_open(o, env, &sto); /* remote: remote.c */
  if (rc != QRY_EXIT_OK) return rc;
  static const char *const colors[C_NCOLS] = {COL_DIM, NULL, COL_IDENT, NULL,
                                              NULL,    NULL, NULL,      COL_IDENT};
  audit_out a = {.o = o, .env = env};
  cairn_buf_init(&a.row);
  qry__table_init(&a.table, env->out, C_NCOLS, env->out_is_tty, env->color, 0, colors,
                  QRY_ALIGN_WINDOW);
  if (o->format == QRY_FMT_CSV) {
    fputs("time,node,source", env->out);
    for (size_t i = 0; i < sizeof(csv_cols) / sizeof(csv_cols[0]); i++)
      fprintf(env->out, ",%s", csv_cols[i]);
    fputs("\r\n", env->out);
  }
  sto_query_stats st;
  memset(&st, 0, sizeof(st));
  int64_t t0 = cairn_time_mono_ns();
  if (o->q.source) {
    cairn_err e = qry__query_run(o, env, sto, &o->q, on_event, &a, &st);
    if (e) {
      rc = qry__query_failed(o, env, e);
      goto out_fini;
    }
  } else if ((rc = merge_both(&a, sto, &st)) != QRY_EXIT_OK) {
    goto out_fini;
  }
  int64_t t1 = cairn_time_mono_ns();
  if (a.err) {
    rc = qry__output_failed(env, a.err, a.err_errno);
    goto out_fini;
  }
  cairn_err e = qry__table_finish(&a.table);
  if (!e && (fflush(env->out) != 0 || ferror(env->out))) e = CAIRN_E_IO;
  if (e) {
    rc = qry__output_failed(env, e, errno);
    goto out_fini;
  }
  if (o->print_stats)
    fprintf(env->err, "stats: index=%s examined=%llu matched=%llu elapsed_ms=%.3f\n",
            st.index ? st.index : "?", (unsigned long long)st.examined,
            (unsigned long long)a.written, (double)(t1 - t0) / 1e6);
  rc = a.written ? QRY_EXIT_OK : QRY_EXIT_NO_MATCH;
  if (o->result_count) *o->result_count = a.written;
out_fini:
  qry__table_fini(&a.table);
  cairn_buf_fini(&a.row);
  sto_close(sto);
  return rc;
}
