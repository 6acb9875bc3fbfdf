/* storage/query.c: the read side: the query planner and index scan, and the
 * ordered scan by seq used by the Kafka forwarder. A query walks one idx key
 * (the most selective equality filter) over its [since, until) dup range in
 * (time, seq) order, fetches each record by seq and re-checks every filter
 * on the record itself, so index value truncation never changes results.
 */
#include <string.h>

#include "storage/internal.h"

#define SCRATCH_BLOCK (16u << 10) /* arena block for one unpacked record */

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

cairn_err sto_scan_after(sto_env *env, uint64_t after_seq, size_t max, sto_record_cb cb,
                         void *ud) {
  if (!env || !cb) return CAIRN_E_INVAL;
  if (after_seq == UINT64_MAX) return CAIRN_OK;
  MDB_txn *txn;
  cairn_err err = sto__rtxn_begin(env, &txn);
  if (err != CAIRN_OK) return err;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, env->records, &cur);
  if (rc != MDB_SUCCESS) {
    err = sto__err_from_mdb(rc);
    goto out_end;
  }
  cairn_arena scratch;
  cairn_arena_init(&scratch, SCRATCH_BLOCK);
  uint8_t kb[8];
  sto__be64_put(kb, after_seq + 1);
  MDB_val k = {8, kb}, v;
  size_t seen = 0;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (max && seen >= max) break;
    Cairn__Record *r;
    err = unpack(&v, &scratch, &r);
    if (err != CAIRN_OK) break;
    seen++;
    bool more = cb(r, ud);
    cairn_arena_reset(&scratch);
    if (!more) break;
  }
  if (err == CAIRN_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND) err = sto__err_from_mdb(rc);
  cairn_arena_fini(&scratch);
  mdb_cursor_close(cur);
out_end:
  sto__rtxn_end(env, txn);
  return err;
}

/* ---- query ---- */

static inline const char *want(const char *s) { return (s && s[0]) ? s : NULL; }

static bool field_eq(const char *field, const char *wanted) {
  return !wanted || strcmp(field ? field : "", wanted) == 0;
}

static bool record_matches(const sto_query *q, const Cairn__Record *r) {
  if (r->time_ns < q->since_ns || r->time_ns >= q->until_ns) return false;
  if (q->source && (int)r->source != q->source) return false;
  if (!field_eq(r->pod, want(q->pod))) return false;
  if (!field_eq(r->container, want(q->container))) return false;
  if (!field_eq(r->kube_namespace, want(q->kube_namespace))) return false;
  if (!field_eq(r->node, want(q->node))) return false;
  const char *g = want(q->grep);
  if (g) {
    size_t gl = strlen(g);
    if (!r->message.data || !memmem(r->message.data, r->message.len, g, gl)) return false;
  }
  return true;
}

/* Pick the idx key to walk: the most selective equality filter. */
static size_t plan(const sto_query *q, uint8_t *key, const char **name) {
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
  for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
    if (!want(order[i].value)) continue;
    *name = order[i].name;
    return sto__idx_key_str(key, order[i].kind, order[i].value);
  }
  if (q->source > 0) {
    *name = "source";
    return sto__idx_key_source(key, (uint32_t)q->source);
  }
  *name = "time";
  return sto__idx_key_str(key, STO__IDX_TIME, NULL);
}

typedef struct scan_ctx {
  sto_env *env;
  MDB_txn *txn;
  const sto_query *q;
  sto_record_cb cb;
  void *ud;
  sto_query_stats *st;
  cairn_arena scratch;
  bool stop;
} scan_ctx;

/* One index entry: fetch, filter, call back. */
static cairn_err visit(scan_ctx *c, const MDB_val *d) {
  c->st->examined++;
  MDB_val k = {8, (uint8_t *)d->mv_data + 8}, v;
  int rc = mdb_get(c->txn, c->env->records, &k, &v);
  if (rc == MDB_NOTFOUND) return CAIRN_OK; /* record pruned, entry left behind */
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  Cairn__Record *r;
  cairn_err err = unpack(&v, &c->scratch, &r);
  if (err != CAIRN_OK) return err;
  if (record_matches(c->q, r)) {
    c->st->matched++;
    if (!c->cb(r, c->ud)) c->stop = true;
    if (c->q->limit && c->st->matched >= c->q->limit) c->stop = true;
  }
  cairn_arena_reset(&c->scratch);
  return CAIRN_OK;
}

static cairn_err scan(scan_ctx *c, MDB_cursor *cur, const uint8_t *key, size_t klen) {
  const sto_query *q = c->q;
  uint8_t bound[STO__IDX_DATA];
  MDB_val k = {klen, (void *)key}, d;
  int rc = mdb_cursor_get(cur, &k, &d, MDB_SET);
  if (rc == MDB_NOTFOUND) return CAIRN_OK;
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  cairn_err err = CAIRN_OK;
  if (!q->newest_first) {
    sto__idx_data(bound, q->since_ns, 0);
    d.mv_size = STO__IDX_DATA;
    d.mv_data = bound;
    rc = mdb_cursor_get(cur, &k, &d, MDB_GET_BOTH_RANGE);
    while (rc == MDB_SUCCESS && !c->stop) {
      if (d.mv_size != STO__IDX_DATA) return CAIRN_E_CORRUPT;
      if (sto__time_unbias(sto__be64_get(d.mv_data)) >= q->until_ns) break;
      if ((err = visit(c, &d)) != CAIRN_OK) return err;
      rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP);
    }
  } else {
    /* first entry >= (until, 0), then step back; none: start at the last */
    sto__idx_data(bound, q->until_ns, 0);
    d.mv_size = STO__IDX_DATA;
    d.mv_data = bound;
    rc = mdb_cursor_get(cur, &k, &d, MDB_GET_BOTH_RANGE);
    if (rc == MDB_SUCCESS) {
      rc = mdb_cursor_get(cur, &k, &d, MDB_PREV_DUP);
    } else if (rc == MDB_NOTFOUND) {
      rc = mdb_cursor_get(cur, &k, &d, MDB_SET);
      if (rc == MDB_SUCCESS) rc = mdb_cursor_get(cur, &k, &d, MDB_LAST_DUP);
    }
    while (rc == MDB_SUCCESS && !c->stop) {
      if (d.mv_size != STO__IDX_DATA) return CAIRN_E_CORRUPT;
      int64_t t = sto__time_unbias(sto__be64_get(d.mv_data));
      if (t < q->since_ns) break;
      if (t < q->until_ns && (err = visit(c, &d)) != CAIRN_OK) return err;
      rc = mdb_cursor_get(cur, &k, &d, MDB_PREV_DUP);
    }
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return sto__err_from_mdb(rc);
  return CAIRN_OK;
}

cairn_err sto_query_run(sto_env *env, const sto_query *q, sto_record_cb cb, void *ud,
                        sto_query_stats *st) {
  sto_query_stats local;
  if (!st) st = &local;
  memset(st, 0, sizeof(*st));
  if (!env || !q || !cb) return CAIRN_E_INVAL;
  uint8_t key[STO__IDX_KEY_MAX];
  size_t klen = plan(q, key, &st->index);
  if (q->since_ns >= q->until_ns) return CAIRN_OK;

  scan_ctx c = {.env = env, .q = q, .cb = cb, .ud = ud, .st = st};
  cairn_err err = sto__rtxn_begin(env, &c.txn);
  if (err != CAIRN_OK) return err;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(c.txn, env->idx, &cur);
  if (rc != MDB_SUCCESS) {
    err = sto__err_from_mdb(rc);
    goto out_end;
  }
  cairn_arena_init(&c.scratch, SCRATCH_BLOCK);
  err = scan(&c, cur, key, klen);
  cairn_arena_fini(&c.scratch);
  mdb_cursor_close(cur);
out_end:
  sto__rtxn_end(env, c.txn);
  return err;
}
