/* storage/chain.c: the tamper-evident hash chain over stored records, signed
 * checkpoints, and the verifier that walks both (layout in storage.h).
 *
 * The one design decision: a link is written by sto_wtxn_commit in the SAME
 * LMDB txn as the records it covers, and the record digest is fed while
 * records are packed (no second pass), so storage and chain can never
 * disagree after a crash and the hot path pays one SHA-256 per record.
 * The link digest hashes per-record leaf hashes, not the records' bytes, so
 * an evidence export can prove one record of a link with the leaves of the
 * others without disclosing their content (query/export.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "storage/internal.h"

#define CP_VERSION 1u
#define CP_LEN (1u + 8u + 8u + STO_HASH_LEN + STO_PUBKEY_LEN + STO_SIG_LEN)
#define PROGRESS_EVERY 8192u

static const char CP_DOMAIN[20] = "cairn-checkpoint-v1"; /* 19 chars + NUL */

/* ---- links ---- */

typedef struct link {
  uint64_t first_seq, last_seq;
  uint64_t commit_biased; /* commit_ns with the sign bit flipped, as stored */
  uint8_t hash[STO_HASH_LEN];
} link;

static void link_encode(const link *l, uint8_t *out) {
  sto__be64_put(out, l->first_seq);
  sto__be64_put(out + 8, l->last_seq);
  sto__be64_put(out + 16, l->commit_biased);
  memcpy(out + 24, l->hash, STO_HASH_LEN);
}

static bool link_decode(const MDB_val *v, link *l) {
  if (v->mv_size != STO__LINK_LEN) return false;
  const uint8_t *p = v->mv_data;
  l->first_seq = sto__be64_get(p);
  l->last_seq = sto__be64_get(p + 8);
  l->commit_biased = sto__be64_get(p + 16);
  memcpy(l->hash, p + 24, STO_HASH_LEN);
  return l->first_seq >= 1 && l->first_seq <= l->last_seq;
}

/* hash_n = SHA-256(prev || n || first || last || commit || digest). */
static cairn_err link_hash(const uint8_t *prev, uint64_t pos, const link *l,
                           const uint8_t *digest, uint8_t *out) {
  uint8_t buf[STO_HASH_LEN + 32 + STO_HASH_LEN];
  memcpy(buf, prev, STO_HASH_LEN);
  sto__be64_put(buf + 32, pos);
  sto__be64_put(buf + 40, l->first_seq);
  sto__be64_put(buf + 48, l->last_seq);
  sto__be64_put(buf + 56, l->commit_biased);
  memcpy(buf + 64, digest, STO_HASH_LEN);
  unsigned int n = 0;
  if (EVP_Digest(buf, sizeof(buf), out, &n, EVP_sha256(), NULL) != 1 || n != STO_HASH_LEN)
    return CAIRN_E_NOMEM;
  return CAIRN_OK;
}

/* SHA-256 fetched from the default provider once per process. With the
 * static EVP_sha256() OpenSSL 3 looks the implementation up again in every
 * EVP_DigestInit_ex (~3,000 instructions, as much as hashing a record with
 * SHA-NI); leaf_compute runs once per stored record. */
static EVP_MD *sha256_fetched;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256_fetched = EVP_MD_fetch(NULL, "SHA2-256", NULL); }
static const EVP_MD *sha256_md(void) {
  pthread_once(&sha256_once, sha256_fetch);
  return sha256_fetched ? sha256_fetched : EVP_sha256();
}

/* leaf = SHA-256(seq || length || bytes), computed with the scratch context
 * leaf_md (reinitialised here). */
static bool leaf_compute(EVP_MD_CTX *leaf_md, uint64_t seq, const void *p, size_t n,
                         uint8_t *out) {
  uint8_t hdr[16];
  unsigned int dn = 0;
  sto__be64_put(hdr, seq);
  sto__be64_put(hdr + 8, (uint64_t)n);
  return EVP_DigestInit_ex(leaf_md, sha256_md(), NULL) == 1 &&
         EVP_DigestUpdate(leaf_md, hdr, sizeof(hdr)) == 1 &&
         EVP_DigestUpdate(leaf_md, p, n) == 1 && EVP_DigestFinal_ex(leaf_md, out, &dn) == 1 &&
         dn == STO_HASH_LEN;
}

/* Feed one record into a link digest md: its leaf hash. */
static int digest_record(EVP_MD_CTX *md, EVP_MD_CTX *leaf_md, uint64_t seq, const void *p,
                         size_t n) {
  uint8_t leaf[STO_HASH_LEN];
  return leaf_compute(leaf_md, seq, p, n, leaf) && EVP_DigestUpdate(md, leaf, sizeof(leaf)) == 1;
}

static void key_pos(uint8_t *kb, uint64_t pos) { sto__be64_put(kb, pos); }

/* ---- write side hooks ---- */

cairn_err sto__chain_load(sto_env *env, MDB_txn *txn) {
  MDB_cursor *cur;
  env->chain_pos = 0;
  memset(env->chain_head, 0, sizeof(env->chain_head));
  int rc = mdb_cursor_open(txn, env->chain, &cur);
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  MDB_val k, v;
  rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
  cairn_err err = CAIRN_OK;
  if (rc == MDB_SUCCESS) {
    link l;
    if (k.mv_size != 8 || !link_decode(&v, &l)) {
      err = CAIRN_E_CORRUPT;
    } else {
      env->chain_pos = sto__be64_get(k.mv_data);
      memcpy(env->chain_head, l.hash, STO_HASH_LEN);
    }
  } else if (rc != MDB_NOTFOUND) {
    err = sto__err_from_mdb(rc);
  }
  mdb_cursor_close(cur);
  return err;
}

cairn_err sto__chain_begin(sto_wtxn *t) {
  t->chain_open = false;
  t->chain_wrote = false;
  t->chain_first = 0;
  /* reload the head inside the txn: another process may have appended */
  return sto__chain_load(t->env, t->txn);
}

cairn_err sto__chain_add(sto_wtxn *t, uint64_t seq, const void *p, size_t n) {
  if (!t->chain_open) {
    if (!t->chain_md && !(t->chain_md = EVP_MD_CTX_new())) return CAIRN_E_NOMEM;
    if (!t->leaf_md && !(t->leaf_md = EVP_MD_CTX_new())) return CAIRN_E_NOMEM;
    if (EVP_DigestInit_ex(t->chain_md, EVP_sha256(), NULL) != 1) return CAIRN_E_NOMEM;
    t->chain_open = true;
    t->chain_first = seq;
  }
  return digest_record(t->chain_md, t->leaf_md, seq, p, n) ? CAIRN_OK : CAIRN_E_NOMEM;
}

cairn_err sto__chain_link_put(sto_wtxn *t) {
  if (!t->chain_open) return CAIRN_OK; /* no records in this txn: no link */
  sto_env *env = t->env;
  uint8_t digest[STO_HASH_LEN];
  unsigned int dn = 0;
  if (EVP_DigestFinal_ex(t->chain_md, digest, &dn) != 1 || dn != STO_HASH_LEN)
    return CAIRN_E_NOMEM;
  t->chain_open = false;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
  link l = {.first_seq = t->chain_first, .last_seq = t->seq, .commit_biased = sto__time_bias(now)};
  uint64_t pos = env->chain_pos + 1;
  cairn_err err = link_hash(env->chain_head, pos, &l, digest, l.hash);
  if (err != CAIRN_OK) return err;
  uint8_t kb[8], vb[STO__LINK_LEN];
  key_pos(kb, pos);
  link_encode(&l, vb);
  MDB_val k = {8, kb}, v = {sizeof(vb), vb};
  int rc = mdb_put(t->txn, env->chain, &k, &v, MDB_APPEND);
  if (rc != MDB_SUCCESS) return rc == MDB_KEYEXIST ? CAIRN_E_CORRUPT : sto__err_from_mdb(rc);
  memcpy(t->chain_new, l.hash, STO_HASH_LEN);
  t->chain_wrote = true;
  return CAIRN_OK;
}

void sto__chain_committed(sto_wtxn *t) {
  if (!t->chain_wrote) return;
  t->env->chain_pos++;
  memcpy(t->env->chain_head, t->chain_new, STO_HASH_LEN);
  t->chain_wrote = false;
}

void sto__chain_fini(sto_wtxn *t) {
  EVP_MD_CTX_free(t->chain_md);
  t->chain_md = NULL;
  EVP_MD_CTX_free(t->leaf_md);
  t->leaf_md = NULL;
}

/* ---- reading the head ---- */

cairn_err sto_chain_head_get(sto_env *env, sto_chain_head *out) {
  if (!env || !out) return CAIRN_E_INVAL;
  memset(out, 0, sizeof(*out));
  if (!env->has_chain) return CAIRN_OK;
  MDB_txn *txn;
  MDB_cursor *cur;
  cairn_err err = sto__rcursor_open(env, env->chain, &txn, &cur);
  if (err != CAIRN_OK) return err;
  int rc;
  MDB_val k, v;
  link l;
  rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
  if (rc == MDB_SUCCESS) {
    if (k.mv_size != 8 || !link_decode(&v, &l)) {
      err = CAIRN_E_CORRUPT;
      goto out_close;
    }
    out->position = sto__be64_get(k.mv_data);
    out->last_seq = l.last_seq;
    out->commit_ns = sto__time_unbias(l.commit_biased);
    memcpy(out->hash, l.hash, STO_HASH_LEN);
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    if (rc == MDB_SUCCESS && link_decode(&v, &l)) out->first_seq = l.first_seq;
    else err = CAIRN_E_CORRUPT;
  } else if (rc != MDB_NOTFOUND) {
    err = sto__err_from_mdb(rc);
  }
out_close:
  mdb_cursor_close(cur);
  sto__rtxn_end(env, txn);
  return err;
}

/* ---- checkpoints ---- */

size_t sto_checkpoint_message(const sto_checkpoint *cp, uint8_t *out) {
  memcpy(out, CP_DOMAIN, sizeof(CP_DOMAIN));
  uint8_t *p = out + sizeof(CP_DOMAIN);
  sto__be64_put(p, cp->position);
  memcpy(p + 8, cp->head, STO_HASH_LEN);
  sto__be64_put(p + 8 + STO_HASH_LEN, cp->last_seq);
  sto__be64_put(p + 16 + STO_HASH_LEN, sto__time_bias(cp->time_ns));
  return STO_CHECKPOINT_MSG_LEN;
}

static void cp_encode(const sto_checkpoint *cp, uint8_t *out) {
  out[0] = CP_VERSION;
  sto__be64_put(out + 1, cp->last_seq);
  sto__be64_put(out + 9, sto__time_bias(cp->time_ns));
  memcpy(out + 17, cp->head, STO_HASH_LEN);
  memcpy(out + 17 + STO_HASH_LEN, cp->pubkey, STO_PUBKEY_LEN);
  memcpy(out + 17 + STO_HASH_LEN + STO_PUBKEY_LEN, cp->sig, STO_SIG_LEN);
}

static bool cp_decode(const MDB_val *k, const MDB_val *v, sto_checkpoint *cp) {
  if (k->mv_size != 8 || v->mv_size != CP_LEN) return false;
  const uint8_t *p = v->mv_data;
  if (p[0] != CP_VERSION) return false;
  cp->position = sto__be64_get(k->mv_data);
  cp->last_seq = sto__be64_get(p + 1);
  cp->time_ns = sto__time_unbias(sto__be64_get(p + 9));
  memcpy(cp->head, p + 17, STO_HASH_LEN);
  memcpy(cp->pubkey, p + 17 + STO_HASH_LEN, STO_PUBKEY_LEN);
  memcpy(cp->sig, p + 17 + STO_HASH_LEN + STO_PUBKEY_LEN, STO_SIG_LEN);
  return cp->position >= 1;
}

cairn_err sto_wtxn_checkpoint_put(sto_wtxn *t, const sto_checkpoint *cp) {
  if (!t || !t->txn || !cp || cp->position == 0) return CAIRN_E_INVAL;
  if (t->dead != CAIRN_OK) return t->dead;
  uint8_t kb[8], vb[CP_LEN];
  key_pos(kb, cp->position);
  cp_encode(cp, vb);
  MDB_val k = {8, kb}, v = {sizeof(vb), vb};
  int rc = mdb_put(t->txn, t->env->checkpoints, &k, &v, 0);
  if (rc == MDB_SUCCESS) return CAIRN_OK;
  t->dead = sto__err_from_mdb(rc);
  if (t->dead == CAIRN_E_NOTFOUND) t->dead = CAIRN_E_STORAGE;
  return t->dead;
}

/* The checkpoint found by op (MDB_LAST, or MDB_SET_RANGE from position) in
 * one read txn: the engine of sto_checkpoint_last and sto_checkpoint_from. */
static cairn_err cp_get(sto_env *env, MDB_cursor_op op, uint64_t position, sto_checkpoint *out,
                        bool *found) {
  if (!env || !out || !found) return CAIRN_E_INVAL;
  *found = false;
  memset(out, 0, sizeof(*out));
  if (!env->has_chain) return CAIRN_OK;
  MDB_txn *txn;
  MDB_cursor *cur;
  cairn_err err = sto__rcursor_open(env, env->checkpoints, &txn, &cur);
  if (err != CAIRN_OK) return err;
  uint8_t kb[8];
  key_pos(kb, position);
  MDB_val k = {8, kb}, v;
  int rc = mdb_cursor_get(cur, &k, &v, op);
  if (rc == MDB_SUCCESS) {
    if (cp_decode(&k, &v, out)) *found = true;
    else err = CAIRN_E_CORRUPT;
  } else if (rc != MDB_NOTFOUND) {
    err = sto__err_from_mdb(rc);
  }
  mdb_cursor_close(cur);
  sto__rtxn_end(env, txn);
  return err;
}

cairn_err sto_checkpoint_last(sto_env *env, sto_checkpoint *out, bool *found) {
  return cp_get(env, MDB_LAST, 0, out, found);
}

/* ---- verification ---- */

const char *sto_verify_status_name(sto_verify_status s) {
  switch (s) {
  case STO_VERIFY_OK: return "ok";
  case STO_VERIFY_PREDATES: return "predates-chain";
  case STO_VERIFY_MODIFIED: return "modified";
  case STO_VERIFY_REMOVED: return "removed";
  case STO_VERIFY_INSERTED: return "inserted";
  case STO_VERIFY_REORDERED: return "reordered";
  case STO_VERIFY_LINK_BROKEN: return "link-broken";
  case STO_VERIFY_CHECKPOINT_MISMATCH: return "checkpoint-mismatch";
  case STO_VERIFY_BAD_SIGNATURE: return "bad-signature";
  }
  return "unknown";
}

/* One verification walk. */
typedef struct vctx {
  sto_env *env;
  MDB_txn *txn;
  sto_verify_report *r;
  EVP_MD_CTX *md;        /* owned: link digests */
  EVP_MD_CTX *leaf_md;   /* owned: per-record leaf hashes */
  EVP_PKEY *pkey;        /* owned: the verifier's public key, NULL = no signature checks */
  const uint8_t *pubkey; /* borrowed raw key */
  sto_verify_progress_cb progress;
  void *ud;
  uint64_t done, total;  /* records hashed / in the records DB */
  sto_prune_mark prune;  /* retention mark (retention.c): links up to it lost their records */
} vctx;

/* A records cursor and its current entry (rc = result of the last get). */
typedef struct rwalk {
  MDB_cursor *cur;
  int rc;
  MDB_val k, v;
} rwalk;

static void fail(vctx *c, sto_verify_status st, uint64_t pos, uint64_t seq, const link *l,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Record the first problem (later calls are ignored). */
static void fail(vctx *c, sto_verify_status st, uint64_t pos, uint64_t seq, const link *l,
                 const char *fmt, ...) {
  if (c->r->status != STO_VERIFY_OK) return;
  c->r->status = st;
  c->r->position = pos;
  c->r->seq = seq;
  c->r->first_seq = l ? l->first_seq : 0;
  c->r->last_seq = l ? l->last_seq : 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->r->detail, sizeof(c->r->detail), fmt, ap);
  va_end(ap);
}

static bool rkey(const rwalk *w, uint64_t *seq) {
  if (w->k.mv_size != 8) return false;
  *seq = sto__be64_get(w->k.mv_data);
  return true;
}

/* Outcome of hashing one link's seq range. */
typedef enum range_res { RANGE_OK, RANGE_MISSING, RANGE_EXTRA, RANGE_ERR } range_res;

/* Digest the records first..last at w (positioned at the first record >=
 * first). *at = the missing seq (RANGE_MISSING) or the unexpected key's seq
 * (RANGE_EXTRA, 0 for a malformed key). *err is set on RANGE_ERR. */
static range_res range_digest(vctx *c, rwalk *w, uint64_t first, uint64_t last, bool count,
                              uint8_t *digest, uint64_t *at, cairn_err *err) {
  if (EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
    *err = CAIRN_E_NOMEM;
    return RANGE_ERR;
  }
  for (uint64_t s = first;; s++) {
    uint64_t k = 0;
    if (w->rc != MDB_SUCCESS && w->rc != MDB_NOTFOUND) {
      *err = sto__err_from_mdb(w->rc);
      return RANGE_ERR;
    }
    if (w->rc == MDB_NOTFOUND || (rkey(w, &k) && k > s)) {
      *at = s;
      return RANGE_MISSING;
    }
    if (w->k.mv_size != 8 || k < s) {
      *at = k;
      return RANGE_EXTRA;
    }
    if (!digest_record(c->md, c->leaf_md, s, w->v.mv_data, w->v.mv_size)) {
      *err = CAIRN_E_NOMEM;
      return RANGE_ERR;
    }
    w->rc = mdb_cursor_get(w->cur, &w->k, &w->v, MDB_NEXT);
    if (count && ++c->done % PROGRESS_EVERY == 0 && c->progress)
      c->progress(c->done, c->total, c->ud);
    if (s == last) break;
  }
  unsigned int dn = 0;
  if (EVP_DigestFinal_ex(c->md, digest, &dn) != 1 || dn != STO_HASH_LEN) {
    *err = CAIRN_E_NOMEM;
    return RANGE_ERR;
  }
  return RANGE_OK;
}

/* Open a second records cursor at the first record >= seq. */
static cairn_err rwalk_open(vctx *c, rwalk *w, uint64_t seq) {
  int rc = mdb_cursor_open(c->txn, c->env->records, &w->cur);
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  uint8_t kb[8];
  sto__be64_put(kb, seq);
  w->k.mv_size = 8;
  w->k.mv_data = kb;
  w->rc = mdb_cursor_get(w->cur, &w->k, &w->v, MDB_SET_RANGE);
  return CAIRN_OK;
}

/* Link pos hashed differently than stored: find out why. First a record
 * that does not decode or carries another seq; else decide between altered
 * records and an altered link hash: the stored next link (or the checkpoint
 * at pos) was computed from the original hash, so it agrees with the
 * recomputed one exactly when only the link's stored hash was changed. */
static cairn_err diagnose(vctx *c, uint64_t pos, const link *l, const uint8_t *calc) {
  rwalk w = {0};
  cairn_err err = rwalk_open(c, &w, l->first_seq);
  if (err != CAIRN_OK) return err;
  cairn_arena a;
  cairn_arena_init(&a, 16u << 10);
  for (uint64_t s = l->first_seq; s <= l->last_seq && w.rc == MDB_SUCCESS; s++) {
    Cairn__Record *rec = NULL;
    cairn_err ue = pb_record_unpack(w.v.mv_data, w.v.mv_size, &a, &rec);
    if (ue == CAIRN_E_NOMEM) {
      err = ue;
      goto out_close;
    }
    if (ue != CAIRN_OK) {
      fail(c, STO_VERIFY_MODIFIED, pos, s, l,
           "record seq %llu no longer decodes: its stored bytes were changed",
           (unsigned long long)s);
      goto out_close;
    }
    if (rec->seq != s) {
      fail(c, STO_VERIFY_REORDERED, pos, s, l,
           "record stored at seq %llu is the record of seq %llu: records were moved",
           (unsigned long long)s, (unsigned long long)rec->seq);
      goto out_close;
    }
    cairn_arena_reset(&a);
    w.rc = mdb_cursor_get(w.cur, &w.k, &w.v, MDB_NEXT);
  }
  /* records decode in place: content or link hash? */
  bool link_altered = false;
  MDB_cursor *cc;
  int rc = mdb_cursor_open(c->txn, c->env->chain, &cc);
  if (rc != MDB_SUCCESS) {
    err = sto__err_from_mdb(rc);
    goto out_close;
  }
  uint8_t kb[8];
  key_pos(kb, pos + 1);
  MDB_val k = {8, kb}, v;
  link next;
  if (mdb_cursor_get(cc, &k, &v, MDB_SET_KEY) == MDB_SUCCESS && link_decode(&v, &next)) {
    rwalk w2 = {0};
    err = rwalk_open(c, &w2, next.first_seq);
    if (err == CAIRN_OK) {
      uint8_t digest[STO_HASH_LEN], h[STO_HASH_LEN];
      uint64_t at = 0;
      if (range_digest(c, &w2, next.first_seq, next.last_seq, false, digest, &at, &err) ==
              RANGE_OK &&
          link_hash(calc, pos + 1, &next, digest, h) == CAIRN_OK)
        link_altered = CRYPTO_memcmp(h, next.hash, STO_HASH_LEN) == 0;
      mdb_cursor_close(w2.cur);
    }
  } else {
    key_pos(kb, pos);
    MDB_val ck = {8, kb}, cv;
    sto_checkpoint cp;
    if (mdb_get(c->txn, c->env->checkpoints, &ck, &cv) == MDB_SUCCESS && cp_decode(&ck, &cv, &cp))
      link_altered = CRYPTO_memcmp(cp.head, calc, STO_HASH_LEN) == 0;
  }
  mdb_cursor_close(cc);
  if (err != CAIRN_OK) goto out_close;
  if (link_altered)
    fail(c, STO_VERIFY_LINK_BROKEN, pos, 0, l,
         "the stored hash of link %llu was altered (its records and the next link agree with "
         "the recomputed hash)",
         (unsigned long long)pos);
  else
    fail(c, STO_VERIFY_MODIFIED, pos, 0, l,
         "a record in seq %llu..%llu differs from what link %llu hashed: its content was changed",
         (unsigned long long)l->first_seq, (unsigned long long)l->last_seq,
         (unsigned long long)pos);
out_close:
  cairn_arena_fini(&a);
  mdb_cursor_close(w.cur);
  return err;
}

/* Key fingerprint as the aggregator logs it: hex of the first 8 bytes of
 * SHA-256(raw public key). */
static void fingerprint(const uint8_t *pub, char *out) {
  static const char x[] = "0123456789abcdef";
  uint8_t p[32];
  unsigned int n = 0;
  if (EVP_Digest(pub, STO_PUBKEY_LEN, p, &n, EVP_sha256(), NULL) != 1) memset(p, 0, sizeof(p));
  for (int i = 0; i < 8; i++) {
    out[2 * i] = x[p[i] >> 4];
    out[2 * i + 1] = x[p[i] & 15];
  }
  out[16] = 0;
}

/* Check the checkpoint (if any) at pos against link l (already verified). */
static cairn_err check_checkpoint(vctx *c, uint64_t pos, const link *l) {
  uint8_t kb[8];
  key_pos(kb, pos);
  MDB_val k = {8, kb}, v;
  int rc = mdb_get(c->txn, c->env->checkpoints, &k, &v);
  if (rc == MDB_NOTFOUND) return CAIRN_OK;
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  c->r->checkpoints++;
  sto_checkpoint cp;
  if (!cp_decode(&k, &v, &cp)) {
    fail(c, STO_VERIFY_CHECKPOINT_MISMATCH, pos, 0, l, "checkpoint at position %llu is malformed",
         (unsigned long long)pos);
    return CAIRN_OK;
  }
  if (c->pkey) {
    uint8_t msg[STO_CHECKPOINT_MSG_LEN];
    size_t mlen = sto_checkpoint_message(&cp, msg);
    EVP_MD_CTX *vc = EVP_MD_CTX_new();
    if (!vc) return CAIRN_E_NOMEM;
    int ok = EVP_DigestVerifyInit(vc, NULL, NULL, NULL, c->pkey) == 1 &&
             EVP_DigestVerify(vc, cp.sig, STO_SIG_LEN, msg, mlen) == 1;
    EVP_MD_CTX_free(vc);
    if (!ok) {
      char fp[17];
      fingerprint(cp.pubkey, fp);
      if (CRYPTO_memcmp(cp.pubkey, c->pubkey, STO_PUBKEY_LEN) != 0)
        fail(c, STO_VERIFY_BAD_SIGNATURE, pos, 0, l,
             "checkpoint at position %llu is not signed by the given public key (it names key "
             "%s)",
             (unsigned long long)pos, fp);
      else
        fail(c, STO_VERIFY_BAD_SIGNATURE, pos, 0, l,
             "checkpoint at position %llu: signature does not verify (the checkpoint was "
             "altered)",
             (unsigned long long)pos);
      return CAIRN_OK;
    }
  }
  if (CRYPTO_memcmp(cp.head, l->hash, STO_HASH_LEN) != 0 || cp.last_seq != l->last_seq) {
    fail(c, STO_VERIFY_CHECKPOINT_MISMATCH, pos, 0, l,
         "checkpoint at position %llu signed another chain head (seq %llu): the chain was "
         "rewritten after it was signed",
         (unsigned long long)pos, (unsigned long long)cp.last_seq);
    return CAIRN_OK;
  }
  if (c->pkey) {
    c->r->last_signed_position = pos;
    c->r->last_signed_seq = l->last_seq;
  }
  return CAIRN_OK;
}

/* Checkpoints the link walk did not reach (positions past the chain end or
 * malformed keys): the first one is a problem. */
static cairn_err check_stray_checkpoints(vctx *c, uint64_t last_pos) {
  MDB_cursor *kc;
  int rc = mdb_cursor_open(c->txn, c->env->checkpoints, &kc);
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  MDB_val k, v;
  for (rc = mdb_cursor_get(kc, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(kc, &k, &v, MDB_NEXT)) {
    uint64_t pos = k.mv_size == 8 ? sto__be64_get(k.mv_data) : 0;
    if (pos >= 1 && pos <= last_pos) continue;
    c->r->checkpoints++;
    if (pos == 0)
      fail(c, STO_VERIFY_CHECKPOINT_MISMATCH, 0, 0, NULL, "a checkpoint has a malformed key");
    else
      fail(c, STO_VERIFY_CHECKPOINT_MISMATCH, pos, 0, NULL,
           "checkpoint at position %llu, but the chain ends at position %llu: links (and "
           "their records) after it were removed",
           (unsigned long long)pos, (unsigned long long)last_pos);
    break;
  }
  mdb_cursor_close(kc);
  return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? CAIRN_OK : sto__err_from_mdb(rc);
}

/* Records before link 1 (a store upgraded from version 1 has them; a fresh
 * store has none, since its link 1 starts at seq 1). */
static void skip_prechain(vctx *c, rwalk *w, uint64_t first_seq) {
  uint64_t s;
  while (w->rc == MDB_SUCCESS && rkey(w, &s) && s >= 1 && s < first_seq) {
    c->r->prechain_records++;
    c->done++;
    w->rc = mdb_cursor_get(w->cur, &w->k, &w->v, MDB_NEXT);
  }
}

/* Link pos (l, contiguous with the previous one) lies at or below the prune
 * mark: retention deleted all its records, so its hash cannot be recomputed.
 * None of them may remain (one that does was put back, or the mark was moved
 * to skip a changed link), and the mark's seq must be the last seq of the
 * link at the mark (pruning never leaves a link half done). The link's stored
 * hash becomes prev, so the next link is recomputed from it, and its
 * checkpoint (signature and head) is checked. */
static cairn_err check_pruned_link(vctx *c, rwalk *w, uint64_t pos, const link *l, uint8_t *prev,
                                   uint64_t *prev_last) {
  if (pos == c->prune.position && c->prune.seq != l->last_seq) {
    fail(c, STO_VERIFY_LINK_BROKEN, pos, 0, l,
         "the prune mark (link %llu, seq %llu) does not end at the last seq of link %llu "
         "(%llu): meta pruned_seq or pruned_position was altered",
         (unsigned long long)pos, (unsigned long long)c->prune.seq, (unsigned long long)pos,
         (unsigned long long)l->last_seq);
    return CAIRN_OK;
  }
  uint64_t s;
  if (w->rc == MDB_SUCCESS && rkey(w, &s) && s <= l->last_seq) {
    fail(c, STO_VERIFY_INSERTED, pos, s, l,
         "record seq %llu is stored although retention pruned link %llu (seq %llu..%llu) and "
         "every record up to seq %llu",
         (unsigned long long)s, (unsigned long long)pos, (unsigned long long)l->first_seq,
         (unsigned long long)l->last_seq, (unsigned long long)c->prune.seq);
    return CAIRN_OK;
  }
  if (w->rc != MDB_SUCCESS && w->rc != MDB_NOTFOUND) return sto__err_from_mdb(w->rc);
  c->r->pruned_records += l->last_seq - l->first_seq + 1;
  c->r->pruned_links++;
  c->r->links++;
  c->r->chain_last_seq = l->last_seq;
  memcpy(c->r->chain_head, l->hash, STO_HASH_LEN);
  memcpy(prev, l->hash, STO_HASH_LEN);
  *prev_last = l->last_seq;
  return check_checkpoint(c, pos, l);
}

/* Verify link pos (value v) against the records at w and the previous hash;
 * on success prev becomes its hash. Sets c->r on a problem. */
static cairn_err check_link(vctx *c, rwalk *w, uint64_t pos, const MDB_val *v, uint8_t *prev,
                            uint64_t *prev_last) {
  link l;
  if (!link_decode(v, &l)) {
    fail(c, STO_VERIFY_LINK_BROKEN, pos, 0, NULL, "link %llu is malformed",
         (unsigned long long)pos);
    return CAIRN_OK;
  }
  if (pos == 1) {
    skip_prechain(c, w, l.first_seq);
  } else if (l.first_seq != *prev_last + 1) {
    fail(c, STO_VERIFY_LINK_BROKEN, pos, 0, &l,
         "link %llu covers seq %llu..%llu but the previous link ended at seq %llu",
         (unsigned long long)pos, (unsigned long long)l.first_seq, (unsigned long long)l.last_seq,
         (unsigned long long)*prev_last);
    return CAIRN_OK;
  }
  if (pos <= c->prune.position) return check_pruned_link(c, w, pos, &l, prev, prev_last);
  uint8_t digest[STO_HASH_LEN], calc[STO_HASH_LEN];
  uint64_t at = 0;
  cairn_err err = CAIRN_OK;
  range_res rr = range_digest(c, w, l.first_seq, l.last_seq, true, digest, &at, &err);
  if (rr == RANGE_ERR) return err;
  if (rr == RANGE_MISSING) {
    fail(c, STO_VERIFY_REMOVED, pos, at, &l,
         "record seq %llu is missing: link %llu covers seq %llu..%llu", (unsigned long long)at,
         (unsigned long long)pos, (unsigned long long)l.first_seq, (unsigned long long)l.last_seq);
    return CAIRN_OK;
  }
  if (rr == RANGE_EXTRA) {
    if (at)
      fail(c, STO_VERIFY_INSERTED, pos, at, &l,
           "record seq %llu lies before link %llu (seq %llu..%llu) and no link covers it",
           (unsigned long long)at, (unsigned long long)pos, (unsigned long long)l.first_seq,
           (unsigned long long)l.last_seq);
    else
      fail(c, STO_VERIFY_INSERTED, pos, 0, &l,
           "a record with a malformed key (not 8 bytes, or seq 0) lies before link %llu",
           (unsigned long long)pos);
    return CAIRN_OK;
  }
  err = link_hash(prev, pos, &l, digest, calc);
  if (err != CAIRN_OK) return err;
  if (CRYPTO_memcmp(calc, l.hash, STO_HASH_LEN) != 0) return diagnose(c, pos, &l, calc);
  c->r->links++;
  c->r->records += l.last_seq - l.first_seq + 1;
  c->r->chain_last_seq = l.last_seq;
  memcpy(c->r->chain_head, l.hash, STO_HASH_LEN);
  memcpy(prev, l.hash, STO_HASH_LEN);
  *prev_last = l.last_seq;
  return check_checkpoint(c, pos, &l);
}

/* The walk proper; c->txn is open. */
static cairn_err walk(vctx *c) {
  sto_verify_report *r = c->r;
  MDB_stat st;
  int rc = mdb_stat(c->txn, c->env->records, &st);
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  c->total = st.ms_entries;
  if (!c->env->has_chain) {
    r->prechain_records = c->total;
    if (c->total)
      fail(c, STO_VERIFY_PREDATES, 0, 0, NULL,
           "store predates the chain: its %llu records were stored by a cairn version without "
           "the hash chain and cannot be verified",
           (unsigned long long)c->total);
    return CAIRN_OK;
  }
  cairn_err perr = sto__prune_mark_read(c->env, c->txn, &c->prune);
  if (perr != CAIRN_OK) return perr;
  r->pruned_seq = c->prune.seq;
  MDB_cursor *cc = NULL;
  rwalk w = {0};
  rc = mdb_cursor_open(c->txn, c->env->chain, &cc);
  if (rc == MDB_SUCCESS) rc = mdb_cursor_open(c->txn, c->env->records, &w.cur);
  if (rc != MDB_SUCCESS) {
    if (cc) mdb_cursor_close(cc);
    return sto__err_from_mdb(rc);
  }
  w.rc = mdb_cursor_get(w.cur, &w.k, &w.v, MDB_FIRST);

  cairn_err err = CAIRN_OK;
  uint8_t prev[STO_HASH_LEN] = {0};
  uint64_t pos_expect = 1, prev_last = 0;
  MDB_val k, v;
  int crc;
  for (crc = mdb_cursor_get(cc, &k, &v, MDB_FIRST); crc == MDB_SUCCESS;
       crc = mdb_cursor_get(cc, &k, &v, MDB_NEXT)) {
    uint64_t pos = k.mv_size == 8 ? sto__be64_get(k.mv_data) : 0;
    if (pos != pos_expect) {
      if (pos == 0)
        fail(c, STO_VERIFY_LINK_BROKEN, pos_expect, 0, NULL,
             "link %llu has a malformed key", (unsigned long long)pos_expect);
      else
        fail(c, STO_VERIFY_LINK_BROKEN, pos_expect, 0, NULL,
             "link %llu is missing (the next stored link is %llu)",
             (unsigned long long)pos_expect, (unsigned long long)pos);
      goto out_close;
    }
    err = check_link(c, &w, pos, &v, prev, &prev_last);
    if (err != CAIRN_OK || r->status != STO_VERIFY_OK) goto out_close;
    pos_expect = pos + 1;
  }
  if (crc != MDB_NOTFOUND) {
    err = sto__err_from_mdb(crc);
    goto out_close;
  }
  if (c->prune.position >= pos_expect) {
    fail(c, STO_VERIFY_LINK_BROKEN, c->prune.position, 0, NULL,
         "the prune mark names link %llu but the chain ends at link %llu: meta "
         "pruned_position was altered, or links were removed",
         (unsigned long long)c->prune.position, (unsigned long long)(pos_expect - 1));
    goto out_close;
  }
  if (pos_expect == 1) {
    /* no link at all */
    r->prechain_records = c->total;
    if (c->total) {
      fail(c, STO_VERIFY_PREDATES, 0, 0, NULL,
           "store predates the chain: no link covers its %llu records (stored by a cairn "
           "version without the hash chain, or the chain was deleted)",
           (unsigned long long)c->total);
      goto out_close;
    }
  } else if (w.rc == MDB_SUCCESS) {
    /* records after the last link */
    uint64_t s = 0;
    if (rkey(&w, &s))
      fail(c, STO_VERIFY_INSERTED, 0, s, NULL,
           "record seq %llu is not covered by any link (the chain ends at seq %llu)",
           (unsigned long long)s, (unsigned long long)prev_last);
    else
      fail(c, STO_VERIFY_INSERTED, 0, 0, NULL,
           "a record with a malformed key is not covered by any link (the chain ends at seq "
           "%llu)",
           (unsigned long long)prev_last);
    goto out_close;
  } else if (w.rc != MDB_NOTFOUND) {
    err = sto__err_from_mdb(w.rc);
    goto out_close;
  }
  err = check_stray_checkpoints(c, pos_expect - 1);
out_close:
  mdb_cursor_close(w.cur);
  mdb_cursor_close(cc);
  return err;
}

cairn_err sto_chain_verify(sto_env *env, const uint8_t *pubkey, sto_verify_progress_cb progress,
                           void *ud, sto_verify_report *out) {
  if (!env || !out) return CAIRN_E_INVAL;
  memset(out, 0, sizeof(*out));
  vctx c = {.env = env, .r = out, .pubkey = pubkey, .progress = progress, .ud = ud};
  cairn_err err = CAIRN_OK;
  if (!(c.md = EVP_MD_CTX_new())) return CAIRN_E_NOMEM;
  if (!(c.leaf_md = EVP_MD_CTX_new())) {
    err = CAIRN_E_NOMEM;
    goto out_free_md;
  }
  if (pubkey) {
    c.pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pubkey, STO_PUBKEY_LEN);
    if (!c.pkey) {
      err = CAIRN_E_INVAL;
      goto out_free_md;
    }
    out->signatures_checked = true;
  }
  err = sto__rtxn_begin(env, &c.txn);
  if (err != CAIRN_OK) goto out_free_key;
  err = walk(&c);
  sto__rtxn_end(env, c.txn);
  if (progress && err == CAIRN_OK) progress(c.done, c.total, ud);
  out->unsigned_records = out->chain_last_seq > out->last_signed_seq
                              ? out->chain_last_seq - out->last_signed_seq
                              : 0;
  /* records before link 1 are never signed either */
  if (out->records < out->unsigned_records) out->unsigned_records = out->records;
out_free_key:
  EVP_PKEY_free(c.pkey);
out_free_md:
  EVP_MD_CTX_free(c.leaf_md);
  EVP_MD_CTX_free(c.md);
  return err;
}

/* ---- proofs: reading links, checkpoints and raw records (evidence export) ---- */

cairn_err sto_leaf_hash(uint64_t seq, const uint8_t *p, size_t n, uint8_t *out) {
  if ((!p && n) || !out) return CAIRN_E_INVAL;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md) return CAIRN_E_NOMEM;
  bool ok = leaf_compute(md, seq, p ? p : (const uint8_t *)"", n, out);
  EVP_MD_CTX_free(md);
  return ok ? CAIRN_OK : CAIRN_E_NOMEM;
}

cairn_err sto_link_digest(const uint8_t *leaves, size_t n, uint8_t *out) {
  if ((!leaves && n) || !out || n > SIZE_MAX / STO_HASH_LEN) return CAIRN_E_INVAL;
  unsigned int dn = 0;
  if (EVP_Digest(leaves ? leaves : (const uint8_t *)"", n * STO_HASH_LEN, out, &dn, EVP_sha256(),
                 NULL) != 1 ||
      dn != STO_HASH_LEN)
    return CAIRN_E_NOMEM;
  return CAIRN_OK;
}

cairn_err sto_link_hash(const uint8_t *prev, const sto_link *l, const uint8_t *digest,
                        uint8_t *out) {
  if (!prev || !l || !digest || !out) return CAIRN_E_INVAL;
  link k = {.first_seq = l->first_seq, .last_seq = l->last_seq,
            .commit_biased = sto__time_bias(l->commit_ns)};
  return link_hash(prev, l->position, &k, digest, out);
}

static void link_export(uint64_t pos, const link *l, sto_link *out) {
  out->position = pos;
  out->first_seq = l->first_seq;
  out->last_seq = l->last_seq;
  out->commit_ns = sto__time_unbias(l->commit_biased);
  memcpy(out->hash, l->hash, STO_HASH_LEN);
}

/* Link at pos inside txn: CAIRN_E_NOTFOUND, CAIRN_E_CORRUPT, CAIRN_E_STORAGE. */
static cairn_err link_read(sto_env *env, MDB_txn *txn, uint64_t pos, link *l) {
  uint8_t kb[8];
  key_pos(kb, pos);
  MDB_val k = {8, kb}, v;
  int rc = mdb_get(txn, env->chain, &k, &v);
  if (rc == MDB_NOTFOUND) return CAIRN_E_NOTFOUND;
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  return link_decode(&v, l) ? CAIRN_OK : CAIRN_E_CORRUPT;
}

cairn_err sto_link_get(sto_env *env, uint64_t position, sto_link *out) {
  if (!env || !out || position == 0) return CAIRN_E_INVAL;
  if (!env->has_chain) return CAIRN_E_NOTFOUND;
  MDB_txn *txn;
  cairn_err err = sto__rtxn_begin(env, &txn);
  if (err != CAIRN_OK) return err;
  link l;
  err = link_read(env, txn, position, &l);
  if (err == CAIRN_OK) link_export(position, &l, out);
  sto__rtxn_end(env, txn);
  return err;
}

cairn_err sto_link_find(sto_env *env, uint64_t seq, sto_link *out) {
  if (!env || !out || seq == 0) return CAIRN_E_INVAL;
  if (!env->has_chain) return CAIRN_E_NOTFOUND;
  MDB_txn *txn;
  MDB_cursor *cur;
  cairn_err err = sto__rcursor_open(env, env->chain, &txn, &cur);
  if (err != CAIRN_OK) return err;
  int rc;
  MDB_val k, v;
  rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
  mdb_cursor_close(cur);
  if (rc == MDB_NOTFOUND) {
    err = CAIRN_E_NOTFOUND;
    goto out_end;
  }
  if (rc != MDB_SUCCESS || k.mv_size != 8) {
    err = rc != MDB_SUCCESS ? sto__err_from_mdb(rc) : CAIRN_E_CORRUPT;
    goto out_end;
  }
  /* links are contiguous and ascending in seq: binary search on position */
  uint64_t lo = 1, hi = sto__be64_get(k.mv_data);
  err = CAIRN_E_NOTFOUND;
  while (lo <= hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    link l;
    cairn_err e = link_read(env, txn, mid, &l);
    if (e != CAIRN_OK) {
      err = e == CAIRN_E_NOTFOUND ? CAIRN_E_CORRUPT : e; /* a hole in the chain */
      break;
    }
    if (seq < l.first_seq) {
      hi = mid - 1;
    } else if (seq > l.last_seq) {
      lo = mid + 1;
    } else {
      link_export(mid, &l, out);
      err = CAIRN_OK;
      break;
    }
  }
out_end:
  sto__rtxn_end(env, txn);
  return err;
}

cairn_err sto_checkpoint_from(sto_env *env, uint64_t position, sto_checkpoint *out, bool *found) {
  return cp_get(env, MDB_SET_RANGE, position, out, found);
}

cairn_err sto_records_raw(sto_env *env, uint64_t first_seq, uint64_t last_seq,
                          sto_raw_record_cb cb, void *ud, uint64_t *missing) {
  if (!env || !cb || first_seq == 0 || first_seq > last_seq) return CAIRN_E_INVAL;
  if (missing) *missing = 0;
  MDB_txn *txn;
  MDB_cursor *cur;
  cairn_err err = sto__rcursor_open(env, env->records, &txn, &cur);
  if (err != CAIRN_OK) return err;
  int rc;
  uint8_t kb[8];
  sto__be64_put(kb, first_seq);
  MDB_val k = {8, kb}, v;
  rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  for (uint64_t s = first_seq;; s++) {
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
      err = sto__err_from_mdb(rc);
      break;
    }
    if (rc == MDB_NOTFOUND || k.mv_size != 8 || sto__be64_get(k.mv_data) != s) {
      if (missing) *missing = s;
      err = CAIRN_E_NOTFOUND;
      break;
    }
    if (!cb(s, v.mv_data, v.mv_size, ud) || s == last_seq) break;
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  sto__rtxn_end(env, txn);
  return err;
}
