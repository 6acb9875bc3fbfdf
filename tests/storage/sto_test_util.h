/* tests/storage/sto_test_util.h: helpers shared by the storage tests: a fresh
 * mkdtemp store per test, removed afterwards, and record builders. Header
 * only (static functions) because each *_test.c is its own executable.
 */
#ifndef CAIRN_TESTS_STORAGE_UTIL_H
#define CAIRN_TESTS_STORAGE_UTIL_H

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>
#include <openssl/evp.h>

#include "storage/storage.h"

typedef struct tdir {
  char path[64]; /* mkdtemp dir; the store lives in path/store */
  char store[96];
} tdir;

static inline void tdir_make(tdir *d) {
  snprintf(d->path, sizeof(d->path), "/tmp/cairn-sto-XXXXXX");
  assert_non_null(mkdtemp(d->path));
  snprintf(d->store, sizeof(d->store), "%s/store", d->path);
}

static inline int tdir_rm_cb(const char *p, const struct stat *sb, int flag,
                             struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static inline void tdir_remove(tdir *d) {
  nftw(d->path, tdir_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Open d->store read-write with no fsync and a given map (0 = default). */
static inline sto_env *open_rw(const tdir *d, uint64_t map, uint64_t max_map) {
  sto_options o = {.map_size = map, .max_map_size = max_map, .no_sync = true};
  sto_env *env = NULL;
  char eb[256];
  cairn_err err = sto_open(d->store, &o, &env, eb, sizeof(eb));
  if (err != CAIRN_OK)
    fail_msg("sto_open %s: %s %s", d->store, cairn_err_name(err), eb);
  return env;
}

static inline sto_env *open_ro(const tdir *d) {
  sto_options o = {.read_only = true};
  sto_env *env = NULL;
  char eb[256];
  cairn_err err = sto_open(d->store, &o, &env, eb, sizeof(eb));
  if (err != CAIRN_OK)
    fail_msg("sto_open ro %s: %s %s", d->store, cairn_err_name(err), eb);
  return env;
}

/* A container record with borrowed strings (never freed by storage). */
static inline void rec_fill(Cairn__Record *r, int64_t t, const char *ns,
                            const char *pod, const char *container,
                            const char *node, const char *msg, uint64_t stream,
                            uint64_t end_offset) {
  Cairn__Record init = CAIRN__RECORD__INIT;
  *r = init;
  r->time_ns = t;
  r->source = CAIRN__SOURCE__SOURCE_CONTAINER;
  r->stream = CAIRN__LOG_STREAM__LOG_STREAM_STDOUT;
  r->kube_namespace = (char *)ns;
  r->pod = (char *)pod;
  r->container = (char *)container;
  r->node = (char *)node;
  r->message.data = (uint8_t *)msg;
  r->message.len = strlen(msg);
  r->file_stream = stream;
  r->end_offset = end_offset;
  r->format = CAIRN__FORMAT__FORMAT_CRI;
  r->fragments = 1;
}

/* Store recs in one committed txn; returns stored count, checks dups. */
static inline uint32_t put_commit(sto_env *env, const char *instance,
                                  Cairn__Record **recs, size_t n,
                                  uint32_t *dups_out) {
  sto_wtxn *t;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  sto_ingest_meta m = {
      .instance_id = instance, .identity = "spiffe://test", .ingest_ns = 42};
  uint32_t stored = 0, dups = 0;
  assert_int_equal(sto_wtxn_put_records(t, &m, recs, n, &stored, &dups),
                   CAIRN_OK);
  assert_int_equal(sto_wtxn_commit(t), CAIRN_OK);
  assert_int_equal(stored + dups, n);
  if (dups_out)
    *dups_out = dups;
  return stored;
}

/* Collect seqs seen by a scan/query callback. */
typedef struct seq_list {
  uint64_t *v;
  size_t n, cap;
} seq_list;

static inline bool seq_list_cb(const Cairn__Record *r, void *ud) {
  seq_list *l = ud;
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->v = realloc(l->v, l->cap * sizeof(*l->v));
    assert_non_null(l->v);
  }
  l->v[l->n++] = r->seq;
  return true;
}

static inline void seq_list_fini(seq_list *l) {
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
}

/* cmocka fixtures: *state is a fresh tdir, removed afterwards. */
static inline int tdir_setup(void **state) {
  tdir *d = malloc(sizeof(*d));
  assert_non_null(d);
  tdir_make(d);
  *state = d;
  return 0;
}

static inline int tdir_teardown(void **state) {
  tdir_remove(*state);
  free(*state);
  return 0;
}

/* Run fn on the store's raw LMDB env in one write txn, with the sto_env
 * closed: how tests tamper with a store behind storage's back. */
typedef void (*test_raw_fn)(MDB_txn *txn, MDB_env *e);
static inline void test_raw_write(const tdir *d, test_raw_fn fn) {
  MDB_env *e;
  assert_int_equal(mdb_env_create(&e), 0);
  mdb_env_set_maxdbs(e, 16);
  mdb_env_set_mapsize(e, 1u << 30);
  assert_int_equal(mdb_env_open(e, d->store, 0, 0600), 0);
  MDB_txn *txn;
  assert_int_equal(mdb_txn_begin(e, NULL, 0, &txn), 0);
  fn(txn, e);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(e);
}

/* A fresh Ed25519 key; pub gets its 32-byte public key. */
static inline EVP_PKEY *test_keygen(uint8_t *pub) {
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  assert_non_null(k);
  size_t n = 32;
  assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &n), 1);
  return k;
}

/* Sign the current chain head with k (as the aggregator's signer does) and
 * store the checkpoint in its own write txn. */
static inline void test_sign_head(sto_env *env, EVP_PKEY *k,
                                  const uint8_t *pub) {
  sto_chain_head h;
  assert_int_equal(sto_chain_head_get(env, &h), CAIRN_OK);
  sto_checkpoint cp = {
      .position = h.position, .last_seq = h.last_seq, .time_ns = 77};
  memcpy(cp.head, h.hash, 32);
  memcpy(cp.pubkey, pub, 32);
  uint8_t msg[STO_CHECKPOINT_MSG_LEN];
  size_t mlen = sto_checkpoint_message(&cp, msg);
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  size_t slen = 64;
  assert_int_equal(EVP_DigestSignInit(c, NULL, NULL, NULL, k), 1);
  assert_int_equal(EVP_DigestSign(c, cp.sig, &slen, msg, mlen), 1);
  EVP_MD_CTX_free(c);
  sto_wtxn *t;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  assert_int_equal(sto_wtxn_checkpoint_put(t, &cp), CAIRN_OK);
  assert_int_equal(sto_wtxn_commit(t), CAIRN_OK);
}

#endif
