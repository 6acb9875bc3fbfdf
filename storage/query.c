/* storage/query.c: the read side: the query planner and index scan, index
 * counts for stats, and the ordered scans by seq used by the Kafka forwarder
 * (unpacked, and raw: the stored bytes as they are, for pb_view_parse).
 * A query walks the index keys of one filter (the most selective one) over
 * their [since, until) dup range, merging several keys (OR terms, prefix and
 * glob ranges) in (time, seq) order, fetches each record by seq and re-checks
 * every filter on the record itself, so index value truncation never changes
 * results.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"

#define SCRATCH_BLOCK (16u << 10) /* arena block for one unpacked record */
#define MERGE_MAX 64u             /* index keys one walk may merge */
#define PREFETCH_LINES 8u         /* cache lines below a record read ahead (see visit) */
#define GLOB_STACK 512u           /* values up to this size are matched without malloc */

void sto_query_init(sto_query *q) {
  memset(q, 0, sizeof(*q));
  q->since_ns = INT64_MIN;
  q->until_ns = INT64_MAX;
}

/* Unpack the stored bytes of a record into a (reset by the caller). */
static cairn_err unpack(const MDB_val *v, cairn_arena *a, Cairn__Record **out) {
  cairn_err err = pb_record_unpack(v->mv_data, v->mv_size, a, out);
  return err == CAIRN_E_PROTO ? CAIRN_E_CORRUPT : err;
}

cairn_err sto_scan_after_raw(sto_env *env, uint64_t after_seq, size_t max, sto_raw_record_cb cb,
                             void *ud) {
  if (!env || !cb) return CAIRN_E_INVAL;
  if (after_seq == UINT64_MAX) return CAIRN_OK;
  MDB_txn *txn;
  MDB_cursor *cur;
  cairn_err err = sto__rcursor_open(env, env->records, &txn, &cur);
  if (err != CAIRN_OK) return err;
  int rc;
  uint8_t kb[8];
  sto__be64_put(kb, after_seq + 1);
  MDB_val k = {8, kb}, v;
  size_t seen = 0;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (max && seen >= max) break;
    if (k.mv_size != 8) {
      err = CAIRN_E_CORRUPT;
      break;
    }
    seen++;
    if (!cb(sto__be64_get(k.mv_data), v.mv_data, v.mv_size, ud)) break;
  }
  if (err == CAIRN_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = sto__err_from_mdb(rc);
  mdb_cursor_close(cur);
  sto__rtxn_end(env, txn);
  return err;
}

/* sto_scan_after's state: the caller's callback, the arena each record is
 * unpacked into, and the decode error that stopped the raw scan. */
typedef struct scan_unpack_ctx {
  sto_record_cb cb;
  void *ud;
  cairn_arena scratch;
  cairn_err err;
} scan_unpack_ctx;

/* sto_raw_record_cb of sto_scan_after: unpack, hand over, reset the arena. */
static bool scan_unpack_cb(uint64_t seq, const uint8_t *p, size_t n, void *ud) {
  (void)seq;
  scan_unpack_ctx *c = ud;
  MDB_val v = {n, (void *)p};
  Cairn__Record *r;
  c->err = unpack(&v, &c->scratch, &r);
  if (c->err != CAIRN_OK) return false;
  bool more = c->cb(r, c->ud);
  cairn_arena_reset(&c->scratch);
  return more;
}

/* The raw scan plus an unpack per record: one cursor loop for both. */
cairn_err sto_scan_after(sto_env *env, uint64_t after_seq, size_t max, sto_record_cb cb,
                         void *ud) {
  if (!env || !cb) return CAIRN_E_INVAL;
  scan_unpack_ctx c = {.cb = cb, .ud = ud, .err = CAIRN_OK};
  cairn_arena_init(&c.scratch, SCRATCH_BLOCK);
  cairn_err err = sto_scan_after_raw(env, after_seq, max, scan_unpack_cb, &c);
  if (err == CAIRN_OK) err = c.err;
  cairn_arena_fini(&c.scratch);
  return err;
}

/* ---- record checks ---- */

static inline const char *want(const char *s) { return (s && s[0]) ? s : NULL; }

static bool field_eq(const char *field, const char *wanted) {
  return !wanted || strcmp(field ? field : "", wanted) == 0;
}

/* Bytes of t's value that are literal (the whole value, or for a glob the
 * part before its first special character). */
static size_t literal_prefix(const sto_term *t) {
  size_t n = strlen(t->value);
  if (t->match != STO_MATCH_GLOB) return n;
  return strcspn(t->value, "*?[\\");
}

static bool term_match(const sto_term *t, const uint8_t *v, size_t n) {
  size_t tl = strlen(t->value);
  switch (t->match) {
  case STO_MATCH_EXACT:
    return tl == n && memcmp(t->value, v, n) == 0;
  case STO_MATCH_PREFIX:
    return n >= tl && memcmp(t->value, v, tl) == 0;
  case STO_MATCH_GLOB: {
    size_t lit = literal_prefix(t);
    if (n < lit || memcmp(t->value, v, lit) != 0) return false;
    char stack[GLOB_STACK];
    char *s = n < sizeof(stack) ? stack : malloc(n + 1);
    if (!s) return false;
    memcpy(s, v, n);
    s[n] = 0;
    bool ok = fnmatch(t->value, s, 0) == 0;
    if (s != stack) free(s);
    return ok;
  }
  }
  return false;
}

static bool terms_match(const Cairn__Record *r, sto_field f, const sto_terms *ts) {
  if (ts->n == 0) return true;
  const uint8_t *v;
  size_t n;
  for (size_t i = 0; sto_field_value(r, f, i, &v, &n); i++)
    for (size_t k = 0; k < ts->n; k++)
      if (term_match(&ts->v[k], v, n)) return true;
  return false;
}

/* The checks a packed record can answer without being decoded: time,
 * source, stream and the message (grep, msg_filter). */
static bool match_raw(const sto_query *q, int64_t time_ns, int source, int stream,
                      const uint8_t *msg, size_t len) {
  if (time_ns < q->since_ns || time_ns >= q->until_ns) return false;
  if (q->source && source != q->source) return false;
  if (q->stream && stream != q->stream) return false;
  const char *g = want(q->grep);
  if (g && (!len || !memmem(msg, len, g, strlen(g)))) return false;
  if (q->msg_filter && !q->msg_filter(len ? msg : (const uint8_t *)"", len, q->msg_filter_ud))
    return false;
  return true;
}

/* The rest of sto_query_match: fields, terms and q->filter. */
static bool match_rest(const sto_query *q, const Cairn__Record *r) {
  if (!field_eq(r->pod, want(q->pod))) return false;
  if (!field_eq(r->container, want(q->container))) return false;
  if (!field_eq(r->kube_namespace, want(q->kube_namespace))) return false;
  if (!field_eq(r->node, want(q->node))) return false;
  for (int f = 0; f < STO_FIELD_COUNT_; f++)
    if (!terms_match(r, (sto_field)f, &q->terms[f])) return false;
  if (q->filter && !q->filter(r, q->filter_ud)) return false;
  return true;
}

bool sto_query_match(const sto_query *q, const Cairn__Record *r) {
  return match_raw(q, r->time_ns, (int)r->source, (int)r->stream, r->message.data,
                   r->message.data ? r->message.len : 0) &&
         match_rest(q, r);
}

/* ---- reading a packed record without decoding it ---- */

/* What match_raw needs, read from the protobuf wire bytes of a Record. */
typedef struct raw_rec {
  int64_t time_ns;
  int source, stream;
  const uint8_t *msg;
  size_t msg_len;
} raw_rec;

/* Decode a varint at *p (< end); false when cut or longer than 10 bytes. */
static inline bool wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  if (*p < end && **p < 0x80) { /* one byte: every tag and most lengths here */
    *out = *(*p)++;
    return true;
  }
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

/* Scan the top-level fields of a packed Record for time_ns (1), source (2),
 * stream (3) and message (5), skipping the others; the last occurrence wins,
 * as in protobuf decoding. false on anything unexpected (bad wire type of
 * those fields, a cut field, groups): the caller then decodes the record
 * fully, which reports the damage. */
static bool raw_scan(const uint8_t *p, size_t n, raw_rec *out) {
  const uint8_t *end = p + n;
  memset(out, 0, sizeof(*out));
  while (p < end) {
    uint64_t tag, v;
    if (!wire_varint(&p, end, &tag)) return false;
    uint64_t field = tag >> 3;
    unsigned wt = (unsigned)(tag & 7);
    switch (wt) {
    case 0: /* varint */
      if (field == 5) return false;
      if (field > 3) { /* not needed: skip to its last byte */
        const uint8_t *stop = end - p > 10 ? p + 10 : end;
        while (p < stop && (*p & 0x80)) p++;
        if (p == stop) return false;
        p++;
        break;
      }
      if (!wire_varint(&p, end, &v)) return false;
      if (field == 1)
        out->time_ns = (int64_t)v;
      else if (field == 2)
        out->source = (int)(int32_t)v;
      else if (field == 3)
        out->stream = (int)(int32_t)v;
      break;
    case 2: /* length-delimited */
      if (!wire_varint(&p, end, &v) || v > (uint64_t)(end - p)) return false;
      if (field == 5) {
        out->msg = p;
        out->msg_len = (size_t)v;
      } else if (field >= 1 && field <= 3) {
        return false;
      }
      p += v;
      break;
    case 1: /* 64-bit */
    case 5: /* 32-bit */
      if (field >= 1 && field <= 5) return false;
      if ((size_t)(end - p) < (wt == 1 ? 8u : 4u)) return false;
      p += wt == 1 ? 8 : 4;
      break;
    default:
      return false;
    }
  }
  return true;
}

/* ---- planning ---- */

/* The idx keys one walk merges. */
typedef struct key_set {
  const char *name;  /* index name for sto_query_stats; static */
  size_t n;          /* keys */
  uint64_t count;    /* index entries under them (all times) */
  uint8_t key[MERGE_MAX][STO__IDX_KEY_MAX];
  size_t klen[MERGE_MAX];
} key_set;

static bool has_terms(const sto_query *q) {
  for (int f = 0; f < STO_FIELD_COUNT_; f++)
    if (q->terms[f].n) return true;
  return false;
}

/* Add key to ks (once) with its dup count; false when ks is full. */
static bool ks_add(key_set *ks, const uint8_t *key, size_t klen, uint64_t count) {
  for (size_t i = 0; i < ks->n; i++)
    if (ks->klen[i] == klen && memcmp(ks->key[i], key, klen) == 0) return true;
  if (ks->n == MERGE_MAX) return false;
  memcpy(ks->key[ks->n], key, klen);
  ks->klen[ks->n++] = klen;
  ks->count += count;
  return true;
}

/* Add one exact key (if present in the index). */
static cairn_err ks_exact(MDB_cursor *cur, key_set *ks, const uint8_t *key, size_t klen,
                          bool *ok) {
  MDB_val k = {klen, (void *)key}, d;
  int rc = mdb_cursor_get(cur, &k, &d, MDB_SET);
  if (rc == MDB_NOTFOUND) return CAIRN_OK;
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  size_t c = 0;
  rc = mdb_cursor_count(cur, &c);
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  if (!ks_add(ks, key, klen, c)) *ok = false;
  return CAIRN_OK;
}

/* Add the keys a term of field kind can match; *ok false when the term
 * cannot use the index (no literal prefix, too many keys). */
static cairn_err ks_term(MDB_cursor *cur, key_set *ks, uint8_t kind, const sto_term *t,
                         bool *ok) {
  uint8_t key[STO__IDX_KEY_MAX];
  size_t lit = literal_prefix(t);
  if (t->match == STO_MATCH_EXACT) {
    size_t klen = sto__idx_key_bytes(key, kind, (const uint8_t *)t->value, lit);
    return ks_exact(cur, ks, key, klen, ok);
  }
  if (lit == 0) {
    *ok = false;
    return CAIRN_OK;
  }
  size_t plen = sto__idx_key_bytes(key, kind, (const uint8_t *)t->value, lit);
  MDB_val k = {plen, key}, d;
  int rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS && *ok) {
    if (k.mv_size < plen || memcmp(k.mv_data, key, plen) != 0) break;
    /* a glob can rule out whole keys unless the value was cut */
    bool take = true;
    if (t->match == STO_MATCH_GLOB && k.mv_size < STO__IDX_KEY_MAX)
      take = term_match(t, (const uint8_t *)k.mv_data + 1, k.mv_size - 1);
    if (take) {
      size_t c = 0;
      rc = mdb_cursor_count(cur, &c);
      if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
      if (!ks_add(ks, k.mv_data, k.mv_size, c)) *ok = false;
    }
    rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_NODUP);
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return sto__err_from_mdb(rc);
  return CAIRN_OK;
}

/* Does the store carry attr index entries for every record? */
static cairn_err attr_idx_covers(sto_env *env, MDB_txn *txn, bool *out) {
  static const char name[] = STO__META_ATTR_IDX_FROM;
  MDB_val k = {sizeof(name) - 1, (void *)name}, v;
  int rc = mdb_get(txn, env->meta, &k, &v);
  *out = false;
  if (rc == MDB_NOTFOUND) return CAIRN_OK;
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  if (v.mv_size != 8) return CAIRN_E_CORRUPT;
  *out = sto__be64_get(v.mv_data) == 1;
  return CAIRN_OK;
}

/* The fixed-order choice among the single-value filters (no terms). */
static void plan_fixed(const sto_query *q, key_set *ks) {
  const struct {
    uint8_t kind;
    const char *value;
    const char *name;
  } order[] = {
      {STO__IDX_POD, q->pod, "pod"},
      {STO__IDX_CONTAINER, q->container, "container"},
      {STO__IDX_NAMESPACE, q->kube_namespace, "namespace"},
      {STO__IDX_NODE, q->node, "node"},
  };
  ks->n = 1;
  for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
    if (!want(order[i].value)) continue;
    ks->name = order[i].name;
    ks->klen[0] = sto__idx_key_str(ks->key[0], order[i].kind, order[i].value);
    return;
  }
  if (q->source > 0) {
    ks->name = "source";
    ks->klen[0] = sto__idx_key_source(ks->key[0], (uint32_t)q->source);
    return;
  }
  ks->name = "time";
  ks->klen[0] = sto__idx_key_str(ks->key[0], STO__IDX_TIME, NULL);
}

/* Keep cand in *best when it is usable and smaller; the loser is reset to
 * be the next candidate's scratch. */
static void keep_smaller(key_set **best, key_set **cand, bool ok) {
  if (ok && (*cand)->count <= (*best)->count) {
    key_set *t = *best;
    *best = *cand;
    *cand = t;
  }
  memset(*cand, 0, offsetof(key_set, key));
}

/* Choose the walk for q: *out points at one of two key sets in ks[2]. */
static cairn_err plan(sto_env *env, MDB_txn *txn, MDB_cursor *cur, const sto_query *q,
                      key_set ks[2], key_set **out) {
  key_set *best = &ks[0], *cand = &ks[1];
  memset(best, 0, offsetof(key_set, key));
  memset(cand, 0, offsetof(key_set, key));
  if (!has_terms(q)) {
    plan_fixed(q, best);
    *out = best;
    return CAIRN_OK;
  }
  bool ok = true;
  best->name = "time";
  uint8_t key[STO__IDX_KEY_MAX];
  size_t klen = sto__idx_key_str(key, STO__IDX_TIME, NULL);
  cairn_err err = ks_exact(cur, best, key, klen, &ok);
  if (err != CAIRN_OK) return err;
  if (best->n == 0) { /* empty store: walk the (absent) time key */
    memcpy(best->key[0], key, klen);
    best->klen[0] = klen;
    best->n = 1;
  }

  const struct {
    sto_field f;
    const char *value;
  } singles[] = {
      {STO_FIELD_POD, q->pod},
      {STO_FIELD_CONTAINER, q->container},
      {STO_FIELD_NAMESPACE, q->kube_namespace},
      {STO_FIELD_NODE, q->node},
  };
  for (size_t i = 0; i < sizeof(singles) / sizeof(singles[0]); i++) {
    if (!want(singles[i].value)) continue;
    ok = true;
    cand->name = sto__fields[singles[i].f].name;
    klen = sto__idx_key_str(key, sto__fields[singles[i].f].kind, singles[i].value);
    if ((err = ks_exact(cur, cand, key, klen, &ok)) != CAIRN_OK) return err;
    keep_smaller(&best, &cand, ok);
  }
  bool attrs_ok = false;
  if ((err = attr_idx_covers(env, txn, &attrs_ok)) != CAIRN_OK) return err;
  for (int f = 0; f < STO_FIELD_COUNT_; f++) {
    const sto_terms *ts = &q->terms[f];
    if (!ts->n || (sto__fields[f].attr && !attrs_ok)) continue;
    ok = true;
    cand->name = sto__fields[f].name;
    for (size_t i = 0; i < ts->n && ok; i++)
      if ((err = ks_term(cur, cand, sto__fields[f].kind, &ts->v[i], &ok)) != CAIRN_OK) return err;
    keep_smaller(&best, &cand, ok);
  }
  if (q->source > 0) {
    ok = true;
    cand->name = "source";
    klen = sto__idx_key_source(key, (uint32_t)q->source);
    if ((err = ks_exact(cur, cand, key, klen, &ok)) != CAIRN_OK) return err;
    keep_smaller(&best, &cand, ok);
  }
  *out = best;
  return CAIRN_OK;
}

/* ---- the walk ---- */

typedef struct walk_src {
  MDB_cursor *cur;
  MDB_val k, d; /* current entry (d: STO__IDX_DATA bytes) */
  bool live;
} walk_src;

typedef struct scan_ctx {
  sto_env *env;
  MDB_txn *txn;
  const sto_query *q;
  sto_record_cb cb;
  void *ud;
  sto_query_stats *st;
  cairn_arena scratch;
  bool stop;
  MDB_cursor *rcur; /* on records */
  uint64_t rseq;    /* seq under rcur; 0 = not positioned */
} scan_ctx;

/* The stored record seq into *v: a cursor step when seq follows (or, newest
 * first, precedes) the last one read, as in a store written in time order;
 * a lookup otherwise. MDB_NOTFOUND when the record is gone. */
static int fetch(scan_ctx *c, uint64_t seq, MDB_val *v) {
  uint8_t kb[8];
  MDB_val k;
  int rc;
  if (c->rseq && (seq == c->rseq + 1 || seq + 1 == c->rseq)) {
    rc = mdb_cursor_get(c->rcur, &k, v, seq > c->rseq ? MDB_NEXT : MDB_PREV);
    if (rc == MDB_SUCCESS && k.mv_size == 8 && sto__be64_get(k.mv_data) == seq) {
      c->rseq = seq;
      return MDB_SUCCESS;
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return rc;
  }
  sto__be64_put(kb, seq);
  k.mv_size = 8;
  k.mv_data = kb;
  rc = mdb_cursor_get(c->rcur, &k, v, MDB_SET_KEY);
  c->rseq = rc == MDB_SUCCESS ? seq : 0;
  return rc;
}

/* One index entry: fetch, check in packed form, decode, filter, call back. */
static cairn_err visit(scan_ctx *c, const MDB_val *d) {
  c->st->examined++;
  MDB_val v;
  int rc = fetch(c, sto__be64_get((const uint8_t *)d->mv_data + 8), &v);
  if (rc == MDB_NOTFOUND) return CAIRN_OK; /* record pruned, entry left behind */
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  /* LMDB fills a page's data from its end down, so with records appended in
   * seq order the next record lies just below this one: ask for it now,
   * while this one is checked (a hint only; prefetching never faults). */
  for (unsigned i = 1; i <= PREFETCH_LINES; i++)
    __builtin_prefetch((const char *)v.mv_data - 64 * i);
  raw_rec raw;
  bool raw_ok = raw_scan(v.mv_data, v.mv_size, &raw);
  if (raw_ok && !match_raw(c->q, raw.time_ns, raw.source, raw.stream, raw.msg, raw.msg_len))
    return CAIRN_OK;
  Cairn__Record *r;
  cairn_err err = unpack(&v, &c->scratch, &r);
  if (err != CAIRN_OK) return err;
  if (raw_ok ? match_rest(c->q, r) : sto_query_match(c->q, r)) {
    c->st->matched++;
    if (!c->cb(r, c->ud)) c->stop = true;
    if (c->q->limit && c->st->matched >= c->q->limit) c->stop = true;
  }
  cairn_arena_reset(&c->scratch);
  return CAIRN_OK;
}

static int64_t entry_time(const MDB_val *d) {
  return sto__time_unbias(sto__be64_get(d->mv_data));
}

/* Is the current entry of s inside [since, until)? Sets s->live. */
static cairn_err src_check(walk_src *s, int rc, const sto_query *q) {
  s->live = false;
  if (rc == MDB_NOTFOUND) return CAIRN_OK;
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  if (s->d.mv_size != STO__IDX_DATA) return CAIRN_E_CORRUPT;
  int64_t t = entry_time(&s->d);
  s->live = t >= q->since_ns && t < q->until_ns;
  return CAIRN_OK;
}

/* Position s at its first entry in walk order. */
static cairn_err src_first(walk_src *s, const uint8_t *key, size_t klen, const sto_query *q) {
  uint8_t bound[STO__IDX_DATA];
  s->k.mv_size = klen;
  s->k.mv_data = (void *)key;
  s->d.mv_size = STO__IDX_DATA;
  s->d.mv_data = bound;
  if (!q->newest_first) {
    sto__idx_data(bound, q->since_ns, 0);
    return src_check(s, mdb_cursor_get(s->cur, &s->k, &s->d, MDB_GET_BOTH_RANGE), q);
  }
  /* first entry >= (until, 0), then step back; none: start at the last */
  sto__idx_data(bound, q->until_ns, 0);
  int rc = mdb_cursor_get(s->cur, &s->k, &s->d, MDB_GET_BOTH_RANGE);
  if (rc == MDB_SUCCESS) {
    rc = mdb_cursor_get(s->cur, &s->k, &s->d, MDB_PREV_DUP);
  } else if (rc == MDB_NOTFOUND) {
    rc = mdb_cursor_get(s->cur, &s->k, &s->d, MDB_SET);
    if (rc == MDB_SUCCESS) rc = mdb_cursor_get(s->cur, &s->k, &s->d, MDB_LAST_DUP);
  }
  return src_check(s, rc, q);
}

static cairn_err src_next(walk_src *s, const sto_query *q) {
  return src_check(
      s, mdb_cursor_get(s->cur, &s->k, &s->d, q->newest_first ? MDB_PREV_DUP : MDB_NEXT_DUP), q);
}

/* Merge the sources in (time, seq) order; an entry that several keys share
 * (one record under two matching values) is visited once. */
static cairn_err walk(scan_ctx *c, walk_src *src, size_t n) {
  const sto_query *q = c->q;
  uint8_t last[STO__IDX_DATA];
  bool have_last = false;
  cairn_err err = CAIRN_OK;
  while (!c->stop) {
    walk_src *pick = NULL;
    for (size_t i = 0; i < n; i++) {
      if (!src[i].live) continue;
      if (!pick) {
        pick = &src[i];
        continue;
      }
      int cmp = memcmp(src[i].d.mv_data, pick->d.mv_data, STO__IDX_DATA);
      if (q->newest_first ? cmp > 0 : cmp < 0) pick = &src[i];
    }
    if (!pick) break;
    if (!have_last || memcmp(last, pick->d.mv_data, STO__IDX_DATA) != 0) {
      memcpy(last, pick->d.mv_data, STO__IDX_DATA);
      have_last = true;
      if ((err = visit(c, &pick->d)) != CAIRN_OK) return err;
    }
    if ((err = src_next(pick, q)) != CAIRN_OK) return err;
  }
  return CAIRN_OK;
}

cairn_err sto_query_run(sto_env *env, const sto_query *q, sto_record_cb cb, void *ud,
                        sto_query_stats *st) {
  sto_query_stats local;
  if (!st) st = &local;
  memset(st, 0, sizeof(*st));
  if (!env || !q || !cb) return CAIRN_E_INVAL;
  for (int f = 0; f < STO_FIELD_COUNT_; f++) {
    if (q->terms[f].n && !q->terms[f].v) return CAIRN_E_INVAL;
    for (size_t i = 0; i < q->terms[f].n; i++)
      if (!q->terms[f].v[i].value) return CAIRN_E_INVAL;
  }
  key_set *ks = malloc(2 * sizeof(*ks));
  walk_src *src = calloc(MERGE_MAX, sizeof(*src));
  if (!ks || !src) {
    free(ks);
    free(src);
    return CAIRN_E_NOMEM;
  }
  scan_ctx c = {.env = env, .q = q, .cb = cb, .ud = ud, .st = st};
  cairn_arena_init(&c.scratch, SCRATCH_BLOCK);
  cairn_err err = sto__rtxn_begin(env, &c.txn);
  if (err != CAIRN_OK) goto out_free;
  err = sto__meta_last_seq(env, c.txn, &st->snapshot_seq);
  if (err != CAIRN_OK) goto out_end;
  MDB_cursor *pcur;
  int rc = mdb_cursor_open(c.txn, env->idx, &pcur);
  if (rc != MDB_SUCCESS) {
    err = sto__err_from_mdb(rc);
    goto out_end;
  }
  key_set *chosen = NULL;
  err = plan(env, c.txn, pcur, q, ks, &chosen);
  mdb_cursor_close(pcur);
  if (err != CAIRN_OK) goto out_end;
  st->index = chosen->name;
  if (q->since_ns >= q->until_ns) goto out_end;

  rc = mdb_cursor_open(c.txn, env->records, &c.rcur);
  if (rc != MDB_SUCCESS) {
    err = sto__err_from_mdb(rc);
    goto out_end;
  }
  size_t opened = 0;
  for (; opened < chosen->n; opened++) {
    rc = mdb_cursor_open(c.txn, env->idx, &src[opened].cur);
    if (rc != MDB_SUCCESS) {
      err = sto__err_from_mdb(rc);
      goto out_close;
    }
    err = src_first(&src[opened], chosen->key[opened], chosen->klen[opened], q);
    if (err != CAIRN_OK) {
      opened++;
      goto out_close;
    }
  }
  err = walk(&c, src, opened);
out_close:
  for (size_t i = 0; i < opened; i++) mdb_cursor_close(src[i].cur);
  mdb_cursor_close(c.rcur);
out_end:
  sto__rtxn_end(env, c.txn);
out_free:
  cairn_arena_fini(&c.scratch);
  free(src);
  free(ks);
  return err;
}

/* ---- index-only reads for stats ---- */

/* Entries of the key under cur (positioned on it) in [since, until). */
static cairn_err count_range(MDB_cursor *cur, MDB_val *k, int64_t since, int64_t until,
                             uint64_t *out) {
  *out = 0;
  int rc;
  if (since == INT64_MIN && until == INT64_MAX) {
    size_t c = 0;
    rc = mdb_cursor_count(cur, &c);
    *out = c;
    return sto__err_from_mdb(rc);
  }
  uint8_t bound[STO__IDX_DATA];
  sto__idx_data(bound, since, 0);
  MDB_val d = {STO__IDX_DATA, bound};
  uint64_t n = 0;
  for (rc = mdb_cursor_get(cur, k, &d, MDB_GET_BOTH_RANGE); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur, k, &d, MDB_NEXT_DUP)) {
    if (d.mv_size != STO__IDX_DATA) return CAIRN_E_CORRUPT;
    if (entry_time(&d) >= until) break;
    n++;
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return sto__err_from_mdb(rc);
  *out = n;
  return CAIRN_OK;
}

cairn_err sto_index_counts(sto_env *env, sto_field f, int64_t since_ns, int64_t until_ns,
                           sto_count_cb cb, void *ud, uint64_t *total) {
  if (total) *total = 0;
  if (!env || !cb || (unsigned)f >= STO_FIELD_COUNT_) return CAIRN_E_INVAL;
  MDB_txn *txn;
  MDB_cursor *cur;
  cairn_err err = sto__rcursor_open(env, env->idx, &txn, &cur);
  if (err != CAIRN_OK) return err;
  int rc;
  bool covers = true;
  if (sto__fields[f].attr && (err = attr_idx_covers(env, txn, &covers)) != CAIRN_OK)
    goto out_close;
  if (!covers) {
    uint64_t last = 0;
    err = sto__meta_last_seq(env, txn, &last);
    if (err == CAIRN_OK && last) err = CAIRN_E_NOTFOUND; /* an empty store has nothing to miss */
    if (err != CAIRN_OK || last) goto out_close;
  }
  if (since_ns >= until_ns) goto out_close;
  uint8_t tkey = STO__IDX_TIME;
  MDB_val k = {1, &tkey}, d;
  if (total) {
    rc = mdb_cursor_get(cur, &k, &d, MDB_SET);
    if (rc == MDB_SUCCESS)
      err = count_range(cur, &k, since_ns, until_ns, total);
    else if (rc != MDB_NOTFOUND)
      err = sto__err_from_mdb(rc);
    if (err != CAIRN_OK) goto out_close;
  }
  uint8_t kind = sto__fields[f].kind;
  k.mv_size = 1;
  k.mv_data = &kind;
  for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_NODUP)) {
    if (k.mv_size < 1 || ((const uint8_t *)k.mv_data)[0] != kind) break;
    uint64_t n = 0;
    if ((err = count_range(cur, &k, since_ns, until_ns, &n)) != CAIRN_OK) goto out_close;
    if (n && !cb((const uint8_t *)k.mv_data + 1, k.mv_size - 1, n, ud)) break;
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = sto__err_from_mdb(rc);
out_close:
  mdb_cursor_close(cur);
  sto__rtxn_end(env, txn);
  return err;
}

cairn_err sto_times_scan(sto_env *env, int64_t since_ns, int64_t until_ns, sto_time_cb cb,
                         void *ud) {
  if (!env || !cb) return CAIRN_E_INVAL;
  if (since_ns >= until_ns) return CAIRN_OK;
  MDB_txn *txn;
  MDB_cursor *cur;
  cairn_err err = sto__rcursor_open(env, env->idx, &txn, &cur);
  if (err != CAIRN_OK) return err;
  int rc;
  uint8_t tkey = STO__IDX_TIME, bound[STO__IDX_DATA];
  sto__idx_data(bound, since_ns, 0);
  MDB_val k = {1, &tkey}, d = {STO__IDX_DATA, bound};
  for (rc = mdb_cursor_get(cur, &k, &d, MDB_GET_BOTH_RANGE); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP)) {
    if (d.mv_size != STO__IDX_DATA) {
      err = CAIRN_E_CORRUPT;
      break;
    }
    int64_t t = entry_time(&d);
    if (t >= until_ns || !cb(t, ud)) break;
  }
  if (err == CAIRN_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = sto__err_from_mdb(rc);
  mdb_cursor_close(cur);
  sto__rtxn_end(env, txn);
  return err;
}
