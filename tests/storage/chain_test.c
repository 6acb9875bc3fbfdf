/* tests/storage/chain_test.c: the hash chain of storage/chain.c against a
 * real LMDB in a fresh temp dir: one link per committed txn with records,
 * the documented link formula recomputed independently, aborts and map-full
 * retries leave the chain consistent, reopen continues it, a version 1 store
 * is upgraded (its old records reported as pre-chain), checkpoints round
 * trip and verify with a real Ed25519 key, and the data dir permission rules.
 */
#include <lmdb.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include "tests/storage/sto_test_util.h"

/* Store n container records in one committed txn; message "m<i>". */
static void put_n(sto_env *env, int n, int base) {
  Cairn__Record recs[64];
  Cairn__Record *ptrs[64];
  char msgs[64][32];
  assert_true(n <= 64);
  for (int i = 0; i < n; i++) {
    snprintf(msgs[i], sizeof(msgs[i]), "m%d", base + i);
    rec_fill(&recs[i], 1000 + base + i, "ns", "pod", "c", "node", msgs[i], 0,
             0);
    ptrs[i] = &recs[i];
  }
  assert_int_equal(put_commit(env, "inst", ptrs, (size_t)n, NULL), n);
}

static void verify_ok(sto_env *env, const uint8_t *pub, sto_verify_report *r) {
  assert_int_equal(sto_chain_verify(env, pub, NULL, NULL, r), CAIRN_OK);
  if (r->status != STO_VERIFY_OK)
    fail_msg("verify: %s at %llu: %s", sto_verify_status_name(r->status),
             (unsigned long long)r->position, r->detail);
}

static void be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

/* Open the store's LMDB env directly (the sto_env must be closed). */
static MDB_env *raw_open(const tdir *d) {
  MDB_env *e;
  assert_int_equal(mdb_env_create(&e), 0);
  mdb_env_set_maxdbs(e, 16);
  mdb_env_set_mapsize(e, 1u << 30);
  assert_int_equal(mdb_env_open(e, d->store, 0, 0600), 0);
  return e;
}

static void sha256(const void *p, size_t n, uint8_t *out) {
  unsigned int len = 0;
  assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL), 1);
}

static void chain_has_one_link_per_txn_with_records(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  sto_chain_head h;
  assert_int_equal(sto_chain_head_get(env, &h), CAIRN_OK);
  assert_int_equal(h.position, 0);
  put_n(env, 3, 0);
  put_n(env, 5, 3);
  /* a txn that only moves a cursor adds no link */
  sto_wtxn *t;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  assert_int_equal(sto_wtxn_cursor_set(t, "kafka", 2), CAIRN_OK);
  assert_int_equal(sto_wtxn_commit(t), CAIRN_OK);
  put_n(env, 1, 8);
  assert_int_equal(sto_chain_head_get(env, &h), CAIRN_OK);
  assert_int_equal(h.position, 3);
  assert_int_equal(h.first_seq, 1);
  assert_int_equal(h.last_seq, 9);
  sto_verify_report r;
  verify_ok(env, NULL, &r);
  assert_int_equal(r.links, 3);
  assert_int_equal(r.records, 9);
  assert_int_equal(r.chain_last_seq, 9);
  assert_int_equal(r.unsigned_records, 9);
  assert_false(r.signatures_checked);
  sto_close(env);
}

static void link_matches_the_documented_formula(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  put_n(env, 2, 0);
  sto_chain_head h;
  assert_int_equal(sto_chain_head_get(env, &h), CAIRN_OK);
  sto_close(env);

  MDB_env *e = raw_open(d);
  MDB_txn *txn;
  MDB_dbi recs, chain;
  assert_int_equal(mdb_txn_begin(e, NULL, MDB_RDONLY, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "records", 0, &recs), 0);
  assert_int_equal(mdb_dbi_open(txn, "chain", 0, &chain), 0);
  /* digest = SHA-256(leaf_1 || leaf_2), leaf = SHA-256(seq || len || bytes) */
  uint8_t buf[4096], leaves[64];
  for (uint64_t s = 1; s <= 2; s++) {
    uint8_t kb[8];
    be64(kb, s);
    MDB_val k = {8, kb}, v;
    assert_int_equal(mdb_get(txn, recs, &k, &v), 0);
    assert_true(v.mv_size + 16 <= sizeof(buf));
    be64(buf, s);
    be64(buf + 8, v.mv_size);
    memcpy(buf + 16, v.mv_data, v.mv_size);
    sha256(buf, 16 + v.mv_size, leaves + 32 * (s - 1));
  }
  uint8_t digest[32];
  sha256(leaves, sizeof(leaves), digest);
  uint8_t kb[8];
  be64(kb, 1);
  MDB_val k = {8, kb}, v;
  assert_int_equal(mdb_get(txn, chain, &k, &v), 0);
  assert_int_equal(v.mv_size, 56);
  const uint8_t *lv = v.mv_data;
  assert_int_equal(get_be64(lv), 1);     /* first_seq */
  assert_int_equal(get_be64(lv + 8), 2); /* last_seq */
  /* hash_1 = SHA-256(zeros || 1 || first || last || commit || digest) */
  uint8_t in[96] = {0}, want[32];
  be64(in + 32, 1);
  memcpy(in + 40, lv, 24);
  memcpy(in + 64, digest, 32);
  sha256(in, sizeof(in), want);
  assert_memory_equal(lv + 24, want, 32);
  assert_memory_equal(h.hash, want, 32);
  mdb_txn_abort(txn);
  mdb_env_close(e);
}

static void aborted_txn_leaves_the_chain_unchanged(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  put_n(env, 2, 0);
  Cairn__Record r;
  Cairn__Record *p = &r;
  rec_fill(&r, 5, "ns", "pod", "c", "node", "aborted", 0, 0);
  sto_wtxn *t;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  sto_ingest_meta m = {.instance_id = "inst"};
  uint32_t st = 0, du = 0;
  assert_int_equal(sto_wtxn_put_records(t, &m, &p, 1, &st, &du), CAIRN_OK);
  sto_wtxn_abort(t);
  put_n(env, 2, 2);
  sto_chain_head h;
  assert_int_equal(sto_chain_head_get(env, &h), CAIRN_OK);
  assert_int_equal(h.position, 2);
  assert_int_equal(h.last_seq, 4);
  sto_verify_report rep;
  verify_ok(env, NULL, &rep);
  assert_int_equal(rep.records, 4);
  sto_close(env);
}

static void reopen_continues_the_chain(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  put_n(env, 4, 0);
  sto_close(env);
  env = open_rw(d, 0, 0);
  put_n(env, 4, 4);
  sto_verify_report r;
  verify_ok(env, NULL, &r);
  assert_int_equal(r.links, 2);
  assert_int_equal(r.records, 8);
  sto_close(env);
  env = open_ro(d);
  verify_ok(env, NULL, &r);
  assert_int_equal(r.links, 2);
  sto_close(env);
}

static void map_full_retry_keeps_the_chain_consistent(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 256u << 10, 64u << 20);
  static char big[2000];
  memset(big, 'x', sizeof(big) - 1);
  int grown = 0;
  for (int round = 0; round < 60; round++) {
    Cairn__Record recs[32];
    Cairn__Record *ptrs[32];
    for (int i = 0; i < 32; i++) {
      rec_fill(&recs[i], round * 32 + i, "ns", "pod", "c", "node", big, 0, 0);
      ptrs[i] = &recs[i];
    }
    for (;;) {
      sto_wtxn *t;
      assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
      sto_ingest_meta m = {.instance_id = "inst"};
      uint32_t st = 0, du = 0;
      cairn_err e = sto_wtxn_put_records(t, &m, ptrs, 32, &st, &du);
      if (e == CAIRN_OK)
        e = sto_wtxn_commit(t);
      else
        sto_wtxn_abort(t);
      if (e == CAIRN_OK)
        break;
      assert_int_equal(e, CAIRN_E_MAPFULL);
      assert_int_equal(sto_grow(env), CAIRN_OK);
      grown++;
    }
  }
  assert_true(grown > 0);
  sto_verify_report r;
  verify_ok(env, NULL, &r);
  assert_int_equal(r.links, 60);
  assert_int_equal(r.records, 60 * 32);
  sto_close(env);
}

/* ---- checkpoints ---- */

static void checkpoint_message_has_the_documented_layout(void **state) {
  (void)state;
  sto_checkpoint cp = {
      .position = 0x0102030405060708ull, .last_seq = 9, .time_ns = 0};
  memset(cp.head, 0xab, 32);
  uint8_t msg[STO_CHECKPOINT_MSG_LEN];
  assert_int_equal(sto_checkpoint_message(&cp, msg), 76);
  assert_memory_equal(msg, "cairn-checkpoint-v1", 20); /* with its NUL */
  assert_int_equal(get_be64(msg + 20), 0x0102030405060708ull);
  assert_int_equal(msg[28], 0xab);
  assert_int_equal(get_be64(msg + 60), 9);
  assert_int_equal(get_be64(msg + 68), 1ull << 63); /* time 0, biased */
}

static void
signed_checkpoints_verify_and_count_the_unsigned_tail(void **state) {
  tdir *d = *state;
  uint8_t pub[32], other_pub[32];
  EVP_PKEY *k = test_keygen(pub);
  EVP_PKEY *other = test_keygen(other_pub);
  sto_env *env = open_rw(d, 0, 0);
  put_n(env, 4, 0);
  put_n(env, 3, 4);
  test_sign_head(env, k, pub); /* position 2, seq 7 */
  put_n(env, 5, 7);            /* position 3, unsigned */
  sto_checkpoint last;
  bool found = false;
  assert_int_equal(sto_checkpoint_last(env, &last, &found), CAIRN_OK);
  assert_true(found);
  assert_int_equal(last.position, 2);
  assert_int_equal(last.last_seq, 7);
  assert_memory_equal(last.pubkey, pub, 32);

  sto_verify_report r;
  verify_ok(env, pub, &r);
  assert_true(r.signatures_checked);
  assert_int_equal(r.checkpoints, 1);
  assert_int_equal(r.last_signed_position, 2);
  assert_int_equal(r.last_signed_seq, 7);
  assert_int_equal(r.unsigned_records, 5);

  /* the wrong public key: bad signature at position 2 */
  assert_int_equal(sto_chain_verify(env, other_pub, NULL, NULL, &r), CAIRN_OK);
  assert_int_equal(r.status, STO_VERIFY_BAD_SIGNATURE);
  assert_int_equal(r.position, 2);
  assert_non_null(strstr(r.detail, "not signed by the given public key"));
  sto_close(env);
  EVP_PKEY_free(k);
  EVP_PKEY_free(other);
}

typedef struct progress_seen {
  uint64_t done, total;
  int calls;
} progress_seen;

static void progress_cb(uint64_t done, uint64_t total, void *ud) {
  progress_seen *p = ud;
  assert_true(done >= p->done); /* monotonic */
  p->done = done;
  p->total = total;
  p->calls++;
}

static void progress_reports_every_record_at_the_end(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  for (int i = 0; i < 300; i++)
    put_n(env, 60, i * 60); /* 18,000 records */
  progress_seen p = {0};
  sto_verify_report r;
  assert_int_equal(sto_chain_verify(env, NULL, progress_cb, &p, &r), CAIRN_OK);
  assert_int_equal(r.status, STO_VERIFY_OK);
  assert_true(p.calls >= 3); /* every 8192 records, and once at the end */
  assert_int_equal(p.done, 18000);
  assert_int_equal(p.total, 18000);
  sto_close(env);
}

/* ---- store versions and permissions ---- */

/* Make d's store look like one written by version 1: no chain DBs, version 1.
 */
static void downgrade_to_v1(const tdir *d) {
  MDB_env *e = raw_open(d);
  MDB_txn *txn;
  MDB_dbi chain, cps, meta;
  assert_int_equal(mdb_txn_begin(e, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "chain", 0, &chain), 0);
  assert_int_equal(mdb_dbi_open(txn, "checkpoints", 0, &cps), 0);
  assert_int_equal(mdb_drop(txn, chain, 1), 0);
  assert_int_equal(mdb_drop(txn, cps, 1), 0);
  assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
  uint8_t ver[4] = {0, 0, 0, 1};
  MDB_val k = {7, (void *)"version"}, v = {4, ver};
  assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(e);
}

static void v1_store_read_only_predates_the_chain(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  put_n(env, 6, 0);
  sto_close(env);
  downgrade_to_v1(d);
  env = open_ro(d);
  sto_verify_report r;
  assert_int_equal(sto_chain_verify(env, NULL, NULL, NULL, &r), CAIRN_OK);
  assert_int_equal(r.status, STO_VERIFY_PREDATES);
  assert_int_equal(r.prechain_records, 6);
  assert_non_null(strstr(r.detail, "predates the chain"));
  sto_chain_head h;
  assert_int_equal(sto_chain_head_get(env, &h), CAIRN_OK);
  assert_int_equal(h.position, 0);
  sto_close(env);
}

static void
v1_store_upgraded_chains_new_records_and_counts_old_ones(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  put_n(env, 6, 0);
  sto_close(env);
  downgrade_to_v1(d);
  env = open_rw(d, 0, 0); /* upgrades to version 2; the chain starts now */
  put_n(env, 4, 6);
  sto_verify_report r;
  verify_ok(env, NULL, &r);
  assert_int_equal(r.prechain_records, 6);
  assert_int_equal(r.links, 1);
  assert_int_equal(r.records, 4);
  sto_chain_head h;
  assert_int_equal(sto_chain_head_get(env, &h), CAIRN_OK);
  assert_int_equal(h.first_seq, 7);
  assert_int_equal(h.last_seq, 10);
  sto_close(env);
}

static void data_dir_and_files_are_private(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  sto_close(env);
  struct stat st;
  assert_int_equal(stat(d->store, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  char p[160];
  snprintf(p, sizeof(p), "%s/data.mdb", d->store);
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
}

static void writable_open_refuses_a_group_writable_data_dir(void **state) {
  tdir *d = *state;
  assert_int_equal(mkdir(d->store, 0700), 0);
  assert_int_equal(chmod(d->store, 0770), 0);
  sto_options o = {.no_sync = true};
  sto_env *env = NULL;
  char eb[512];
  assert_int_equal(sto_open(d->store, &o, &env, eb, sizeof(eb)), CAIRN_E_PERM);
  assert_null(env);
  assert_non_null(strstr(eb, "writable by group or others"));
  assert_non_null(strstr(eb, "chmod 700"));
  assert_non_null(strstr(eb, d->store));
  /* read-only opens (cairn-query) are not refused for it */
  assert_int_equal(chmod(d->store, 0700), 0);
  env = open_rw(d, 0, 0);
  sto_close(env);
  assert_int_equal(chmod(d->store, 0775), 0);
  env = open_ro(d);
  sto_close(env);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(chain_has_one_link_per_txn_with_records,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(link_matches_the_documented_formula,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(aborted_txn_leaves_the_chain_unchanged,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(reopen_continues_the_chain, tdir_setup,
                                      tdir_teardown),
      cmocka_unit_test_setup_teardown(map_full_retry_keeps_the_chain_consistent,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test(checkpoint_message_has_the_documented_layout),
      cmocka_unit_test_setup_teardown(
          signed_checkpoints_verify_and_count_the_unsigned_tail, tdir_setup,
          tdir_teardown),
      cmocka_unit_test_setup_teardown(progress_reports_every_record_at_the_end,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(v1_store_read_only_predates_the_chain,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(
          v1_store_upgraded_chains_new_records_and_counts_old_ones, tdir_setup,
          tdir_teardown),
      cmocka_unit_test_setup_teardown(data_dir_and_files_are_private,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(
          writable_open_refuses_a_group_writable_data_dir, tdir_setup,
          tdir_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
