/* tests/storage/scan_test.c: sto_scan_after_raw and sto_scan_after against a
 * real LMDB store: seq order, after_seq, max, a callback that stops, an
 * empty store, the bytes handed over equal to the records DB's values (read
 * with LMDB directly), and damaged records DBs written through LMDB directly
 * (a value that does not decode, a key that is not 8 bytes).
 */
#include <lmdb.h>
#include <stdint.h>

#include "proto/proto.h"
#include "tests/storage/sto_test_util.h"

#define N_SCAN 40

static void be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

/* Store N_SCAN records (seq 1..N_SCAN) in two commits, messages "m<i>". */
static void fill_store(const tdir *d) {
  static char msgs[N_SCAN][16];
  Cairn__Record r[N_SCAN], *p[N_SCAN];
  for (int i = 0; i < N_SCAN; i++) {
    snprintf(msgs[i], sizeof(msgs[i]), "m%d", i + 1);
    rec_fill(&r[i], 1000 + i, "ns", i % 2 ? "pod-a" : "pod-b", "app", "node-1", msgs[i], 7,
             (uint64_t)i + 1);
    p[i] = &r[i];
  }
  sto_env *env = open_rw(d, 0, 0);
  assert_int_equal(put_commit(env, "inst-1", p, N_SCAN / 2, NULL), N_SCAN / 2);
  assert_int_equal(put_commit(env, "inst-1", p + N_SCAN / 2, N_SCAN / 2, NULL), N_SCAN / 2);
  sto_close(env);
}

/* One raw record as the callback saw it (bytes copied: they are valid only
 * during the call). */
typedef struct raw_rec {
  uint64_t seq;
  uint8_t *p;
  size_t n;
} raw_rec;

typedef struct raw_list {
  raw_rec v[N_SCAN + 8];
  size_t n;
  size_t stop_at; /* return false from the callback on this call (1-based), 0 = never */
} raw_list;

static bool raw_cb(uint64_t seq, const uint8_t *p, size_t n, void *ud) {
  raw_list *l = ud;
  assert_true(l->n < sizeof(l->v) / sizeof(l->v[0]));
  raw_rec *r = &l->v[l->n++];
  r->seq = seq;
  r->n = n;
  r->p = malloc(n ? n : 1);
  assert_non_null(r->p);
  if (n) memcpy(r->p, p, n);
  return l->n != l->stop_at;
}

static void raw_list_fini(raw_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i].p);
  l->n = 0;
}

/* The records DB of a store opened with test_raw_write. */
static MDB_dbi records_dbi(MDB_txn *txn) {
  MDB_dbi recs;
  assert_int_equal(mdb_dbi_open(txn, "records", 0, &recs), 0);
  return recs;
}

static raw_list *lmdb_check; /* compared by check_against_lmdb */

/* Every record in lmdb_check equals the records DB's value under its seq. */
static void check_against_lmdb(MDB_txn *txn, MDB_env *e) {
  (void)e;
  MDB_dbi recs = records_dbi(txn);
  for (size_t i = 0; i < lmdb_check->n; i++) {
    uint8_t kb[8];
    be64(kb, lmdb_check->v[i].seq);
    MDB_val k = {8, kb}, v;
    assert_int_equal(mdb_get(txn, recs, &k, &v), 0);
    assert_int_equal(v.mv_size, lmdb_check->v[i].n);
    assert_memory_equal(v.mv_data, lmdb_check->v[i].p, v.mv_size);
  }
}

static void scan_raw_returns_stored_bytes_in_seq_order(void **state) {
  tdir *d = *state;
  fill_store(d);
  sto_env *env = open_ro(d);
  static raw_list l;
  l.n = 0;
  l.stop_at = 0;
  assert_int_equal(sto_scan_after_raw(env, 0, 0, raw_cb, &l), CAIRN_OK);
  sto_close(env);
  assert_int_equal(l.n, N_SCAN);
  cairn_arena a;
  cairn_arena_init(&a, 0);
  for (size_t i = 0; i < l.n; i++) {
    assert_true(l.v[i].seq == i + 1);
    /* the bytes decode to the record stored under that seq */
    Cairn__Record *r;
    assert_int_equal(pb_record_unpack(l.v[i].p, l.v[i].n, &a, &r), CAIRN_OK);
    assert_true(r->seq == l.v[i].seq);
    char want[32];
    snprintf(want, sizeof(want), "m%zu", i + 1);
    assert_int_equal(r->message.len, strlen(want));
    assert_memory_equal(r->message.data, want, r->message.len);
    assert_string_equal(r->instance_id, "inst-1");
    cairn_arena_reset(&a);
  }
  cairn_arena_fini(&a);
  /* and they are the records DB's values, byte for byte */
  lmdb_check = &l;
  test_raw_write(d, check_against_lmdb);
  raw_list_fini(&l);
}

static void scan_raw_honours_after_seq_and_max(void **state) {
  tdir *d = *state;
  fill_store(d);
  sto_env *env = open_ro(d);
  static raw_list l;
  l.stop_at = 0;
  l.n = 0;
  assert_int_equal(sto_scan_after_raw(env, 10, 0, raw_cb, &l), CAIRN_OK);
  assert_int_equal(l.n, N_SCAN - 10);
  for (size_t i = 0; i < l.n; i++) assert_true(l.v[i].seq == 11 + i);
  raw_list_fini(&l);
  assert_int_equal(sto_scan_after_raw(env, 10, 5, raw_cb, &l), CAIRN_OK);
  assert_int_equal(l.n, 5);
  for (size_t i = 0; i < l.n; i++) assert_true(l.v[i].seq == 11 + i);
  raw_list_fini(&l);
  /* across the commit boundary, and max larger than what is left */
  assert_int_equal(sto_scan_after_raw(env, N_SCAN / 2 - 1, 100, raw_cb, &l), CAIRN_OK);
  assert_int_equal(l.n, N_SCAN / 2 + 1);
  assert_true(l.v[0].seq == N_SCAN / 2);
  assert_true(l.v[l.n - 1].seq == N_SCAN);
  raw_list_fini(&l);
  /* at or past the end: nothing, no error */
  assert_int_equal(sto_scan_after_raw(env, N_SCAN, 0, raw_cb, &l), CAIRN_OK);
  assert_int_equal(sto_scan_after_raw(env, UINT64_MAX - 1, 0, raw_cb, &l), CAIRN_OK);
  assert_int_equal(sto_scan_after_raw(env, UINT64_MAX, 0, raw_cb, &l), CAIRN_OK);
  assert_int_equal(l.n, 0);
  /* no callback / no env */
  assert_int_equal(sto_scan_after_raw(env, 0, 0, NULL, &l), CAIRN_E_INVAL);
  assert_int_equal(sto_scan_after_raw(NULL, 0, 0, raw_cb, &l), CAIRN_E_INVAL);
  sto_close(env);
}

static void scan_raw_callback_false_stops_without_error(void **state) {
  tdir *d = *state;
  fill_store(d);
  sto_env *env = open_ro(d);
  static raw_list l;
  l.n = 0;
  l.stop_at = 3;
  assert_int_equal(sto_scan_after_raw(env, 5, 0, raw_cb, &l), CAIRN_OK);
  assert_int_equal(l.n, 3);
  assert_true(l.v[0].seq == 6 && l.v[2].seq == 8);
  raw_list_fini(&l);
  l.stop_at = 1;
  assert_int_equal(sto_scan_after_raw(env, 0, 0, raw_cb, &l), CAIRN_OK);
  assert_int_equal(l.n, 1);
  raw_list_fini(&l);
  sto_close(env);
}

static void scan_raw_on_empty_store_calls_nothing(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  static raw_list l;
  l.n = 0;
  l.stop_at = 0;
  assert_int_equal(sto_scan_after_raw(env, 0, 0, raw_cb, &l), CAIRN_OK);
  assert_int_equal(sto_scan_after_raw(env, 7, 3, raw_cb, &l), CAIRN_OK);
  assert_int_equal(l.n, 0);
  seq_list s = {0};
  assert_int_equal(sto_scan_after(env, 0, 0, seq_list_cb, &s), CAIRN_OK);
  assert_int_equal(s.n, 0);
  seq_list_fini(&s);
  sto_close(env);
}

static void put_garbage_at_seq_5(MDB_txn *txn, MDB_env *e) {
  (void)e;
  MDB_dbi recs = records_dbi(txn);
  uint8_t kb[8];
  be64(kb, 5);
  static const uint8_t garbage[] = {0x0f, 0xff, 0x00}; /* wire type 7: nothing decodes it */
  MDB_val k = {8, kb}, v = {sizeof(garbage), (void *)garbage};
  assert_int_equal(mdb_put(txn, recs, &k, &v, 0), 0);
}

static void scan_stops_at_a_record_that_does_not_decode(void **state) {
  tdir *d = *state;
  fill_store(d);
  test_raw_write(d, put_garbage_at_seq_5);
  sto_env *env = open_ro(d);
  seq_list s = {0};
  assert_int_equal(sto_scan_after(env, 0, 0, seq_list_cb, &s), CAIRN_E_CORRUPT);
  assert_int_equal(s.n, 4); /* the records before it were delivered, nothing after */
  for (size_t i = 0; i < s.n; i++) assert_true(s.v[i] == i + 1);
  seq_list_fini(&s);
  /* starting past it, the scan is whole again */
  assert_int_equal(sto_scan_after(env, 5, 0, seq_list_cb, &s), CAIRN_OK);
  assert_int_equal(s.n, N_SCAN - 5);
  assert_true(s.v[0] == 6);
  seq_list_fini(&s);
  /* a max that ends before it: no error */
  assert_int_equal(sto_scan_after(env, 0, 4, seq_list_cb, &s), CAIRN_OK);
  assert_int_equal(s.n, 4);
  seq_list_fini(&s);
  /* the raw scan hands the garbage over as it is */
  static raw_list l;
  l.n = 0;
  l.stop_at = 0;
  assert_int_equal(sto_scan_after_raw(env, 4, 1, raw_cb, &l), CAIRN_OK);
  assert_int_equal(l.n, 1);
  assert_true(l.v[0].seq == 5 && l.v[0].n == 3 && l.v[0].p[0] == 0x0f);
  raw_list_fini(&l);
  sto_close(env);
}

/* A 9-byte key sorting between seq 3 and seq 4. */
static void put_odd_key_after_seq_3(MDB_txn *txn, MDB_env *e) {
  (void)e;
  MDB_dbi recs = records_dbi(txn);
  uint8_t kb[9];
  be64(kb, 3);
  kb[8] = 0;
  MDB_val k = {9, kb}, v = {1, (void *)"x"};
  assert_int_equal(mdb_put(txn, recs, &k, &v, 0), 0);
}

static void scan_raw_stops_at_a_key_that_is_not_a_seq(void **state) {
  tdir *d = *state;
  fill_store(d);
  test_raw_write(d, put_odd_key_after_seq_3);
  sto_env *env = open_ro(d);
  static raw_list l;
  l.n = 0;
  l.stop_at = 0;
  assert_int_equal(sto_scan_after_raw(env, 0, 0, raw_cb, &l), CAIRN_E_CORRUPT);
  assert_int_equal(l.n, 3);
  assert_true(l.v[2].seq == 3);
  raw_list_fini(&l);
  seq_list s = {0};
  assert_int_equal(sto_scan_after(env, 1, 0, seq_list_cb, &s), CAIRN_E_CORRUPT);
  assert_int_equal(s.n, 2);
  seq_list_fini(&s);
  sto_close(env);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(scan_raw_returns_stored_bytes_in_seq_order, tdir_setup,
                                      tdir_teardown),
      cmocka_unit_test_setup_teardown(scan_raw_honours_after_seq_and_max, tdir_setup,
                                      tdir_teardown),
      cmocka_unit_test_setup_teardown(scan_raw_callback_false_stops_without_error, tdir_setup,
                                      tdir_teardown),
      cmocka_unit_test_setup_teardown(scan_raw_on_empty_store_calls_nothing, tdir_setup,
                                      tdir_teardown),
      cmocka_unit_test_setup_teardown(scan_stops_at_a_record_that_does_not_decode, tdir_setup,
                                      tdir_teardown),
      cmocka_unit_test_setup_teardown(scan_raw_stops_at_a_key_that_is_not_a_seq, tdir_setup,
                                      tdir_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
