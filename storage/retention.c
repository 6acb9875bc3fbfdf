/* storage/retention.c: hot retention: delete the oldest records (and their
 * index entries) once they are older than a cutoff and at or below a seq
 * bound (the Kafka cursor), keeping the hash chain, checkpoints and dedupe
 * marks.
 *
 * The one design decision: pruning deletes whole chain links, oldest first,
 * each link in ONE txn together with meta "pruned_position" / "pruned_seq",
 * so the store is always either before or after a link's pruning: every
 * record up to pruned_seq is gone, every link up to pruned_position is
 * pruned and no link is half pruned. sto_chain_verify can then demand that
 * no record of a pruned link remains (a half-pruned link would leave records
 * nobody can check, a place to hide a change). A txn takes links while their
 * records fit the budget, but always at least one: a txn's size is bounded
 * by max(budget, the largest link).
 */
#include <string.h>

#include "common/arena.h"
#include "storage/internal.h"

static const char META_PRUNED_POS[] = "pruned_position";
static const char META_PRUNED_SEQ[] = "pruned_seq";

static cairn_err meta_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out) {
  MDB_val k = {strlen(name), (void *)name}, v;
  int rc = mdb_get(txn, dbi, &k, &v);
  *out = 0;
  if (rc == MDB_NOTFOUND) return CAIRN_OK;
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  if (v.mv_size != 8) return CAIRN_E_CORRUPT;
  *out = sto__be64_get(v.mv_data);
  return CAIRN_OK;
}

static cairn_err meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t value) {
  uint8_t b[8];
  sto__be64_put(b, value);
  MDB_val k = {strlen(name), (void *)name}, v = {8, b};
  int rc = mdb_put(txn, dbi, &k, &v, 0);
  return rc == MDB_SUCCESS ? CAIRN_OK : sto__err_from_mdb(rc);
}

cairn_err sto__prune_mark_read(sto_env *env, MDB_txn *txn, sto_prune_mark *out) {
  memset(out, 0, sizeof(*out));
  cairn_err e = meta_u64(txn, env->meta, META_PRUNED_POS, &out->position);
  if (e == CAIRN_OK) e = meta_u64(txn, env->meta, META_PRUNED_SEQ, &out->seq);
  return e;
}

cairn_err sto_prune_mark_get(sto_env *env, sto_prune_mark *out) {
  if (!env || !out) return CAIRN_E_INVAL;
  memset(out, 0, sizeof(*out));
  MDB_txn *txn;
  cairn_err e = sto__rtxn_begin(env, &txn);
  if (e != CAIRN_OK) return e;
  e = sto__prune_mark_read(env, txn, out);
  sto__rtxn_end(env, txn);
  return e;
}

/* One chain link as stored (storage.h: first_seq last_seq commit_ns hash). */
typedef struct plink {
  uint64_t first_seq, last_seq;
  int64_t commit_ns;
} plink;

/* Link pos inside txn: CAIRN_E_NOTFOUND (no such link yet), CAIRN_E_CORRUPT. */
static cairn_err plink_read(sto_env *env, MDB_txn *txn, uint64_t pos, plink *l) {
  uint8_t kb[8];
  sto__be64_put(kb, pos);
  MDB_val k = {8, kb}, v;
  int rc = mdb_get(txn, env->chain, &k, &v);
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  if (v.mv_size != STO__LINK_LEN) return CAIRN_E_CORRUPT;
  const uint8_t *p = v.mv_data;
  l->first_seq = sto__be64_get(p);
  l->last_seq = sto__be64_get(p + 8);
  l->commit_ns = sto__time_unbias(sto__be64_get(p + 16));
  return l->first_seq >= 1 && l->first_seq <= l->last_seq ? CAIRN_OK : CAIRN_E_CORRUPT;
}

/* Delete one idx dup; an entry already gone (a repeated attr value) is fine. */
static cairn_err idx_del(MDB_txn *txn, MDB_dbi idx, const uint8_t *key, size_t klen,
                         const uint8_t *data) {
  MDB_val k = {klen, (void *)key}, v = {STO__IDX_DATA, (void *)data};
  int rc = mdb_del(txn, idx, &k, &v);
  return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? CAIRN_OK : sto__err_from_mdb(rc);
}

cairn_err sto__idx_del_record(sto_env *env, MDB_txn *txn, const Cairn__Record *r) {
  uint8_t key[STO__IDX_KEY_MAX], data[STO__IDX_DATA];
  sto__idx_data(data, r->time_ns, r->seq);
  size_t klen = sto__idx_key_str(key, STO__IDX_TIME, NULL);
  cairn_err e = idx_del(txn, env->idx, key, klen, data);
  const struct {
    uint8_t kind;
    const char *value;
  } strs[] = {
      {STO__IDX_NAMESPACE, r->kube_namespace},
      {STO__IDX_POD, r->pod},
      {STO__IDX_CONTAINER, r->container},
      {STO__IDX_NODE, r->node},
  };
  for (size_t i = 0; e == CAIRN_OK && i < sizeof(strs) / sizeof(strs[0]); i++) {
    if (!strs[i].value || !strs[i].value[0]) continue;
    klen = sto__idx_key_str(key, strs[i].kind, strs[i].value);
    e = idx_del(txn, env->idx, key, klen, data);
  }
  if (e == CAIRN_OK && r->source != 0) {
    klen = sto__idx_key_source(key, (uint32_t)r->source);
    e = idx_del(txn, env->idx, key, klen, data);
  }
  /* attr entries, exactly as write.c indexes them (sto__fields) */
  for (int f = STO_FIELD_AUDIT_KEY; e == CAIRN_OK && f < STO_FIELD_COUNT_; f++) {
    if (sto__fields[f].source != (int)r->source) continue;
    const uint8_t *v;
    size_t n;
    for (size_t i = 0; e == CAIRN_OK && sto_field_value(r, (sto_field)f, i, &v, &n); i++) {
      klen = sto__idx_key_bytes(key, sto__fields[f].kind, v, n);
      e = idx_del(txn, env->idx, key, klen, data);
    }
  }
  return e;
}

/* May link l be pruned? Its commit time bounds every record's ingest time
 * from above (records are stamped before the commit that links them). */
static bool link_expired(const plink *l, int64_t cutoff_ns, uint64_t max_seq) {
  return l->last_seq <= max_seq && l->commit_ns < cutoff_ns;
}

/* Delete records from seq `from` through l->last_seq, with their index
 * entries; mark->seq follows. The records must be contiguous: a missing one
 * or one that does not decode is evidence (verify reports it), so pruning
 * stops there with CAIRN_E_CORRUPT and *bad_seq (the txn is then aborted). */
static cairn_err prune_link_records(sto_env *env, MDB_txn *txn, const plink *l, uint64_t from,
                                    cairn_arena *arena, sto_prune_mark *mark, uint64_t *deleted,
                                    uint64_t *bad_seq) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, env->records, &cur);
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  cairn_err e = CAIRN_OK;
  for (uint64_t s = from; s <= l->last_seq; s++) {
    uint8_t kb[8];
    sto__be64_put(kb, s);
    MDB_val k = {8, kb}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    if (rc == MDB_NOTFOUND) {
      *bad_seq = s;
      e = CAIRN_E_CORRUPT;
      break;
    }
    if (rc != MDB_SUCCESS) {
      e = sto__err_from_mdb(rc);
      break;
    }
    Cairn__Record *r = NULL;
    cairn_arena_reset(arena);
    e = pb_record_unpack(v.mv_data, v.mv_size, arena, &r);
    if (e == CAIRN_OK && r->seq != s) e = CAIRN_E_CORRUPT;
    if (e != CAIRN_OK) {
      if (e != CAIRN_E_NOMEM) {
        *bad_seq = s;
        e = CAIRN_E_CORRUPT;
      }
      break;
    }
    /* the record is decoded into the arena: the page may change now */
    rc = mdb_cursor_del(cur, 0);
    if (rc != MDB_SUCCESS) {
      e = sto__err_from_mdb(rc);
      break;
    }
    e = sto__idx_del_record(env, txn, r);
    if (e != CAIRN_OK) break;
    mark->seq = s;
    (*deleted)++;
  }
  mdb_cursor_close(cur);
  return e;
}

cairn_err sto_prune(sto_env *env, int64_t cutoff_ns, uint64_t max_seq, size_t max_records,
                    sto_prune_result *out) {
  if (!env || !out) return CAIRN_E_INVAL;
  memset(out, 0, sizeof(*out));
  if (!env->has_chain) return CAIRN_E_INVAL;
  if (max_records == 0) max_records = STO_PRUNE_DEFAULT_RECORDS;
  sto_wtxn *t = NULL;
  cairn_err e = sto_wtxn_begin(env, &t);
  if (e != CAIRN_OK) return e;
  cairn_arena arena;
  cairn_arena_init(&arena, 16u << 10);
  sto_prune_mark mark;
  e = sto__prune_mark_read(env, t->txn, &mark);
  out->mark = mark;
  for (uint64_t pos = mark.position + 1; e == CAIRN_OK; pos++) {
    plink l;
    e = plink_read(env, t->txn, pos, &l);
    if (e == CAIRN_E_NOTFOUND) {
      e = CAIRN_OK; /* past the chain head */
      break;
    }
    if (e != CAIRN_OK || !link_expired(&l, cutoff_ns, max_seq)) break;
    /* records before link 1 (a store upgraded from version 1) are never
     * pruned: the chain does not cover them */
    uint64_t from = mark.seq + 1 > l.first_seq ? mark.seq + 1 : l.first_seq;
    if (from <= l.last_seq && out->records > 0 &&
        out->records + (l.last_seq - from + 1) > max_records) {
      out->more = true; /* the next link is due but does not fit this txn */
      break;
    }
    e = prune_link_records(env, t->txn, &l, from, &arena, &mark, &out->records, &out->bad_seq);
    if (e != CAIRN_OK) break;
    mark.position = pos;
    mark.seq = l.last_seq;
    out->links++;
    if (out->records >= max_records) {
      plink n;
      out->more = plink_read(env, t->txn, pos + 1, &n) == CAIRN_OK &&
                  link_expired(&n, cutoff_ns, max_seq);
      break;
    }
  }
  if (e == CAIRN_OK && out->links > 0) {
    e = meta_put_u64(t->txn, env->meta, META_PRUNED_POS, mark.position);
    if (e == CAIRN_OK) e = meta_put_u64(t->txn, env->meta, META_PRUNED_SEQ, mark.seq);
  }
  cairn_arena_fini(&arena);
  if (e != CAIRN_OK || out->links == 0) {
    sto_wtxn_abort(t); /* nothing to keep */
    out->records = out->links = 0;
    if (e != CAIRN_OK) out->more = false;
    return e;
  }
  e = sto_wtxn_commit(t);
  if (e != CAIRN_OK) {
    out->records = out->links = 0;
    out->more = false;
    return e;
  }
  out->mark = mark;
  return CAIRN_OK;
}
