/* storage/write.c: the write side: the one write txn, record ingest with
 * dedupe, named cursors. Built for the ingest hot path: the txn struct and
 * its pack buffer live in the env and are reused, so storing a record does
 * no malloc; the dedupe high-water mark of the current stream is cached
 * across a run of records and written once per run.
 */
#include <stdio.h>
#include <stdlib.h>
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
  /* Another process (cairn-query recording a local query) may have
   * committed since our last txn: LMDB serialises write txns across
   * processes, so last_seq and the chain head read inside this txn are
   * current; the values cached at our last commit may not be. */
  uint64_t last = 0;
  cairn_err err = sto__meta_last_seq(env, t->txn, &last);
  if (err == CAIRN_OK) err = sto__chain_begin(t);
  if (err != CAIRN_OK) {
    mdb_txn_abort(t->txn);
    t->txn = NULL;
    return err;
  }
  env->last_seq = last;
  t->seq = last;
  t->dead = CAIRN_OK;
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

/* ---- index staging ----
 * The index entries of one sto_wtxn_put_records call are collected here,
 * grouped by key, and written in LMDB key order through one cursor, each
 * key's entries in data order with MDB_APPENDDUP. LMDB then finds the key
 * from the cursor's current page and appends at the end of the key's dup
 * tree, instead of descending both trees from the root (binary searches,
 * dirty-list lookups) for every entry. Entries of a key arrive in seq order,
 * and in time order as long as the lines' times do; a key whose entries are
 * not in order is sorted, and an entry not after the key's last stored dup
 * falls back to a plain put. The result is the same set of entries. */
typedef struct idx_ent {
  uint32_t key; /* index into idx_stage.keys */
  uint8_t data[STO__IDX_DATA];
} idx_ent;

typedef struct idx_key {
  uint32_t off, len; /* bytes in idx_stage.kb */
  uint32_t hash;
  uint32_t count;    /* entries staged for it */
} idx_key;

typedef struct idx_stage {
  uint8_t *kb;          /* distinct keys' bytes */
  size_t kb_len, kb_cap;
  idx_key *keys;
  size_t n_keys, cap_keys;
  uint32_t *slots;      /* open addressing over keys: index + 1, 0 = empty */
  size_t n_slots;       /* power of two */
  idx_ent *ents;
  size_t n_ents, cap_ents;
  uint32_t last[256];   /* per kind byte: index + 1 of the key used last */
  MDB_cursor *rec_cur;  /* records DB, opened by the call's first record (MDB_APPEND
                         * through one cursor: no cursor setup per record) */
} idx_stage;

static void stage_fini(idx_stage *st) {
  if (st->rec_cur) mdb_cursor_close(st->rec_cur);
  free(st->kb);
  free(st->keys);
  free(st->slots);
  free(st->ents);
  memset(st, 0, sizeof(*st));
}

static uint32_t key_hash(const uint8_t *k, size_t n) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ k[i]) * 16777619u;
  return h;
}

static bool stage_rehash(idx_stage *st, size_t n_slots) {
  uint32_t *s = calloc(n_slots, sizeof(*s));
  if (!s) return false;
  for (size_t i = 0; i < st->n_keys; i++) {
    size_t j = st->keys[i].hash & (n_slots - 1);
    while (s[j]) j = (j + 1) & (n_slots - 1);
    s[j] = (uint32_t)i + 1;
  }
  free(st->slots);
  st->slots = s;
  st->n_slots = n_slots;
  return true;
}

/* The index of key k (added when new); UINT32_MAX when out of memory. */
static uint32_t stage_key(idx_stage *st, const uint8_t *k, size_t n) {
  uint32_t l = st->last[k[0]];
  if (l && st->keys[l - 1].len == n && memcmp(st->kb + st->keys[l - 1].off, k, n) == 0)
    return l - 1;
  if ((st->n_keys + 1) * 2 > st->n_slots && !stage_rehash(st, st->n_slots ? st->n_slots * 2 : 64))
    return UINT32_MAX;
  uint32_t h = key_hash(k, n);
  size_t j = h & (st->n_slots - 1);
  for (; st->slots[j]; j = (j + 1) & (st->n_slots - 1)) {
    const idx_key *e = &st->keys[st->slots[j] - 1];
    if (e->hash == h && e->len == n && memcmp(st->kb + e->off, k, n) == 0) {
      st->last[k[0]] = st->slots[j];
      return st->slots[j] - 1;
    }
  }
  if (st->n_keys == st->cap_keys) {
    size_t nc = st->cap_keys ? st->cap_keys * 2 : 32;
    idx_key *nk = realloc(st->keys, nc * sizeof(*nk));
    if (!nk) return UINT32_MAX;
    st->keys = nk;
    st->cap_keys = nc;
  }
  if (st->kb_len + n > st->kb_cap) {
    size_t nc = st->kb_cap ? st->kb_cap * 2 : 4096;
    while (nc < st->kb_len + n) nc *= 2;
    uint8_t *nb = realloc(st->kb, nc);
    if (!nb) return UINT32_MAX;
    st->kb = nb;
    st->kb_cap = nc;
  }
  memcpy(st->kb + st->kb_len, k, n);
  st->keys[st->n_keys] = (idx_key){(uint32_t)st->kb_len, (uint32_t)n, h, 0};
  st->kb_len += n;
  st->slots[j] = (uint32_t)++st->n_keys;
  st->last[k[0]] = (uint32_t)st->n_keys;
  return (uint32_t)st->n_keys - 1;
}

static cairn_err put_idx(idx_stage *st, const uint8_t *key, size_t klen, const uint8_t *data) {
  uint32_t id = stage_key(st, key, klen);
  if (id == UINT32_MAX) return CAIRN_E_NOMEM;
  if (st->n_ents == st->cap_ents) {
    size_t nc = st->cap_ents ? st->cap_ents * 2 : 8192;
    idx_ent *ne = realloc(st->ents, nc * sizeof(*ne));
    if (!ne) return CAIRN_E_NOMEM;
    st->ents = ne;
    st->cap_ents = nc;
  }
  idx_ent *e = &st->ents[st->n_ents++];
  e->key = id;
  memcpy(e->data, data, STO__IDX_DATA);
  st->keys[id].count++;
  return CAIRN_OK;
}

typedef struct key_ref {
  const uint8_t *p;
  uint32_t len, id;
} key_ref;

/* LMDB's default key order: bytes, then the shorter key first. */
static int key_ref_cmp(const void *a, const void *b) {
  const key_ref *x = a, *y = b;
  int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int data_cmp(const void *a, const void *b) { return memcmp(a, b, STO__IDX_DATA); }

/* Write every staged entry (see above) and empty the stage. */
static cairn_err stage_flush(sto_wtxn *t, idx_stage *st) {
  if (st->n_ents == 0) return CAIRN_OK;
  key_ref *order = malloc(st->n_keys * sizeof(*order));
  uint32_t *start = malloc(st->n_keys * sizeof(*start));
  uint8_t (*sorted)[STO__IDX_DATA] = malloc(st->n_ents * sizeof(*sorted)); /* by key */
  cairn_err err = CAIRN_OK;
  MDB_cursor *cur = NULL;
  if (!order || !start || !sorted) {
    err = CAIRN_E_NOMEM;
    goto out;
  }
  for (size_t i = 0; i < st->n_keys; i++)
    order[i] = (key_ref){st->kb + st->keys[i].off, st->keys[i].len, (uint32_t)i};
  qsort(order, st->n_keys, sizeof(*order), key_ref_cmp);
  uint32_t pos = 0;
  for (size_t i = 0; i < st->n_keys; i++) {
    start[order[i].id] = pos;
    pos += st->keys[order[i].id].count;
  }
  for (size_t i = 0; i < st->n_ents; i++)
    memcpy(sorted[start[st->ents[i].key]++], st->ents[i].data, STO__IDX_DATA);
  int rc = mdb_cursor_open(t->txn, t->env->idx, &cur);
  if (rc != MDB_SUCCESS) {
    err = txn_fail(t, rc);
    goto out;
  }
  for (size_t i = 0, b = 0; i < st->n_keys; i++) {
    const key_ref *kr = &order[i];
    size_t e = b + st->keys[kr->id].count;
    for (size_t j = b + 1; j < e; j++) {
      if (memcmp(sorted[j - 1], sorted[j], STO__IDX_DATA) > 0) {
        qsort(sorted + b, e - b, sizeof(*sorted), data_cmp);
        break;
      }
    }
    MDB_val k = {kr->len, (void *)kr->p};
    /* the whole run in one call (MDB_MULTIPLE: the dups are fixed-size and
     * contiguous in sorted[]); on MDB_KEYEXIST (an entry not after the key's
     * last stored dup) v[1].mv_size says how many went in, and the rest
     * follow with plain puts */
    MDB_val v[2] = {{STO__IDX_DATA, sorted[b]}, {e - b, NULL}};
    rc = mdb_cursor_put(cur, &k, v, MDB_MULTIPLE | MDB_APPENDDUP);
    size_t done = e - b;
    if (rc == MDB_KEYEXIST) {
      done = v[1].mv_size;
      rc = MDB_SUCCESS;
    }
    for (size_t j = b + done; j < e && rc == MDB_SUCCESS; j++) {
      MDB_val one = {STO__IDX_DATA, sorted[j]};
      rc = mdb_cursor_put(cur, &k, &one, 0);
    }
    if (rc != MDB_SUCCESS) {
      err = txn_fail(t, rc);
      goto out;
    }
    b = e;
  }
out:
  if (cur) mdb_cursor_close(cur);
  free(order);
  free(start);
  free(sorted);
  st->n_ents = 0;
  for (size_t i = 0; i < st->n_keys; i++) st->keys[i].count = 0;
  return err;
}

/* Index entries of the audit attrs of x (sto__fields), each distinct value
 * of a field once (an event may repeat a key or a record type). */
static cairn_err index_attrs(idx_stage *st, const sto__rec_ref *x, int source,
                             const uint8_t *data) {
  uint8_t key[STO__IDX_KEY_MAX];
  for (int f = STO_FIELD_AUDIT_KEY; f < STO_FIELD_COUNT_; f++) {
    if (sto__fields[f].source != source) continue;
    const uint8_t *v;
    size_t n;
    for (size_t i = 0; sto__ref_field_value(x, (sto_field)f, i, &v, &n); i++) {
      bool seen = false;
      const uint8_t *pv;
      size_t pn;
      for (size_t j = 0; j < i && !seen; j++)
        seen = sto__ref_field_value(x, (sto_field)f, j, &pv, &pn) && pn == n &&
               memcmp(pv, v, n) == 0;
      if (seen) continue;
      size_t klen = sto__idx_key_bytes(key, sto__fields[f].kind, v, n);
      cairn_err err = put_idx(st, key, klen, data);
      if (err != CAIRN_OK) return err;
    }
  }
  return CAIRN_OK;
}

/* The fields index_record reads, from either form of a record. */
typedef struct idx_fields {
  int64_t time_ns;
  uint32_t source;
  pb_str ns, pod, container, node; /* empty: not indexed */
} idx_fields;

static inline pb_str cstr(const char *s) {
  return s ? (pb_str){(const uint8_t *)s, strlen(s)} : (pb_str){NULL, 0};
}

/* Index entries of one stored record (empty values are not indexed): the
 * one index builder of both put paths. */
static cairn_err index_record(idx_stage *st, const idx_fields *f, const sto__rec_ref *x,
                              uint64_t seq) {
  uint8_t key[STO__IDX_KEY_MAX], data[STO__IDX_DATA];
  cairn_err err;
  sto__idx_data(data, f->time_ns, seq);
  size_t klen = sto__idx_key_str(key, STO__IDX_TIME, NULL);
  if ((err = put_idx(st, key, klen, data)) != CAIRN_OK) return err;
  const struct {
    uint8_t kind;
    pb_str value;
  } strs[] = {
      {STO__IDX_NAMESPACE, f->ns},
      {STO__IDX_POD, f->pod},
      {STO__IDX_CONTAINER, f->container},
      {STO__IDX_NODE, f->node},
  };
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
    if (strs[i].value.n == 0) continue;
    klen = sto__idx_key_bytes(key, strs[i].kind, strs[i].value.p, strs[i].value.n);
    if ((err = put_idx(st, key, klen, data)) != CAIRN_OK) return err;
  }
  if (f->source != 0) {
    klen = sto__idx_key_source(key, f->source);
    if ((err = put_idx(st, key, klen, data)) != CAIRN_OK) return err;
  }
  if (f->source == CAIRN__SOURCE__SOURCE_AUDIT || f->source == CAIRN__SOURCE__SOURCE_K8S_AUDIT)
    return index_attrs(st, x, (int)f->source, data);
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

/* Store the packed bytes in t->pack under seq and add them to the chain. */
static cairn_err store_packed(sto_wtxn *t, idx_stage *st, uint64_t seq) {
  uint8_t kb[8];
  sto__be64_put(kb, seq);
  MDB_val k = {8, kb}, v = {t->pack.len, t->pack.ptr};
  int rc = st->rec_cur ? MDB_SUCCESS : mdb_cursor_open(t->txn, t->env->records, &st->rec_cur);
  if (rc == MDB_SUCCESS) rc = mdb_cursor_put(st->rec_cur, &k, &v, MDB_APPEND);
  if (rc == MDB_KEYEXIST) {
    /* meta last_seq is behind the records DB: never written that way */
    t->dead = CAIRN_E_CORRUPT;
    return t->dead;
  }
  if (rc != MDB_SUCCESS) return txn_fail(t, rc);
  cairn_err cerr = sto__chain_add(t, seq, t->pack.ptr, t->pack.len);
  if (cerr != CAIRN_OK) {
    t->dead = cerr; /* stored but not hashed: the txn must not commit */
    return cerr;
  }
  return CAIRN_OK;
}

/* One put call's state: the ingest values, index stage and dedupe cache. */
typedef struct put_ctx {
  const char *instance; /* never NULL */
  const char *identity; /* never NULL */
  const char *node;     /* NULL: keep the record's */
  int64_t ingest_ns;
  idx_stage st;         /* this call's index entries, written before it returns */
  hwm_cache cache;
  uint64_t seq0;        /* t->seq when the call began */
  uint32_t stored, dups;
  bool started;         /* arguments accepted: an error from here on kills the txn */
} put_ctx;

/* Store one record, given as a decoded record r (whose seq, identity,
 * instance_id, ingest_ns and node are set, as the API promises) or as a view
 * v of raw. Bytes stored: raw plus the ingest fields when raw.p, else r
 * packed again. Dedupe, seq, chain leaf and index entries are the same
 * either way. */
static cairn_err put_record(sto_wtxn *t, put_ctx *pc, Cairn__Record *r, const pb_rec_view *v,
                            pb_slice raw) {
  uint64_t stream = v ? v->file_stream : r->file_stream;
  uint64_t end_offset = v ? v->end_offset : r->end_offset;
  if (stream != 0) {
    cairn_err err = hwm_load(t, pc->instance, &pc->cache, stream);
    if (err != CAIRN_OK) return err;
    if (pc->cache.present && end_offset <= pc->cache.hwm) {
      pc->dups++;
      return CAIRN_OK;
    }
    pc->cache.hwm = end_offset;
    pc->cache.present = true;
    pc->cache.dirty = true;
  }
  uint64_t seq = ++t->seq;
  idx_fields f;
  if (r) {
    /* the record fields are char *; the strings stay the caller's */
    r->seq = seq;
    r->identity = (char *)pc->identity;
    r->instance_id = (char *)pc->instance;
    r->ingest_ns = pc->ingest_ns;
    if (pc->node) r->node = (char *)pc->node;
    f = (idx_fields){r->time_ns, (uint32_t)r->source, cstr(r->kube_namespace), cstr(r->pod),
                     cstr(r->container), cstr(r->node)};
  } else {
    f = (idx_fields){v->time_ns, v->source, v->kube_namespace, v->pod, v->container,
                     pc->node ? cstr(pc->node) : v->node};
  }
  cairn_buf_reset(&t->pack);
  cairn_err err;
  if (raw.p) {
    pb_ingest in = {pc->node, pc->identity, pc->instance, pc->ingest_ns, seq};
    err = pb_record_pack_fields(raw.p, raw.len, &in, &t->pack);
  } else {
    err = pb_record_pack(r, &t->pack);
  }
  if (err != CAIRN_OK) return err;
  err = store_packed(t, &pc->st, seq);
  if (err != CAIRN_OK) return err;
  pc->stored++;
  sto__rec_ref x = {r, r ? NULL : v};
  return index_record(&pc->st, &f, &x, seq);
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

/* Start a put call: check the arguments, stamp attr_idx_from. */
static cairn_err put_begin(sto_wtxn *t, const sto_ingest_meta *meta, put_ctx *pc) {
  memset(pc, 0, sizeof(*pc));
  if (!t || !t->txn || !meta) return CAIRN_E_INVAL;
  if (t->dead != CAIRN_OK) return t->dead;
  pc->instance = nz(meta->instance_id);
  if (strlen(pc->instance) > STO__INSTANCE_MAX) return CAIRN_E_INVAL;
  pc->identity = nz(meta->identity);
  pc->node = (meta->node && meta->node[0]) ? meta->node : NULL;
  pc->ingest_ns = meta->ingest_ns;
  pc->seq0 = t->seq;
  pc->started = true;
  return stamp_attr_idx(t);
}

/* End a put call: index entries, dedupe mark and last_seq into the txn.
 * err is the loop's outcome; any error kills the txn. */
static cairn_err put_end(sto_wtxn *t, put_ctx *pc, cairn_err err, uint32_t *stored,
                         uint32_t *dups) {
  if (err == CAIRN_OK) err = stage_flush(t, &pc->st);
  if (err == CAIRN_OK) err = hwm_flush(t, pc->instance, &pc->cache);
  if (err == CAIRN_OK && t->seq != pc->seq0) {
    uint8_t val[8];
    sto__be64_put(val, t->seq);
    MDB_val k = {sizeof(META_LAST_SEQ) - 1, (void *)META_LAST_SEQ}, v = {8, val};
    int rc = mdb_put(t->txn, t->env->meta, &k, &v, 0);
    if (rc != MDB_SUCCESS) err = txn_fail(t, rc);
  }
  stage_fini(&pc->st);
  if (err != CAIRN_OK) {
    /* part of the group may be in the txn: the caller must abort it */
    if (t->dead == CAIRN_OK) t->dead = err;
    return err;
  }
  if (stored) *stored = pc->stored;
  if (dups) *dups = pc->dups;
  return CAIRN_OK;
}

cairn_err sto_wtxn_put_records(sto_wtxn *t, const sto_ingest_meta *meta,
                               Cairn__Record *const *recs, size_t n, uint32_t *stored,
                               uint32_t *dups) {
  return sto_wtxn_put_records_raw(t, meta, recs, NULL, n, stored, dups);
}

cairn_err sto_wtxn_put_records_raw(sto_wtxn *t, const sto_ingest_meta *meta,
                                   Cairn__Record *const *recs, const pb_slice *raws, size_t n,
                                   uint32_t *stored, uint32_t *dups) {
  if (stored) *stored = 0;
  if (dups) *dups = 0;
  if (n && !recs) return CAIRN_E_INVAL;
  put_ctx pc;
  cairn_err err = put_begin(t, meta, &pc);
  if (err != CAIRN_OK && !pc.started) return err;
  for (size_t i = 0; i < n && err == CAIRN_OK; i++)
    err = put_record(t, &pc, recs[i], NULL, raws ? raws[i] : (pb_slice){NULL, 0});
  return put_end(t, &pc, err, stored, dups);
}

cairn_err sto_wtxn_put_items(sto_wtxn *t, const sto_ingest_meta *meta, const pb_batch_item *items,
                             size_t n, uint32_t *stored, uint32_t *dups) {
  if (stored) *stored = 0;
  if (dups) *dups = 0;
  if (n && !items) return CAIRN_E_INVAL;
  put_ctx pc;
  cairn_err err = put_begin(t, meta, &pc);
  if (err != CAIRN_OK && !pc.started) return err;
  for (size_t i = 0; i < n && err == CAIRN_OK; i++) {
    const pb_batch_item *it = &items[i];
    if (it->rec) {
      err = put_record(t, &pc, it->rec, NULL, it->raw);
    } else if (!it->raw.p || !pb_view_parse(it->raw.p, it->raw.len, &t->view)) {
      err = CAIRN_E_INVAL; /* not from pb_batch_decode_items: nothing to fall back on */
    } else {
      err = put_record(t, &pc, NULL, &t->view, it->raw);
    }
  }
  return put_end(t, &pc, err, stored, dups);
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
