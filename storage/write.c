/* storage/write.c: the write side: the one write txn, record ingest with
 * dedupe, named cursors. Built for the ingest hot path: the txn struct and
 * its pack buffer live in the env and are reused, so storing a record does
 * no malloc; the dedupe high-water mark of the current stream is cached
 * across a run of records and written once per run.
 */
#include <string.h>

#include "storage/internal.h"

static const char META_LAST_SEQ[] = "last_seq";

cairn_err sto_wtxn_begin(sto_env *env, sto_wtxn **out) {
  if (!env || !out) return CAIRN_E_INVAL;
  if (env->read_only || env->wtxn_busy) return CAIRN_E_INVAL;
  sto_wtxn *t = &env->wtxn;
  int rc = mdb_txn_begin(env->mdb, NULL, 0, &t->txn);
  if (rc == MDB_MAP_RESIZED) {
    /* another process grew the map: adopt its size, then retry once */
    pthread_rwlock_wrlock(&env->map_lock);
    rc = mdb_env_set_mapsize(env->mdb, 0);
    pthread_rwlock_unlock(&env->map_lock);
    if (rc == MDB_SUCCESS) rc = mdb_txn_begin(env->mdb, NULL, 0, &t->txn);
  }
  if (rc != MDB_SUCCESS) {
    t->txn = NULL;
    return sto__err_from_mdb(rc);
  }
  t->seq = env->last_seq;
  t->dead = CAIRN_OK;
  sto__chain_begin(t);
  env->wtxn_busy = true;
  *out = t;
  return CAIRN_OK;
}

/* Record an LMDB failure: after any failed write the LMDB txn must be
 * aborted, so later calls on t return the same error. */
static cairn_err txn_fail(sto_wtxn *t, int rc) {
  t->dead = sto__err_from_mdb(rc);
  if (t->dead == CAIRN_E_NOTFOUND) t->dead = CAIRN_E_STORAGE;
  return t->dead;
}

static inline const char *nz(const char *s) { return s ? s : ""; }

static cairn_err put_idx(sto_wtxn *t, const uint8_t *key, size_t klen, const uint8_t *data) {
  MDB_val k = {klen, (void *)key}, v = {STO__IDX_DATA, (void *)data};
  int rc = mdb_put(t->txn, t->env->idx, &k, &v, 0);
  return rc == MDB_SUCCESS ? CAIRN_OK : txn_fail(t, rc);
}

/* Index entries of the audit attrs of r (sto__fields), each distinct value
 * of a field once (an event may repeat a key or a record type). */
static cairn_err index_attrs(sto_wtxn *t, const Cairn__Record *r, const uint8_t *data) {
  uint8_t key[STO__IDX_KEY_MAX];
  for (int f = STO_FIELD_AUDIT_KEY; f < STO_FIELD_COUNT_; f++) {
    if (sto__fields[f].source != (int)r->source) continue;
    const uint8_t *v;
    size_t n;
    for (size_t i = 0; sto_field_value(r, (sto_field)f, i, &v, &n); i++) {
      bool seen = false;
      const uint8_t *pv;
      size_t pn;
      for (size_t j = 0; j < i && !seen; j++)
        seen = sto_field_value(r, (sto_field)f, j, &pv, &pn) && pn == n && memcmp(pv, v, n) == 0;
      if (seen) continue;
      size_t klen = sto__idx_key_bytes(key, sto__fields[f].kind, v, n);
      cairn_err err = put_idx(t, key, klen, data);
      if (err != CAIRN_OK) return err;
    }
  }
  return CAIRN_OK;
}

/* Index entries of one stored record (empty values are not indexed). */
static cairn_err index_record(sto_wtxn *t, const Cairn__Record *r) {
  uint8_t key[STO__IDX_KEY_MAX], data[STO__IDX_DATA];
  cairn_err err;
  sto__idx_data(data, r->time_ns, r->seq);
  size_t klen = sto__idx_key_str(key, STO__IDX_TIME, NULL);
  if ((err = put_idx(t, key, klen, data)) != CAIRN_OK) return err;
  const struct {
    uint8_t kind;
    const char *value;
  } strs[] = {
      {STO__IDX_NAMESPACE, r->kube_namespace},
      {STO__IDX_POD, r->pod},
      {STO__IDX_CONTAINER, r->container},
      {STO__IDX_NODE, r->node},
  };
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
    if (!strs[i].value || !strs[i].value[0]) continue;
    klen = sto__idx_key_str(key, strs[i].kind, strs[i].value);
    if ((err = put_idx(t, key, klen, data)) != CAIRN_OK) return err;
  }
  if (r->source != 0) {
    klen = sto__idx_key_source(key, (uint32_t)r->source);
    if ((err = put_idx(t, key, klen, data)) != CAIRN_OK) return err;
  }
  if (r->source == CAIRN__SOURCE__SOURCE_AUDIT || r->source == CAIRN__SOURCE__SOURCE_K8S_AUDIT)
    return index_attrs(t, r, data);
  return CAIRN_OK;
}

/* Dedupe state of one (instance, stream) while a run of its records is put. */
typedef struct hwm_cache {
  bool valid;      /* stream/hwm loaded */
  bool dirty;      /* hwm raised, not yet written */
  uint64_t stream;
  uint64_t hwm;    /* end_offset high-water mark */
  bool present;    /* a mark exists (else nothing of the stream is stored yet) */
} hwm_cache;

static cairn_err hwm_flush(sto_wtxn *t, const char *instance, hwm_cache *c) {
  if (!c->valid || !c->dirty) return CAIRN_OK;
  uint8_t key[STO__INSTANCE_MAX + 9], val[8];
  size_t klen = sto__dedupe_key(key, instance, c->stream);
  sto__be64_put(val, c->hwm);
  MDB_val k = {klen, key}, v = {8, val};
  int rc = mdb_put(t->txn, t->env->dedupe, &k, &v, 0);
  if (rc != MDB_SUCCESS) return txn_fail(t, rc);
  c->dirty = false;
  return CAIRN_OK;
}

static cairn_err hwm_load(sto_wtxn *t, const char *instance, hwm_cache *c, uint64_t stream) {
  if (c->valid && c->stream == stream) return CAIRN_OK;
  cairn_err err = hwm_flush(t, instance, c);
  if (err != CAIRN_OK) return err;
  uint8_t key[STO__INSTANCE_MAX + 9];
  size_t klen = sto__dedupe_key(key, instance, stream);
  MDB_val k = {klen, key}, v;
  int rc = mdb_get(t->txn, t->env->dedupe, &k, &v);
  if (rc == MDB_NOTFOUND) {
    c->hwm = 0;
    c->present = false;
  } else if (rc != MDB_SUCCESS) {
    return txn_fail(t, rc);
  } else if (v.mv_size != 8) {
    t->dead = CAIRN_E_CORRUPT;
    return t->dead;
  } else {
    c->hwm = sto__be64_get(v.mv_data);
    c->present = true;
  }
  c->valid = true;
  c->dirty = false;
  c->stream = stream;
  return CAIRN_OK;
}

static cairn_err store_record(sto_wtxn *t, Cairn__Record *r) {
  uint8_t kb[8];
  cairn_buf_reset(&t->pack);
  cairn_err err = pb_record_pack(r, &t->pack);
  if (err != CAIRN_OK) return err; /* NOMEM: the txn itself is still usable */
  sto__be64_put(kb, r->seq);
  MDB_val k = {8, kb}, v = {t->pack.len, t->pack.ptr};
  int rc = mdb_put(t->txn, t->env->records, &k, &v, MDB_APPEND);
  if (rc == MDB_KEYEXIST) {
    /* meta last_seq is behind the records DB: never written that way */
    t->dead = CAIRN_E_CORRUPT;
    return t->dead;
  }
  if (rc != MDB_SUCCESS) return txn_fail(t, rc);
  cairn_err cerr = sto__chain_add(t, r->seq, t->pack.ptr, t->pack.len);
  if (cerr != CAIRN_OK) {
    t->dead = cerr; /* stored but not hashed: the txn must not commit */
    return cerr;
  }
  return index_record(t, r);
}

/* Write meta attr_idx_from (the first seq stored with attr index entries)
 * when the store has none yet: a store created by this code gets 1, one made
 * before attr indexes gets the next seq, so the planner knows whether the
 * attr indexes cover every record. One lookup per put call. */
static cairn_err stamp_attr_idx(sto_wtxn *t) {
  static const char name[] = STO__META_ATTR_IDX_FROM;
  MDB_val k = {sizeof(name) - 1, (void *)name}, v;
  int rc = mdb_get(t->txn, t->env->meta, &k, &v);
  if (rc == MDB_SUCCESS) return CAIRN_OK;
  if (rc != MDB_NOTFOUND) return txn_fail(t, rc);
  uint8_t val[8];
  sto__be64_put(val, t->seq + 1);
  v.mv_size = 8;
  v.mv_data = val;
  rc = mdb_put(t->txn, t->env->meta, &k, &v, 0);
  return rc == MDB_SUCCESS ? CAIRN_OK : txn_fail(t, rc);
}

cairn_err sto_wtxn_put_records(sto_wtxn *t, const sto_ingest_meta *meta,
                               Cairn__Record *const *recs, size_t n, uint32_t *stored,
                               uint32_t *dups) {
  if (stored) *stored = 0;
  if (dups) *dups = 0;
  if (!t || !t->txn || !meta || (n && !recs)) return CAIRN_E_INVAL;
  if (t->dead != CAIRN_OK) return t->dead;
  const char *instance = nz(meta->instance_id);
  if (strlen(instance) > STO__INSTANCE_MAX) return CAIRN_E_INVAL;
  /* the record fields are char *; the strings stay the caller's */
  char *identity = (char *)nz(meta->identity);
  char *inst = (char *)instance;
  char *node = (meta->node && meta->node[0]) ? (char *)meta->node : NULL;

  cairn_err err = stamp_attr_idx(t);
  if (err != CAIRN_OK) goto out_kill_txn;
  hwm_cache cache = {0};
  uint32_t n_stored = 0, n_dups = 0;
  uint64_t seq0 = t->seq;
  for (size_t i = 0; i < n; i++) {
    Cairn__Record *r = recs[i];
    if (r->file_stream != 0) {
      err = hwm_load(t, instance, &cache, r->file_stream);
      if (err != CAIRN_OK) goto out_kill_txn;
      if (cache.present && r->end_offset <= cache.hwm) {
        n_dups++;
        continue;
      }
      cache.hwm = r->end_offset;
      cache.present = true;
      cache.dirty = true;
    }
    r->seq = ++t->seq;
    r->identity = identity;
    r->instance_id = inst;
    r->ingest_ns = meta->ingest_ns;
    if (node) r->node = node;
    err = store_record(t, r);
    if (err != CAIRN_OK) goto out_kill_txn;
    n_stored++;
  }
  err = hwm_flush(t, instance, &cache);
  if (err != CAIRN_OK) goto out_kill_txn;
  if (t->seq != seq0) {
    uint8_t val[8];
    sto__be64_put(val, t->seq);
    MDB_val k = {sizeof(META_LAST_SEQ) - 1, (void *)META_LAST_SEQ}, v = {8, val};
    int rc = mdb_put(t->txn, t->env->meta, &k, &v, 0);
    if (rc != MDB_SUCCESS) {
      err = txn_fail(t, rc);
      goto out_kill_txn;
    }
  }
  if (stored) *stored = n_stored;
  if (dups) *dups = n_dups;
  return CAIRN_OK;

out_kill_txn:
  /* part of the group may be in the txn: the caller must abort it */
  if (t->dead == CAIRN_OK) t->dead = err;
  return err;
}

cairn_err sto_wtxn_cursor_set(sto_wtxn *t, const char *name, uint64_t value) {
  if (!t || !t->txn || !name || !*name || strlen(name) > STO_INDEX_VALUE_MAX)
    return CAIRN_E_INVAL;
  if (t->dead != CAIRN_OK) return t->dead;
  uint8_t val[8];
  sto__be64_put(val, value);
  MDB_val k = {strlen(name), (void *)name}, v = {8, val};
  int rc = mdb_put(t->txn, t->env->cursors, &k, &v, 0);
  return rc == MDB_SUCCESS ? CAIRN_OK : txn_fail(t, rc);
}

static void wtxn_release(sto_wtxn *t) {
  t->txn = NULL;
  t->env->wtxn_busy = false;
  /* keep the pack buffer for the next txn unless one record made it huge */
  if (t->pack.cap > (4u << 20)) cairn_buf_fini(&t->pack);
}

cairn_err sto_wtxn_commit(sto_wtxn *t) {
  if (!t || !t->txn) return CAIRN_E_INVAL;
  if (t->dead != CAIRN_OK) {
    cairn_err err = t->dead;
    sto_wtxn_abort(t);
    return err;
  }
  cairn_err cerr = sto__chain_link_put(t); /* the link rides in the same txn */
  if (cerr != CAIRN_OK) {
    sto_wtxn_abort(t);
    return cerr;
  }
  int rc = mdb_txn_commit(t->txn);
  if (rc == MDB_SUCCESS) {
    t->env->last_seq = t->seq;
    sto__chain_committed(t);
  }
  wtxn_release(t);
  return sto__err_from_mdb(rc);
}

void sto_wtxn_abort(sto_wtxn *t) {
  if (!t || !t->txn) return;
  mdb_txn_abort(t->txn);
  wtxn_release(t);
}
