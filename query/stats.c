/* query/stats.c: `cairn-query stats`: record counts grouped by a field
 * (--by, --top) and per time bucket (--histogram), as an aligned table with
 * bars, JSON lines or CSV; without those options the store's counters.
 *
 * With no filter but the time range, counts come from the indexes alone
 * (sto_index_counts, sto_times_scan: no record is decoded). Otherwise the
 * filters run as a search in time order and each match is counted; a long
 * scan shows its progress on stderr when that is a terminal.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/timeparse.h"
#include "query/internal.h"

#define MAX_BUCKETS 100000u
#define BAR_WIDTH 40u
#define PROGRESS_EVERY 65536u      /* records between progress checks */
#define PROGRESS_AFTER_NS 500000000 /* first progress line after 0.5 s */

/* "1.5 GiB" style rendering of a byte count for people. */
static void human_bytes(uint64_t v, char *out, size_t cap) {
  static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double d = (double)v;
  size_t u = 0;
  while (d >= 1024.0 && u < 4) {
    d /= 1024.0;
    u++;
  }
  snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", d, unit[u]);
}

static int write_failed(const qry_env *env) {
  fprintf(env->err, "cairn-query: writing the output failed: %s\n", strerror(errno));
  return QRY_EXIT_USAGE;
}

/* The store counters (stats without --by / --histogram / filters). */
static int counters(const qry_opts *o, const qry_env *env, sto_env *sto) {
  sto_stats s;
  memset(&s, 0, sizeof(s));
  cairn_err e = sto_stats_get(sto, &s);
  if (e) {
    fprintf(env->err, "cairn-query: reading the store in %s failed: %s (%s); check --data\n",
            o->data_dir, cairn_err_name(e), cairn_err_str(e));
    return QRY_EXIT_USAGE;
  }
  switch (o->format) {
  case QRY_FMT_JSON: {
    json_t *j = json_pack("{s:I,s:I,s:I,s:I}", "records", (json_int_t)s.records, "last_seq",
                          (json_int_t)s.last_seq, "map_size", (json_int_t)s.map_size, "map_used",
                          (json_int_t)s.map_used);
    if (!j || json_dumpf(j, env->out, JSON_COMPACT) != 0) {
      json_decref(j);
      return write_failed(env);
    }
    json_decref(j);
    fputc('\n', env->out);
    break;
  }
  case QRY_FMT_CSV:
    fprintf(env->out, "records,last_seq,map_size,map_used\r\n%llu,%llu,%llu,%llu\r\n",
            (unsigned long long)s.records, (unsigned long long)s.last_seq,
            (unsigned long long)s.map_size, (unsigned long long)s.map_used);
    break;
  default: {
    char size[32], used[32];
    human_bytes(s.map_size, size, sizeof(size));
    human_bytes(s.map_used, used, sizeof(used));
    fprintf(env->out,
            "store     %s\nrecords   %llu\nlast_seq  %llu\nmap_size  %llu (%s)\n"
            "map_used  %llu (%s)\n",
            o->data_dir, (unsigned long long)s.records, (unsigned long long)s.last_seq,
            (unsigned long long)s.map_size, size, (unsigned long long)s.map_used, used);
    break;
  }
  }
  if (fflush(env->out) != 0 || ferror(env->out)) return write_failed(env);
  return QRY_EXIT_OK;
}

/* ---- counting ---- */

typedef struct group {
  char *value;    /* owned by the arena; n bytes, NUL-terminated */
  size_t n;
  uint64_t hash;
  uint64_t count;
} group;

typedef struct bucket {
  int64_t start;  /* ns, a multiple of bucket_ns */
  uint64_t count;
} bucket;

typedef struct counter {
  const qry_opts *o;
  const qry_env *env;
  int by;                /* qry group, -1 = none */
  group *tab;            /* open addressing, cap a power of two */
  size_t cap, used;
  cairn_arena strs;
  int64_t bucket_ns;     /* 0 = no histogram */
  bucket *b;
  size_t nb, bcap;
  uint64_t total;        /* records counted */
  bool overflow;         /* more than MAX_BUCKETS */
  bool nomem;
  int64_t t0;            /* mono start, for progress */
  bool progress_shown;
} counter;

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

static bool tab_grow(counter *c) {
  size_t cap = c->cap ? c->cap * 2 : 64;
  group *t = calloc(cap, sizeof(*t));
  if (!t) return false;
  for (size_t i = 0; i < c->cap; i++) {
    if (!c->tab[i].value) continue;
    size_t j = c->tab[i].hash & (cap - 1);
    while (t[j].value) j = (j + 1) & (cap - 1);
    t[j] = c->tab[i];
  }
  free(c->tab);
  c->tab = t;
  c->cap = cap;
  return true;
}

static void tab_add(counter *c, const uint8_t *v, size_t n, uint64_t k) {
  if ((c->used + 1) * 10 > c->cap * 7 && !tab_grow(c)) {
    c->nomem = true;
    return;
  }
  uint64_t h = hash_bytes(v, n);
  size_t j = h & (c->cap - 1);
  while (c->tab[j].value) {
    group *g = &c->tab[j];
    if (g->hash == h && g->n == n && memcmp(g->value, v, n) == 0) {
      g->count += k;
      return;
    }
    j = (j + 1) & (c->cap - 1);
  }
  char *s = cairn_arena_strndup(&c->strs, (const char *)v, n);
  if (!s) {
    c->nomem = true;
    return;
  }
  c->tab[j] = (group){s, n, h, k};
  c->used++;
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Make sure the bucket of start s exists (times arrive in ascending order,
 * gaps are filled with empty buckets); its index, or SIZE_MAX. */
static size_t bucket_at(counter *c, int64_t s) {
  if (c->nb && c->b[c->nb - 1].start == s) return c->nb - 1;
  while (!c->nb || c->b[c->nb - 1].start < s) {
    if (c->nb == MAX_BUCKETS) {
      c->overflow = true;
      return SIZE_MAX;
    }
    if (c->nb == c->bcap) {
      size_t cap = c->bcap ? c->bcap * 2 : 256;
      bucket *nbk = realloc(c->b, cap * sizeof(*nbk));
      if (!nbk) {
        c->nomem = true;
        return SIZE_MAX;
      }
      c->b = nbk;
      c->bcap = cap;
    }
    int64_t next = c->nb ? c->b[c->nb - 1].start + c->bucket_ns : s;
    c->b[c->nb++] = (bucket){next, 0};
  }
  return c->nb - 1;
}

static void count_time(counter *c, int64_t t, uint64_t k) {
  size_t i = bucket_at(c, floor_div(t, c->bucket_ns) * c->bucket_ns);
  if (i != SIZE_MAX) c->b[i].count += k;
}

static void progress(counter *c) {
  if (!c->env->err_is_tty || c->total % PROGRESS_EVERY) return;
  int64_t el = cairn_time_mono_ns() - c->t0;
  if (el < PROGRESS_AFTER_NS) return;
  fprintf(c->env->err, "\rstats: %llu records counted (%.1f s)...",
          (unsigned long long)c->total, (double)el / 1e9);
  fflush(c->env->err);
  c->progress_shown = true;
}

/* The i-th value of group g in r. */
static bool group_value(const Cairn__Record *r, int g, size_t i, const uint8_t **v, size_t *n) {
  if (g < STO_FIELD_COUNT_) return sto_field_value(r, (sto_field)g, i, v, n);
  if (i) return false;
  const char *s = NULL;
  if (g == QRY_GROUP_SOURCE) s = pb_source_name(r->source);
  if (g == QRY_GROUP_STREAM) s = pb_stream_name(r->stream);
  if (g == QRY_GROUP_DECISION) {
    if (r->source != CAIRN__SOURCE__SOURCE_K8S_AUDIT) return false;
    for (size_t k = 0; k < r->n_attrs; k++)
      if (r->attrs[k] && r->attrs[k]->key && !strcmp(r->attrs[k]->key, "decision") &&
          r->attrs[k]->value.len) {
        *v = r->attrs[k]->value.data;
        *n = r->attrs[k]->value.len;
        return true;
      }
    return false;
  }
  if (!s || !*s) return false;
  *v = (const uint8_t *)s;
  *n = strlen(s);
  return true;
}

static bool on_match(const Cairn__Record *r, void *ud) {
  counter *c = ud;
  c->total++;
  if (c->by >= 0) {
    const uint8_t *v, *pv;
    size_t n, pn;
    for (size_t i = 0; group_value(r, c->by, i, &v, &n); i++) {
      bool dup = false; /* a repeated value (key, type) counts once per record */
      for (size_t j = 0; j < i && !dup; j++)
        dup = group_value(r, c->by, j, &pv, &pn) && pn == n && !memcmp(pv, v, n);
      if (!dup) tab_add(c, v, n, 1);
    }
  }
  if (c->bucket_ns) count_time(c, r->time_ns, 1);
  progress(c);
  return !c->nomem && !c->overflow;
}

static bool on_index_count(const uint8_t *v, size_t n, uint64_t k, void *ud) {
  tab_add(ud, v, n, k);
  return !((counter *)ud)->nomem;
}

static bool on_time(int64_t t, void *ud) {
  counter *c = ud;
  c->total++;
  count_time(c, t, 1);
  progress(c);
  return !c->nomem && !c->overflow;
}

static bool has_filters(const sto_query *q) {
  if (q->source || q->stream || (q->grep && *q->grep) || q->filter || q->msg_filter) return true;
  if ((q->pod && *q->pod) || (q->container && *q->container) ||
      (q->kube_namespace && *q->kube_namespace) || (q->node && *q->node))
    return true;
  for (int f = 0; f < STO_FIELD_COUNT_; f++)
    if (q->terms[f].n) return true;
  return false;
}

static int cmp_group(const void *a, const void *b) {
  const group *x = a, *y = b;
  if (x->count != y->count) return x->count > y->count ? -1 : 1;
  size_t n = x->n < y->n ? x->n : y->n;
  int c = memcmp(x->value, y->value, n);
  return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Extend the histogram to every bucket of [since, until) that was given
 * (empty buckets included). false when that is more than MAX_BUCKETS. */
static bool pad_range(counter *c) {
  const sto_query *q = &c->o->q;
  int64_t bl = c->bucket_ns;
  bool have = c->nb > 0;
  int64_t first = q->since_ns != INT64_MIN ? floor_div(q->since_ns, bl) * bl
                  : have                   ? c->b[0].start
                                           : 0;
  int64_t last = q->until_ns != INT64_MAX ? floor_div(q->until_ns - 1, bl) * bl
                 : have                   ? c->b[c->nb - 1].start
                                          : 0;
  if (!have && (q->since_ns == INT64_MIN || q->until_ns == INT64_MAX)) return true;
  if (last < first) return true;
  if ((uint64_t)(last - first) / (uint64_t)bl >= MAX_BUCKETS) return false;
  size_t n = (size_t)((uint64_t)(last - first) / (uint64_t)bl) + 1;
  bucket *nb = calloc(n, sizeof(*nb));
  if (!nb) return false;
  for (size_t i = 0; i < n; i++) nb[i].start = first + (int64_t)i * bl;
  for (size_t i = 0; i < c->nb; i++) {
    int64_t s = c->b[i].start;
    if (s < first || s > last) continue;
    nb[(size_t)((uint64_t)(s - first) / (uint64_t)bl)].count += c->b[i].count;
  }
  free(c->b);
  c->b = nb;
  c->nb = c->bcap = n;
  return true;
}

/* Count per o. QRY_EXIT_OK or QRY_EXIT_USAGE (reported). */
static int count(counter *c, sto_env *sto) {
  const qry_opts *o = c->o;
  cairn_err e = CAIRN_OK;
  bool indexed = !has_filters(&o->q) && !o->server; /* remote: count streamed records */
  if (indexed && c->by >= 0 && c->by < STO_FIELD_COUNT_) {
    uint64_t total = 0;
    e = sto_index_counts(sto, (sto_field)c->by, o->q.since_ns, o->q.until_ns, on_index_count, c,
                         &total);
    if (e == CAIRN_OK) {
      c->total = total;
      if (!c->bucket_ns) goto out_done;
      c->total = 0;
      e = sto_times_scan(sto, o->q.since_ns, o->q.until_ns, on_time, c);
      goto out_done;
    }
    if (e != CAIRN_E_NOTFOUND) goto out_done;
    /* the store predates attr indexes: count from the records */
    e = CAIRN_OK;
  } else if (indexed && c->by < 0) {
    e = sto_times_scan(sto, o->q.since_ns, o->q.until_ns, on_time, c);
    goto out_done;
  }
  sto_query q = o->q;
  q.limit = 0;
  q.newest_first = false;
  e = qry__query_run(o, c->env, sto, &q, on_match, c, NULL);
out_done:
  if (c->progress_shown) fprintf(c->env->err, "\r\033[K");
  if (!e && c->nomem) e = CAIRN_E_NOMEM;
  if (e) return qry__query_failed(o, c->env, e);
  if (c->overflow) {
    fprintf(c->env->err,
            "cairn-query stats: --histogram: more than %u buckets; use a longer bucket or a "
            "shorter --since/--until range\n",
            MAX_BUCKETS);
    return QRY_EXIT_USAGE;
  }
  if (c->bucket_ns && !pad_range(c)) {
    fprintf(c->env->err,
            "cairn-query stats: --histogram: more than %u buckets; use a longer bucket or a "
            "shorter --since/--until range\n",
            MAX_BUCKETS);
    return QRY_EXIT_USAGE;
  }
  return QRY_EXIT_OK;
}

/* ---- rendering ---- */

/* RFC 3339 of a bucket start, without the fraction when it is zero. */
static size_t bucket_time(int64_t t, char *out, size_t cap) {
  size_t n = cairn_time_format(t, out, cap);
  char *dot = strstr(out, ".000000000Z");
  if (dot) {
    memcpy(dot, "Z", 2);
    n = (size_t)(dot - out) + 1;
  }
  return n;
}

/* Bar of count against max: BAR_WIDTH cells at most, at least one for > 0. */
static cairn_err bar(cairn_buf *b, uint64_t count, uint64_t max, bool utf8) {
  size_t w = max ? (size_t)((double)count * BAR_WIDTH / (double)max + 0.5) : 0;
  if (count && !w) w = 1;
  cairn_err e = CAIRN_OK;
  for (size_t i = 0; i < w && !e; i++) e = cairn_buf_append_str(b, utf8 ? "\xe2\x96\x88" : "#");
  return e;
}

static cairn_err json_line(FILE *out, json_t *j) {
  if (!j) return CAIRN_E_NOMEM;
  int rc = json_dumpf(j, out, JSON_COMPACT);
  json_decref(j);
  if (rc != 0 || fputc('\n', out) == EOF) return CAIRN_E_IO;
  return CAIRN_OK;
}

/* A JSON string for bytes v: exact when valid UTF-8, else terminal-escaped. */
static json_t *json_bytes(const char *v, size_t n) {
  json_t *s = json_stringn(v, n);
  if (s) return s;
  cairn_buf b;
  cairn_buf_init(&b);
  if (qry__text_escape(&b, (const uint8_t *)v, n) == CAIRN_OK) s = json_stringn((char *)b.ptr, b.len);
  cairn_buf_fini(&b);
  return s;
}

static cairn_err render_groups(counter *c, group *g, size_t n) {
  const qry_opts *o = c->o;
  const qry_env *env = c->env;
  const char *by = qry__group_name(c->by);
  size_t shown = o->top && o->top < n ? o->top : n;
  uint64_t rest_count = 0, sum = 0;
  for (size_t i = shown; i < n; i++) rest_count += g[i].count;
  for (size_t i = 0; i < n; i++) sum += g[i].count;
  cairn_err e = CAIRN_OK;
  if (o->format == QRY_FMT_JSON) {
    for (size_t i = 0; i < shown && !e; i++)
      e = json_line(env->out, json_pack("{s:s,s:o,s:I}", "by", by, "value",
                                        json_bytes(g[i].value, g[i].n), "count",
                                        (json_int_t)g[i].count));
    if (!e)
      e = json_line(env->out, json_pack("{s:s,s:I,s:I,s:I,s:I}", "by", by, "total",
                                        (json_int_t)c->total, "values", (json_int_t)n,
                                        "other_values", (json_int_t)(n - shown), "other_count",
                                        (json_int_t)rest_count));
    return e;
  }
  cairn_buf b;
  cairn_buf_init(&b);
  if (o->format == QRY_FMT_CSV) {
    e = cairn_buf_printf(&b, "%s,count\r\n", by);
    for (size_t i = 0; i < shown && !e; i++) {
      e = qry__csv_field(&b, (const uint8_t *)g[i].value, g[i].n);
      if (!e) e = cairn_buf_printf(&b, ",%llu\r\n", (unsigned long long)g[i].count);
    }
    if (!e && fwrite(b.ptr, 1, b.len, env->out) != b.len) e = CAIRN_E_IO;
    cairn_buf_fini(&b);
    return e;
  }
  static const char *const colors[4] = {"\033[36m", NULL, "\033[2m", "\033[32m"};
  qry_table t;
  qry__table_init(&t, env->out, 4, true, env->color, 0x6u, colors, 0);
  uint64_t max = n ? g[0].count : 0;
  size_t lens[4];
  /* header */
  e = cairn_buf_append_str(&b, by);
  lens[0] = b.len;
  if (!e) e = cairn_buf_append_str(&b, "count");
  lens[1] = b.len - lens[0];
  if (!e) e = cairn_buf_append_str(&b, "%");
  lens[2] = 1;
  lens[3] = 0;
  if (!e) e = qry__table_add(&t, &b, lens, 0, -1);
  for (size_t i = 0; i < shown && !e; i++) {
    cairn_buf_reset(&b);
    size_t s0 = b.len;
    e = qry__text_escape(&b, (const uint8_t *)g[i].value, g[i].n);
    lens[0] = b.len - s0;
    s0 = b.len;
    if (!e) e = cairn_buf_printf(&b, "%llu", (unsigned long long)g[i].count);
    lens[1] = b.len - s0;
    s0 = b.len;
    if (!e)
      e = cairn_buf_printf(&b, "%.1f%%", sum ? 100.0 * (double)g[i].count / (double)sum : 0.0);
    lens[2] = b.len - s0;
    s0 = b.len;
    if (!e) e = bar(&b, g[i].count, max, env->out_is_tty);
    lens[3] = b.len - s0;
    if (!e) e = qry__table_add(&t, &b, lens, 0, -1);
  }
  if (!e) e = qry__table_finish(&t);
  qry__table_fini(&t);
  cairn_buf_fini(&b);
  if (e) return e;
  if (n > shown)
    fprintf(env->out, "(%zu more values with %llu records; --top 0 shows all)\n", n - shown,
            (unsigned long long)rest_count);
  fprintf(env->out, "%llu records, %zu distinct %s values\n", (unsigned long long)c->total, n,
          by);
  return ferror(env->out) ? CAIRN_E_IO : CAIRN_OK;
}

static cairn_err render_histogram(counter *c) {
  const qry_opts *o = c->o;
  const qry_env *env = c->env;
  cairn_err e = CAIRN_OK;
  char ts[40];
  if (o->format == QRY_FMT_JSON) {
    for (size_t i = 0; i < c->nb && !e; i++) {
      bucket_time(c->b[i].start, ts, sizeof(ts));
      e = json_line(env->out, json_pack("{s:s,s:I,s:I,s:I}", "bucket", ts, "bucket_ns",
                                        (json_int_t)c->b[i].start, "bucket_len_ns",
                                        (json_int_t)c->bucket_ns, "count",
                                        (json_int_t)c->b[i].count));
    }
    return e;
  }
  cairn_buf b;
  cairn_buf_init(&b);
  if (o->format == QRY_FMT_CSV) {
    e = cairn_buf_append_str(&b, "bucket,count\r\n");
    for (size_t i = 0; i < c->nb && !e; i++) {
      bucket_time(c->b[i].start, ts, sizeof(ts));
      e = cairn_buf_printf(&b, "%s,%llu\r\n", ts, (unsigned long long)c->b[i].count);
    }
    if (!e && fwrite(b.ptr, 1, b.len, env->out) != b.len) e = CAIRN_E_IO;
    cairn_buf_fini(&b);
    return e;
  }
  static const char *const colors[3] = {"\033[2m", NULL, "\033[32m"};
  qry_table t;
  qry__table_init(&t, env->out, 3, true, env->color, 0x2u, colors, 0);
  uint64_t max = 0;
  for (size_t i = 0; i < c->nb; i++)
    if (c->b[i].count > max) max = c->b[i].count;
  size_t lens[3];
  e = cairn_buf_append_str(&b, "bucket");
  lens[0] = b.len;
  if (!e) e = cairn_buf_append_str(&b, "count");
  lens[1] = 5;
  lens[2] = 0;
  if (!e) e = qry__table_add(&t, &b, lens, 0, -1);
  for (size_t i = 0; i < c->nb && !e; i++) {
    cairn_buf_reset(&b);
    size_t n = bucket_time(c->b[i].start, ts, sizeof(ts));
    e = cairn_buf_append(&b, ts, n);
    lens[0] = n;
    if (!e) e = cairn_buf_printf(&b, "%llu", (unsigned long long)c->b[i].count);
    lens[1] = b.len - n;
    size_t s0 = b.len;
    if (!e) e = bar(&b, c->b[i].count, max, env->out_is_tty);
    lens[2] = b.len - s0;
    if (!e) e = qry__table_add(&t, &b, lens, 0, -1);
  }
  if (!e) e = qry__table_finish(&t);
  qry__table_fini(&t);
  cairn_buf_fini(&b);
  if (!e) {
    char len[32];
    snprintf(len, sizeof(len), "%lld s", (long long)(c->bucket_ns / 1000000000));
    fprintf(env->out, "%llu records in %zu buckets of %s\n", (unsigned long long)c->total, c->nb,
            len);
  }
  return e ? e : (ferror(env->out) ? CAIRN_E_IO : CAIRN_OK);
}

int qry__stats_cmd(const qry_opts *o, const qry_env *env) {
  sto_env *sto = NULL;
  int rc = o->server ? QRY_EXIT_OK : qry__store_open(o, env, &sto); /* remote: remote.c */
  if (rc != QRY_EXIT_OK) return rc;
  /* remotely there are no store counters: count the records the grant shows */
  bool selective = has_filters(&o->q) || o->q.since_ns != INT64_MIN ||
                   o->q.until_ns != INT64_MAX || o->server;
  if (o->group < 0 && !o->bucket_ns && !selective) {
    rc = counters(o, env, sto);
    sto_close(sto);
    return rc;
  }
  counter c = {.o = o, .env = env, .by = o->group, .bucket_ns = o->bucket_ns};
  cairn_arena_init(&c.strs, 16u << 10);
  c.t0 = cairn_time_mono_ns();
  rc = count(&c, sto);
  if (rc != QRY_EXIT_OK) goto out_free;

  cairn_err e = CAIRN_OK;
  if (c.by >= 0) {
    group *g = calloc(c.used ? c.used : 1, sizeof(*g));
    if (!g) {
      e = CAIRN_E_NOMEM;
    } else {
      size_t n = 0;
      for (size_t i = 0; i < c.cap; i++)
        if (c.tab[i].value) g[n++] = c.tab[i];
      qsort(g, n, sizeof(*g), cmp_group);
      e = render_groups(&c, g, n);
      free(g);
    }
  }
  if (!e && c.bucket_ns) {
    if (c.by >= 0 && o->format == QRY_FMT_TEXT) fputc('\n', env->out);
    if (c.by >= 0 && o->format == QRY_FMT_CSV) fputs("\r\n", env->out);
    e = render_histogram(&c);
  }
  if (!e && c.by < 0 && !c.bucket_ns) { /* filters only: how many records match */
    if (o->format == QRY_FMT_JSON)
      e = json_line(env->out, json_pack("{s:I}", "records", (json_int_t)c.total));
    else if (o->format == QRY_FMT_CSV)
      fprintf(env->out, "records\r\n%llu\r\n", (unsigned long long)c.total);
    else
      fprintf(env->out, "records   %llu\n", (unsigned long long)c.total);
  }
  if (!e && (fflush(env->out) != 0 || ferror(env->out))) e = CAIRN_E_IO;
  if (e) {
    rc = qry__output_failed(env, e, errno);
    goto out_free;
  }
  rc = c.total ? QRY_EXIT_OK : QRY_EXIT_NO_MATCH;
  if (o->result_count) *o->result_count = c.total;
out_free:
  free(c.tab);
  free(c.b);
  cairn_arena_fini(&c.strs);
  sto_close(sto);
  return rc;
}
