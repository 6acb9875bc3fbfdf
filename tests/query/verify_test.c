/* tests/query/verify_test.c: `cairn-query verify` against real stores built
 * through storage's write API (5 txns of 20 records: links 1..5 over seq
 * 1..100, a checkpoint of link 5 signed with a real Ed25519 key), then
 * tampered with directly in LMDB (mdb_put / mdb_del into "records", "chain",
 * "checkpoints"), asserting the exact first failure reported: modified,
 * removed, inserted, reordered, link altered, chain rewritten after signing,
 * truncated, checkpoint altered, wrong key; and the OK report with counts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include "tests/query/fixture.h"

#define TXNS 5
#define PER_TXN 20
#define N (TXNS * PER_TXN)

typedef struct vfx {
  char dir[64];
  char data[96];    /* dir/store */
  char pub[128];    /* dir/auditor.pub: the auditor's own copy */
  char otherpub[128]; /* dir/other.pub: an unrelated key */
  EVP_PKEY *key;
} vfx;

static void be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static void write_pub(EVP_PKEY *k, const char *path) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(PEM_write_PUBKEY(f, k), 1);
  assert_int_equal(fclose(f), 0);
}

static void put_txn(sto_env *env, int base, int n) {
  Cairn__Record recs[PER_TXN];
  Cairn__Record *ptrs[PER_TXN];
  char msgs[PER_TXN][32];
  sto_ingest_meta meta = {.instance_id = "inst", .identity = "CN=node-1", .ingest_ns = FX_NOW};
  for (int i = 0; i < n; i++) {
    Cairn__Record init = CAIRN__RECORD__INIT;
    recs[i] = init;
    snprintf(msgs[i], sizeof(msgs[i]), "line-%03d", base + i + 1);
    recs[i].time_ns = FX_T0 + base + i;
    recs[i].source = CAIRN__SOURCE__SOURCE_CONTAINER;
    recs[i].message.data = (uint8_t *)msgs[i];
    recs[i].message.len = strlen(msgs[i]);
    recs[i].pod = (char *)"api-0";
    ptrs[i] = &recs[i];
  }
  sto_wtxn *t;
  uint32_t st = 0, du = 0;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  assert_int_equal(sto_wtxn_put_records(t, &meta, ptrs, (size_t)n, &st, &du), CAIRN_OK);
  assert_int_equal(sto_wtxn_commit(t), CAIRN_OK);
}

static int setup(void **state) {
  vfx *f = calloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-verify-test-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->data, sizeof(f->data), "%s/store", f->dir);
  snprintf(f->pub, sizeof(f->pub), "%s/auditor.pub", f->dir);
  snprintf(f->otherpub, sizeof(f->otherpub), "%s/other.pub", f->dir);
  f->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  assert_non_null(f->key);
  EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  write_pub(f->key, f->pub);
  write_pub(other, f->otherpub);
  EVP_PKEY_free(other);
  sto_options so = {.no_sync = true};
  sto_env *env = NULL;
  char why[256];
  assert_int_equal(sto_open(f->data, &so, &env, why, sizeof(why)), CAIRN_OK);
  for (int i = 0; i < TXNS; i++) put_txn(env, i * PER_TXN, PER_TXN);
  fx_sign_head(env, f->key);
  sto_close(env);
  *state = f;
  return 0;
}

static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
  (void)sb;
  (void)type;
  (void)ftw;
  return remove(p);
}

static int teardown(void **state) {
  vfx *f = *state;
  nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  EVP_PKEY_free(f->key);
  free(f);
  return 0;
}

/* ---- direct LMDB access (the store is closed) ---- */

typedef struct raw {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi records, chain, checkpoints;
} raw;

static void raw_begin(const vfx *f, raw *r) {
  assert_int_equal(mdb_env_create(&r->env), 0);
  mdb_env_set_maxdbs(r->env, 16);
  assert_int_equal(mdb_env_open(r->env, f->data, 0, 0600), 0);
  assert_int_equal(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
  assert_int_equal(mdb_dbi_open(r->txn, "records", 0, &r->records), 0);
  assert_int_equal(mdb_dbi_open(r->txn, "chain", 0, &r->chain), 0);
  assert_int_equal(mdb_dbi_open(r->txn, "checkpoints", 0, &r->checkpoints), 0);
}

static void raw_commit(raw *r) {
  assert_int_equal(mdb_txn_commit(r->txn), 0);
  mdb_env_close(r->env);
}

/* Copy of the value at key u64 BE k in dbi into buf; returns its size. */
static size_t raw_get(raw *r, MDB_dbi dbi, uint64_t key, uint8_t *buf, size_t cap) {
  uint8_t kb[8];
  be64(kb, key);
  MDB_val k = {8, kb}, v;
  assert_int_equal(mdb_get(r->txn, dbi, &k, &v), 0);
  assert_true(v.mv_size <= cap);
  memcpy(buf, v.mv_data, v.mv_size);
  return v.mv_size;
}

static void raw_put(raw *r, MDB_dbi dbi, uint64_t key, const uint8_t *p, size_t n) {
  uint8_t kb[8];
  be64(kb, key);
  MDB_val k = {8, kb}, v = {n, (void *)p};
  assert_int_equal(mdb_put(r->txn, dbi, &k, &v, 0), 0);
}

static void raw_del(raw *r, MDB_dbi dbi, uint64_t key) {
  uint8_t kb[8];
  be64(kb, key);
  MDB_val k = {8, kb};
  assert_int_equal(mdb_del(r->txn, dbi, &k, NULL), 0);
}

/* Change the message "line-042" of record 42 to "LINE-042" (still decodes). */
static void modify_record_42(raw *r) {
  uint8_t buf[1024];
  size_t n = raw_get(r, r->records, 42, buf, sizeof(buf));
  uint8_t *m = memmem(buf, n, "line-042", 8);
  assert_non_null(m);
  memcpy(m, "LINE", 4);
  raw_put(r, r->records, 42, buf, n);
}

/* Recompute links from..last of the chain from the stored records (what a
 * careful attacker without the signing key would do after an edit). */
static void rehash_chain(raw *r, uint64_t from, uint64_t last) {
  uint8_t prev[32] = {0};
  if (from > 1) {
    uint8_t lv[56];
    raw_get(r, r->chain, from - 1, lv, sizeof(lv));
    memcpy(prev, lv + 24, 32);
  }
  for (uint64_t pos = from; pos <= last; pos++) {
    uint8_t lv[56];
    assert_int_equal(raw_get(r, r->chain, pos, lv, sizeof(lv)), 56);
    uint64_t first = 0, lastseq = 0;
    for (int i = 0; i < 8; i++) first = first << 8 | lv[i];
    for (int i = 0; i < 8; i++) lastseq = lastseq << 8 | lv[8 + i];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
    for (uint64_t s = first; s <= lastseq; s++) {
      uint8_t rec[1024], leaf[32];
      size_t n = raw_get(r, r->records, s, rec + 16, sizeof(rec) - 16);
      unsigned int ll = 0;
      be64(rec, s);
      be64(rec + 8, n);
      EVP_Digest(rec, 16 + n, leaf, &ll, EVP_sha256(), NULL); /* leaf of the record */
      EVP_DigestUpdate(md, leaf, 32);
    }
    uint8_t in[96];
    unsigned int dl = 0;
    memcpy(in, prev, 32);
    be64(in + 32, pos);
    memcpy(in + 40, lv, 24);
    assert_int_equal(EVP_DigestFinal_ex(md, in + 64, &dl), 1);
    EVP_MD_CTX_free(md);
    assert_int_equal(EVP_Digest(in, sizeof(in), lv + 24, &dl, EVP_sha256(), NULL), 1);
    raw_put(r, r->chain, pos, lv, sizeof(lv));
    memcpy(prev, lv + 24, 32);
  }
}

/* ---- running verify ---- */

static fx_result verify(const vfx *f, const char *pub) {
  if (pub) return FX_RUN(NULL, "verify", "--data", f->data, "--public-key", pub);
  return FX_RUN(NULL, "verify", "--data", f->data);
}

/* Assert exit 3 and the stderr line "<NAME>: <problem> at <where>: ...detail". */
static void expect_failure(const fx_result *r, const char *name, const char *where,
                           const char *detail) {
  if (r->rc != QRY_EXIT_VERIFY_FAILED || !strstr(r->err, name) || !strstr(r->err, where) ||
      !strstr(r->err, detail))
    fail_msg("want exit 3 with '%s' at '%s' ('%s'); got %d\nstdout: %s\nstderr: %s", name, where,
             detail, r->rc, r->out, r->err);
  assert_non_null(strstr(r->out, "verify: FAILED"));
}

static void untouched_store_verifies_ok_with_counts(void **state) {
  vfx *f = *state;
  fx_result r = verify(f, f->pub);
  if (r.rc != 0) fail_msg("exit %d: %s %s", r.rc, r.out, r.err);
  assert_non_null(strstr(r.out, "verify: OK"));
  assert_non_null(strstr(r.out, "5 links, 100 records (up to seq 100)"));
  assert_non_null(strstr(r.out, "checkpoints:  1, signatures checked with"));
  assert_non_null(strstr(r.out, "last signed:  position 5 (seq 100)"));
  assert_non_null(strstr(r.out, "unsigned:     0 records"));
  assert_int_equal(r.err_len, 0); /* the auditor's own key: no warning */
  fx_result_free(&r);
}

static void records_after_the_last_checkpoint_are_reported_unsigned(void **state) {
  vfx *f = *state;
  sto_options so = {.no_sync = true};
  sto_env *env = NULL;
  assert_int_equal(sto_open(f->data, &so, &env, NULL, 0), CAIRN_OK);
  put_txn(env, N, 7);
  sto_chain_head h;
  assert_int_equal(sto_chain_head_get(env, &h), CAIRN_OK);
  char head_hex[65];
  for (int i = 0; i < 32; i++) snprintf(head_hex + 2 * i, 3, "%02x", h.hash[i]);
  sto_close(env);
  fx_result r = verify(f, f->pub);
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "6 links, 107 records"));
  assert_non_null(strstr(r.out, "unsigned:     7 records after the last signed checkpoint"));
  assert_non_null(strstr(r.out, head_hex));
  fx_result_free(&r);
  r = FX_RUN(NULL, "verify", "--data", f->data, "--public-key", f->pub, "--output", "json");
  assert_int_equal(r.rc, 0);
  json_error_t je;
  json_t *o = json_loads(r.out, 0, &je);
  assert_non_null(o);
  assert_string_equal(json_string_value(json_object_get(o, "status")), "ok");
  assert_int_equal(json_integer_value(json_object_get(o, "links")), 6);
  assert_int_equal(json_integer_value(json_object_get(o, "last_signed_position")), 5);
  assert_int_equal(json_integer_value(json_object_get(o, "unsigned_records")), 7);
  assert_true(json_is_true(json_object_get(o, "signatures_checked")));
  /* the head an auditor can anchor elsewhere is the chain's real head */
  assert_string_equal(json_string_value(json_object_get(o, "chain_head")), head_hex);
  json_decref(o);
  fx_result_free(&r);
}

static void modified_record_is_reported_at_its_link(void **state) {
  vfx *f = *state;
  raw r;
  raw_begin(f, &r);
  modify_record_42(&r);
  raw_commit(&r);
  fx_result res = verify(f, f->pub);
  expect_failure(&res, "MODIFIED", "record modified at chain position 3 (seq 41..60)",
                 "differs from what link 3 hashed");
  assert_non_null(strstr(res.out, "verified:     2 links, 40 records"));
  fx_result_free(&res);
  /* JSON names the same position */
  res = FX_RUN(NULL, "verify", "--data", f->data, "--public-key", f->pub, "--output", "json");
  assert_int_equal(res.rc, QRY_EXIT_VERIFY_FAILED);
  json_error_t je;
  json_t *o = json_loads(res.out, 0, &je);
  assert_non_null(o);
  assert_string_equal(json_string_value(json_object_get(o, "status")), "modified");
  assert_int_equal(json_integer_value(json_object_get(o, "position")), 3);
  assert_int_equal(json_integer_value(json_object_get(o, "first_seq")), 41);
  json_decref(o);
  fx_result_free(&res);
}

static void garbled_record_is_named_by_seq(void **state) {
  vfx *f = *state;
  raw r;
  raw_begin(f, &r);
  uint8_t junk[3] = {0xff, 0xff, 0xff};
  raw_put(&r, r.records, 57, junk, sizeof(junk));
  raw_commit(&r);
  fx_result res = verify(f, f->pub);
  expect_failure(&res, "MODIFIED", "chain position 3 (seq 41..60)",
                 "record seq 57 no longer decodes");
  fx_result_free(&res);
}

static void removed_record_is_reported_by_seq(void **state) {
  vfx *f = *state;
  raw r;
  raw_begin(f, &r);
  raw_del(&r, r.records, 42);
  raw_commit(&r);
  fx_result res = verify(f, f->pub);
  expect_failure(&res, "REMOVED", "record removed at chain position 3 (seq 41..60)",
                 "record seq 42 is missing");
  fx_result_free(&res);
}

static void removed_tail_record_is_reported(void **state) {
  vfx *f = *state;
  raw r;
  raw_begin(f, &r);
  raw_del(&r, r.records, 100);
  raw_commit(&r);
  fx_result res = verify(f, f->pub);
  expect_failure(&res, "REMOVED", "chain position 5 (seq 81..100)", "record seq 100 is missing");
  fx_result_free(&res);
}

static void inserted_record_is_reported_by_seq(void **state) {
  vfx *f = *state;
  raw r;
  raw_begin(f, &r);
  uint8_t buf[1024];
  size_t n = raw_get(&r, r.records, 100, buf, sizeof(buf));
  raw_put(&r, r.records, 101, buf, n);
  raw_commit(&r);
  fx_result res = verify(f, f->pub);
  expect_failure(&res, "INSERTED", "record inserted at seq 101",
                 "record seq 101 is not covered by any link (the chain ends at seq 100)");
  fx_result_free(&res);
}

static void swapped_records_are_reported_reordered(void **state) {
  vfx *f = *state;
  raw r;
  raw_begin(f, &r);
  uint8_t a[1024], b[1024];
  size_t na = raw_get(&r, r.records, 42, a, sizeof(a));
  size_t nb = raw_get(&r, r.records, 43, b, sizeof(b));
  raw_put(&r, r.records, 42, b, nb);
  raw_put(&r, r.records, 43, a, na);
  raw_commit(&r);
  fx_result res = verify(f, f->pub);
  expect_failure(&res, "REORDERED", "records reordered at chain position 3 (seq 41..60)",
                 "record stored at seq 42 is the record of seq 43");
  fx_result_free(&res);
}

static void altered_link_hash_is_told_apart_from_records(void **state) {
  vfx *f = *state;
  raw r;
  raw_begin(f, &r);
  uint8_t lv[56];
  raw_get(&r, r.chain, 2, lv, sizeof(lv));
  lv[30] ^= 1;
  raw_put(&r, r.chain, 2, lv, sizeof(lv));
  raw_commit(&r);
  fx_result res = verify(f, f->pub);
  expect_failure(&res, "LINK_BROKEN", "link hash broken at chain position 2 (seq 21..40)",
                 "the stored hash of link 2 was altered");
  fx_result_free(&res);
}

static void missing_link_is_reported(void **state) {
  vfx *f = *state;
  raw r;
  raw_begin(f, &r);
  raw_del(&r, r.chain, 3);
  raw_commit(&r);
  fx_result res = verify(f, f->pub);
  expect_failure(&res, "LINK_BROKEN", "chain position 3", "link 3 is missing");
  fx_result_free(&res);
}

static void rehashed_chain_fails_against_the_signed_checkpoint(void **state) {
  vfx *f = *state;
  raw r;
  raw_begin(f, &r);
  modify_record_42(&r);
  rehash_chain(&r, 3, 5); /* consistent again, but not what was signed */
  raw_commit(&r);
  fx_result res = verify(f, f->pub);
  expect_failure(&res, "CHECKPOINT_MISMATCH", "chain position 5 (seq 81..100)",
                 "the chain was rewritten after it was signed");
  assert_non_null(strstr(res.out, "verified:     5 links, 100 records"));
  fx_result_free(&res);
}

static void truncated_chain_is_exposed_by_a_later_checkpoint(void **state) {
  vfx *f = *state;
  raw r;
  raw_begin(f, &r);
  for (uint64_t s = 81; s <= 100; s++) raw_del(&r, r.records, s);
  raw_del(&r, r.chain, 5);
  raw_commit(&r);
  fx_result res = verify(f, f->pub);
  expect_failure(&res, "CHECKPOINT_MISMATCH", "chain position 5",
                 "but the chain ends at position 4");
  fx_result_free(&res);
}

static void altered_checkpoint_fails_its_signature(void **state) {
  vfx *f = *state;
  raw r;
  raw_begin(f, &r);
  uint8_t cp[256];
  size_t n = raw_get(&r, r.checkpoints, 5, cp, sizeof(cp));
  cp[20] ^= 0x40; /* a byte of the signed head */
  raw_put(&r, r.checkpoints, 5, cp, n);
  raw_commit(&r);
  fx_result res = verify(f, f->pub);
  expect_failure(&res, "BAD_SIGNATURE", "bad signature at chain position 5",
                 "signature does not verify");
  fx_result_free(&res);
}

static void wrong_public_key_fails(void **state) {
  vfx *f = *state;
  fx_result res = verify(f, f->otherpub);
  expect_failure(&res, "BAD_SIGNATURE", "chain position 5", "not signed by the given public key");
  fx_result_free(&res);
}

static void key_from_the_data_dir_warns(void **state) {
  vfx *f = *state;
  char p[160];
  snprintf(p, sizeof(p), "%s/signing.pub", f->data);
  write_pub(f->key, p);
  fx_result res = verify(f, NULL);
  assert_int_equal(res.rc, 0);
  assert_non_null(strstr(res.err, "proves only that the store agrees with itself"));
  assert_non_null(strstr(res.out, "last signed:  position 5"));
  fx_result_free(&res);
  unlink(p);
  res = verify(f, NULL);
  assert_int_equal(res.rc, 0);
  assert_non_null(strstr(res.err, "signatures are not checked"));
  assert_non_null(strstr(res.out, "signatures NOT checked"));
  assert_non_null(strstr(res.out, "unsigned:     100 records"));
  fx_result_free(&res);
}

static void store_without_chain_predates_it(void **state) {
  vfx *f = *state;
  raw r;
  raw_begin(f, &r);
  assert_int_equal(mdb_drop(r.txn, r.chain, 1), 0);
  assert_int_equal(mdb_drop(r.txn, r.checkpoints, 1), 0);
  raw_commit(&r);
  fx_result res = verify(f, f->pub);
  expect_failure(&res, "PREDATES_CHAIN", "store predates the chain",
                 "its 100 records were stored by a cairn version without the hash chain");
  fx_result_free(&res);
}

static void bad_arguments_exit_2(void **state) {
  vfx *f = *state;
  fx_result res = FX_RUN(NULL, "verify", "--data", f->data, "--public-key", "/nonexistent.pub");
  assert_int_equal(res.rc, QRY_EXIT_USAGE);
  assert_non_null(strstr(res.err, "--public-key /nonexistent.pub: cannot open"));
  fx_result_free(&res);
  res = FX_RUN(NULL, "verify", "--data", f->data, "--public-key", f->data);
  assert_int_equal(res.rc, QRY_EXIT_USAGE);
  fx_result_free(&res);
  char notkey[160];
  snprintf(notkey, sizeof(notkey), "%s/notkey.pem", f->dir);
  FILE *nk = fopen(notkey, "w");
  assert_non_null(nk);
  fputs("hello\n", nk);
  fclose(nk);
  res = FX_RUN(NULL, "verify", "--data", f->data, "--public-key", notkey);
  assert_int_equal(res.rc, QRY_EXIT_USAGE);
  assert_non_null(strstr(res.err, "not a PEM Ed25519 public key"));
  fx_result_free(&res);
  res = FX_RUN(NULL, "verify", "--data", f->data, "--output", "csv");
  assert_int_equal(res.rc, QRY_EXIT_USAGE);
  fx_result_free(&res);
  res = FX_RUN(NULL, "verify", "--data", "/nonexistent/store");
  assert_int_equal(res.rc, QRY_EXIT_USAGE);
  fx_result_free(&res);
  res = FX_RUN(NULL, "verify", "--data", f->data, "--pod", "x");
  assert_int_equal(res.rc, QRY_EXIT_USAGE);
  assert_non_null(strstr(res.err, "--pod does not apply to verify"));
  fx_result_free(&res);
  res = FX_RUN(NULL, "verify", "--help");
  assert_int_equal(res.rc, 0);
  assert_non_null(strstr(res.out, "--public-key FILE"));
  fx_result_free(&res);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(untouched_store_verifies_ok_with_counts, setup, teardown),
      cmocka_unit_test_setup_teardown(records_after_the_last_checkpoint_are_reported_unsigned,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(modified_record_is_reported_at_its_link, setup, teardown),
      cmocka_unit_test_setup_teardown(garbled_record_is_named_by_seq, setup, teardown),
      cmocka_unit_test_setup_teardown(removed_record_is_reported_by_seq, setup, teardown),
      cmocka_unit_test_setup_teardown(removed_tail_record_is_reported, setup, teardown),
      cmocka_unit_test_setup_teardown(inserted_record_is_reported_by_seq, setup, teardown),
      cmocka_unit_test_setup_teardown(swapped_records_are_reported_reordered, setup, teardown),
      cmocka_unit_test_setup_teardown(altered_link_hash_is_told_apart_from_records, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(missing_link_is_reported, setup, teardown),
      cmocka_unit_test_setup_teardown(rehashed_chain_fails_against_the_signed_checkpoint, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(truncated_chain_is_exposed_by_a_later_checkpoint, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(altered_checkpoint_fails_its_signature, setup, teardown),
      cmocka_unit_test_setup_teardown(wrong_public_key_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(key_from_the_data_dir_warns, setup, teardown),
      cmocka_unit_test_setup_teardown(store_without_chain_predates_it, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_arguments_exit_2, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
