/* tests/storage/retention_test.c: hot retention (storage/retention.c) against
 * a real LMDB in a fresh temp dir: pruning never passes the seq bound or the
 * age cutoff, deletes whole links oldest first (as many as fit a record
 * budget per txn, a bigger link alone), removes every index entry of a pruned
 * record (container, auditd and Kubernetes audit records: the idx DB ends up
 * exactly as large as the remaining records need), keeps dedupe marks, and
 * leaves a store that sto_chain_verify accepts while still catching tampering
 * after the mark.
 */
#include <lmdb.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <time.h>

#include "tests/storage/sto_test_util.h"

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#define FUTURE                                                                 \
  (now_ns() + 3600LL * 1000000000LL) /* every link is older than this */

/* Store n records in ONE committed txn (one link): a mix of container,
 * auditd and Kubernetes audit records with indexed attrs (a repeated audit
 * key included), stream 7 of instance "inst", end offsets base+1 .. base+n. */
static void put_link(sto_env *env, int n, int base) {
  static Cairn__Record recs[256];
  static Cairn__Record *ptrs[256];
  static Cairn__Attr attrs[256][6];
  static Cairn__Attr *aptrs[256][6];
  static char msgs[256][32];
  assert_true(n <= 256);
  const char *akv[][2] = {
      {"key", "passwd"}, {"key", "passwd"},           {"auid", "1000"},
      {"syscall", "59"}, {"types", "SYSCALL,EXECVE"}, {"exe", "/bin/ls"}};
  const char *kkv[][2] = {{"user", "alice"},
                          {"verb", "get"},
                          {"resource", "secrets"},
                          {"code", "200"}};
  for (int i = 0; i < n; i++) {
    int g = base + i;
    snprintf(msgs[i], sizeof(msgs[i]), "m%d", g);
    rec_fill(&recs[i], 1000 + g, "ns", g % 2 ? "pod-a" : "pod-b", "c", "node",
             msgs[i], 7, (uint64_t)g + 1);
    Cairn__Attr init = CAIRN__ATTR__INIT;
    size_t na = 0;
    if (g % 3 == 1) {
      recs[i].source = CAIRN__SOURCE__SOURCE_AUDIT;
      for (; na < 6; na++) {
        attrs[i][na] = init;
        attrs[i][na].key = (char *)akv[na][0];
        attrs[i][na].value.data = (uint8_t *)akv[na][1];
        attrs[i][na].value.len = strlen(akv[na][1]);
      }
    } else if (g % 3 == 2) {
      recs[i].source = CAIRN__SOURCE__SOURCE_K8S_AUDIT;
      for (; na < 4; na++) {
        attrs[i][na] = init;
        attrs[i][na].key = (char *)kkv[na][0];
        attrs[i][na].value.data = (uint8_t *)kkv[na][1];
        attrs[i][na].value.len = strlen(kkv[na][1]);
      }
    }
    for (size_t j = 0; j < na; j++)
      aptrs[i][j] = &attrs[i][j];
    recs[i].attrs = na ? aptrs[i] : NULL;
    recs[i].n_attrs = na;
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

static uint64_t count_scan(sto_env *env, uint64_t *first) {
  seq_list l = {0};
  assert_int_equal(sto_scan_after(env, 0, 0, seq_list_cb, &l), CAIRN_OK);
  uint64_t n = l.n;
  if (first)
    *first = n ? l.v[0] : 0;
  seq_list_fini(&l);
  return n;
}

/* Records a query for one pod returns (through the pod index). */
static uint64_t count_pod(sto_env *env, const char *pod, uint64_t *min_seq) {
  sto_query q;
  sto_query_init(&q);
  q.pod = pod;
  seq_list l = {0};
  sto_query_stats st;
  assert_int_equal(sto_query_run(env, &q, seq_list_cb, &l, &st), CAIRN_OK);
  assert_string_equal(st.index, "pod");
  uint64_t n = l.n, m = UINT64_MAX;
  for (size_t i = 0; i < l.n; i++)
    m = l.v[i] < m ? l.v[i] : m;
  if (min_seq)
    *min_seq = m;
  seq_list_fini(&l);
  return n;
}

static bool count_cb(const uint8_t *value, size_t n, uint64_t count, void *ud) {
  (void)value, (void)n, (void)count, (void)ud;
  return true;
}

/* Entries of a named DB, read with raw LMDB (the sto_env must be closed). */
static size_t raw_entries(const tdir *d, const char *db) {
  MDB_env *e;
  assert_int_equal(mdb_env_create(&e), 0);
  mdb_env_set_maxdbs(e, 16);
  assert_int_equal(mdb_env_open(e, d->store, MDB_RDONLY, 0600), 0);
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_stat st;
  assert_int_equal(mdb_txn_begin(e, NULL, MDB_RDONLY, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
  assert_int_equal(mdb_stat(txn, dbi, &st), 0);
  mdb_txn_abort(txn);
  mdb_env_close(e);
  return st.ms_entries;
}


static void be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

/* ---- tests ---- */

static void prune_never_passes_the_seq_bound(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  put_link(env, 10, 0);  /* link 1: seq 1..10 */
  put_link(env, 10, 10); /* link 2: seq 11..20 */
  put_link(env, 10, 20); /* link 3: seq 21..30 */
  sto_prune_result pr;
  /* the bound is inside link 2: only link 1 may go, never part of link 2 */
  assert_int_equal(sto_prune(env, FUTURE, 15, 0, &pr), CAIRN_OK);
  assert_int_equal(pr.records, 10);
  assert_int_equal(pr.links, 1);
  assert_int_equal(pr.mark.position, 1);
  assert_int_equal(pr.mark.seq, 10);
  assert_false(pr.more);
  uint64_t first = 0;
  assert_int_equal(count_scan(env, &first), 20);
  assert_int_equal(first, 11);
  /* again with the same bound: nothing due */
  assert_int_equal(sto_prune(env, FUTURE, 15, 0, &pr), CAIRN_OK);
  assert_int_equal(pr.records, 0);
  assert_int_equal(pr.mark.seq, 10);
  /* the bound (Kafka cursor) moves to the end of link 2 */
  assert_int_equal(sto_prune(env, FUTURE, 20, 0, &pr), CAIRN_OK);
  assert_int_equal(pr.records, 10);
  assert_int_equal(pr.mark.position, 2);
  assert_int_equal(pr.mark.seq, 20);
  sto_prune_mark m;
  assert_int_equal(sto_prune_mark_get(env, &m), CAIRN_OK);
  assert_int_equal(m.position, 2);
  assert_int_equal(m.seq, 20);
  sto_stats st;
  assert_int_equal(sto_stats_get(env, &st), CAIRN_OK);
  assert_int_equal(st.records, 10);
  assert_int_equal(st.last_seq, 30);
  sto_close(env);
}

static void prune_never_passes_the_age_cutoff(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  int64_t before = now_ns();
  put_link(env, 5, 0);
  put_link(env, 5, 5);
  sto_prune_result pr;
  /* every link was committed after `before`: none is older than it */
  assert_int_equal(sto_prune(env, before, UINT64_MAX, 0, &pr), CAIRN_OK);
  assert_int_equal(pr.records, 0);
  assert_int_equal(pr.mark.position, 0);
  assert_int_equal(count_scan(env, NULL), 10);
  /* a cutoff between the two commits prunes link 1 only */
  sto_link l1;
  assert_int_equal(sto_link_get(env, 1, &l1), CAIRN_OK);
  assert_int_equal(sto_prune(env, l1.commit_ns + 1, UINT64_MAX, 0, &pr),
                   CAIRN_OK);
  assert_int_equal(pr.records, 5);
  assert_int_equal(pr.mark.seq, 5);
  assert_int_equal(count_scan(env, NULL), 5);
  sto_close(env);
}

static void
pruned_records_leave_no_index_entry_and_no_query_result(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  put_link(env, 30, 0);  /* seq 1..30 */
  put_link(env, 30, 30); /* seq 31..60 */
  assert_int_equal(count_pod(env, "pod-a", NULL), 30);
  sto_prune_result pr;
  assert_int_equal(sto_prune(env, FUTURE, 30, 0, &pr), CAIRN_OK);
  assert_int_equal(pr.records, 30);
  uint64_t min_seq = 0;
  assert_int_equal(count_pod(env, "pod-a", &min_seq), 15);
  assert_true(min_seq > 30);
  assert_int_equal(count_pod(env, "pod-b", &min_seq), 15);
  assert_true(min_seq > 30);
  /* an attr index (audit key) and the per-value counts agree */
  sto_query q;
  sto_query_init(&q);
  sto_term term = {"passwd", STO_MATCH_EXACT};
  q.terms[STO_FIELD_AUDIT_KEY].v = &term;
  q.terms[STO_FIELD_AUDIT_KEY].n = 1;
  seq_list l = {0};
  assert_int_equal(sto_query_run(env, &q, seq_list_cb, &l, NULL), CAIRN_OK);
  assert_int_equal(l.n, 10);
  for (size_t i = 0; i < l.n; i++)
    assert_true(l.v[i] > 30);
  seq_list_fini(&l);
  uint64_t total = 0;
  assert_int_equal(sto_index_counts(env, STO_FIELD_NODE, INT64_MIN, INT64_MAX,
                                    count_cb, NULL, &total),
                   CAIRN_OK);
  assert_int_equal(total, 30);
  sto_close(env);
  size_t half = raw_entries(d, "idx");

  /* prune the rest: the idx DB must be empty, i.e. exactly the entries the
   * first half of the records had were removed, none left behind */
  env = open_rw(d, 0, 0);
  assert_int_equal(sto_prune(env, FUTURE, UINT64_MAX, 0, &pr), CAIRN_OK);
  assert_int_equal(pr.records, 30);
  assert_int_equal(count_scan(env, NULL), 0);
  assert_int_equal(count_pod(env, "pod-a", NULL), 0);
  sto_close(env);
  assert_true(half > 0);
  assert_int_equal(raw_entries(d, "idx"), 0);
  assert_int_equal(raw_entries(d, "records"), 0);
  assert_int_equal(raw_entries(d, "chain"), 2);  /* links stay */
  assert_int_equal(raw_entries(d, "dedupe"), 1); /* the high-water mark stays */
}

static void dedupe_marks_survive_pruning(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  put_link(env, 8, 0);
  sto_prune_result pr;
  assert_int_equal(sto_prune(env, FUTURE, UINT64_MAX, 0, &pr), CAIRN_OK);
  assert_int_equal(pr.records, 8);
  /* a collector resends the same records: all duplicates, nothing stored */
  Cairn__Record r;
  Cairn__Record *p = &r;
  rec_fill(&r, 1000, "ns", "pod-a", "c", "node", "m0", 7, 8);
  uint32_t dups = 0;
  assert_int_equal(put_commit(env, "inst", &p, 1, &dups), 0);
  assert_int_equal(dups, 1);
  sto_close(env);
}

static void links_are_pruned_whole_within_the_budget(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  put_link(env, 50, 0);  /* link 1: seq 1..50 */
  put_link(env, 10, 50); /* link 2: seq 51..60 */
  put_link(env, 10, 60); /* link 3: seq 61..70 */
  put_link(env, 10, 70); /* link 4: seq 71..80 */
  sto_prune_result pr;
  sto_verify_report r;
  /* a link bigger than the budget goes alone, in one txn */
  assert_int_equal(sto_prune(env, FUTURE, UINT64_MAX, 20, &pr), CAIRN_OK);
  assert_int_equal(pr.records, 50);
  assert_int_equal(pr.links, 1);
  assert_true(pr.more);
  assert_int_equal(pr.mark.position, 1);
  assert_int_equal(pr.mark.seq, 50);
  verify_ok(env, NULL, &r);
  assert_int_equal(r.pruned_links, 1);
  assert_int_equal(r.pruned_records, 50);
  assert_int_equal(r.records, 30); /* links 2..4 fully recomputed */
  /* then as many whole links as fit: 2 and 3, not 4 */
  assert_int_equal(sto_prune(env, FUTURE, UINT64_MAX, 20, &pr), CAIRN_OK);
  assert_int_equal(pr.records, 20);
  assert_int_equal(pr.links, 2);
  assert_true(pr.more);
  assert_int_equal(pr.mark.seq, 70);
  /* the bound stops link 4 (it ends at 80) */
  assert_int_equal(sto_prune(env, FUTURE, 79, 20, &pr), CAIRN_OK);
  assert_int_equal(pr.records, 0);
  assert_false(pr.more);
  verify_ok(env, NULL, &r);
  assert_int_equal(r.pruned_records, 70);
  assert_int_equal(r.pruned_seq, 70);
  assert_int_equal(r.links, 4);
  assert_int_equal(r.records, 10);
  sto_close(env);
}

/* ---- verify after pruning ---- */

/* Three signed links, then two pruned. */
static void make_pruned_store(const tdir *d, EVP_PKEY *k, const uint8_t *pub) {
  sto_env *env = open_rw(d, 0, 0);
  put_link(env, 10, 0);
  test_sign_head(env, k, pub); /* checkpoint at 1 */
  put_link(env, 10, 10);
  test_sign_head(env, k, pub); /* checkpoint at 2 */
  put_link(env, 10, 20);
  put_link(env, 10, 30);
  test_sign_head(env, k, pub); /* checkpoint at 4 */
  sto_prune_result pr;
  assert_int_equal(sto_prune(env, FUTURE, 20, 0, &pr), CAIRN_OK);
  assert_int_equal(pr.records, 20);
  assert_int_equal(pr.mark.position, 2);
  sto_close(env);
}

static void
verify_accepts_a_pruned_store_and_checks_its_signatures(void **state) {
  tdir *d = *state;
  uint8_t pub[32], other_pub[32];
  EVP_PKEY *k = test_keygen(pub), *other = test_keygen(other_pub);
  make_pruned_store(d, k, pub);
  sto_env *env = open_ro(d);
  sto_verify_report r;
  verify_ok(env, pub, &r);
  assert_int_equal(r.links, 4);
  assert_int_equal(r.pruned_links, 2);
  assert_int_equal(r.pruned_records, 20);
  assert_int_equal(r.pruned_seq, 20);
  assert_int_equal(r.records, 20); /* links 3 and 4 recomputed */
  assert_int_equal(r.checkpoints, 3);
  assert_int_equal(r.last_signed_position, 4);
  assert_int_equal(r.unsigned_records, 0);
  /* signatures over pruned links are still checked */
  assert_int_equal(sto_chain_verify(env, other_pub, NULL, NULL, &r), CAIRN_OK);
  assert_int_equal(r.status, STO_VERIFY_BAD_SIGNATURE);
  assert_int_equal(r.position, 1);
  sto_close(env);
  EVP_PKEY_free(k);
  EVP_PKEY_free(other);
}

static void tamper_record_after_mark(MDB_txn *txn, MDB_env *e) {
  (void)e;
  MDB_dbi recs;
  assert_int_equal(mdb_dbi_open(txn, "records", 0, &recs), 0);
  uint8_t kb[8];
  be64(kb, 25);
  MDB_val k = {8, kb}, v;
  assert_int_equal(mdb_get(txn, recs, &k, &v), 0);
  uint8_t buf[1024];
  assert_true(v.mv_size <= sizeof(buf));
  memcpy(buf, v.mv_data, v.mv_size);
  uint8_t *m = memmem(buf, v.mv_size, "m24", 3);
  assert_non_null(m);
  m[1] = 'X'; /* same length, still decodes */
  MDB_val nv = {v.mv_size, buf};
  assert_int_equal(mdb_put(txn, recs, &k, &nv, 0), 0);
}

static void verify_detects_tampering_after_the_mark(void **state) {
  tdir *d = *state;
  uint8_t pub[32];
  EVP_PKEY *k = test_keygen(pub);
  make_pruned_store(d, k, pub);
  test_raw_write(d, tamper_record_after_mark);
  sto_env *env = open_ro(d);
  sto_verify_report r;
  assert_int_equal(sto_chain_verify(env, pub, NULL, NULL, &r), CAIRN_OK);
  assert_int_equal(r.status, STO_VERIFY_MODIFIED);
  assert_int_equal(r.position, 3);
  assert_int_equal(r.first_seq, 21);
  sto_close(env);
  EVP_PKEY_free(k);
}

static void put_back_pruned_record(MDB_txn *txn, MDB_env *e) {
  (void)e;
  MDB_dbi recs;
  assert_int_equal(mdb_dbi_open(txn, "records", 0, &recs), 0);
  uint8_t kb[8], kb2[8];
  be64(kb, 21);
  MDB_val k = {8, kb}, v;
  assert_int_equal(mdb_get(txn, recs, &k, &v), 0);
  uint8_t buf[1024];
  memcpy(buf, v.mv_data, v.mv_size);
  be64(kb2, 15);
  MDB_val k2 = {8, kb2}, v2 = {v.mv_size, buf};
  assert_int_equal(mdb_put(txn, recs, &k2, &v2, 0), 0);
}

static void verify_detects_a_record_put_back_below_the_mark(void **state) {
  tdir *d = *state;
  uint8_t pub[32];
  EVP_PKEY *k = test_keygen(pub);
  make_pruned_store(d, k, pub);
  test_raw_write(d, put_back_pruned_record);
  sto_env *env = open_ro(d);
  sto_verify_report r;
  assert_int_equal(sto_chain_verify(env, pub, NULL, NULL, &r), CAIRN_OK);
  assert_int_equal(r.status, STO_VERIFY_INSERTED);
  assert_int_equal(r.seq, 15);
  assert_int_equal(r.position, 2);
  sto_close(env);
  EVP_PKEY_free(k);
}

static void move_mark_past_chain(MDB_txn *txn, MDB_env *e) {
  (void)e;
  MDB_dbi meta;
  assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
  uint8_t vb[8];
  be64(vb, 9);
  MDB_val k = {15, (void *)"pruned_position"}, v = {8, vb};
  assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
}

static void verify_detects_a_mark_moved_to_hide_links(void **state) {
  tdir *d = *state;
  uint8_t pub[32];
  EVP_PKEY *k = test_keygen(pub);
  make_pruned_store(d, k, pub);
  sto_env *env = open_rw(d, 0, 0);
  sto_prune_result pr;
  assert_int_equal(sto_prune(env, FUTURE, UINT64_MAX, 0, &pr), CAIRN_OK);
  assert_int_equal(pr.mark.position, 4); /* everything pruned */
  sto_close(env);
  test_raw_write(d, move_mark_past_chain);
  env = open_ro(d);
  sto_verify_report r;
  assert_int_equal(sto_chain_verify(env, pub, NULL, NULL, &r), CAIRN_OK);
  /* the mark names link 9 of a 4-link chain (links were cut off) */
  assert_int_equal(r.status, STO_VERIFY_LINK_BROKEN);
  assert_non_null(strstr(r.detail, "prune mark"));
  sto_close(env);
  EVP_PKEY_free(k);
}

static uint64_t g_mark_pos, g_mark_seq;

static void set_mark(MDB_txn *txn, MDB_env *e) {
  (void)e;
  MDB_dbi meta;
  assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
  uint8_t vb[8];
  be64(vb, g_mark_pos);
  MDB_val k = {15, (void *)"pruned_position"}, v = {8, vb};
  assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
  be64(vb, g_mark_seq);
  MDB_val k2 = {10, (void *)"pruned_seq"}, v2 = {8, vb};
  assert_int_equal(mdb_put(txn, meta, &k2, &v2, 0), 0);
}

static void verify_detects_a_mark_moved_over_a_changed_link(void **state) {
  tdir *d = *state;
  uint8_t pub[32];
  EVP_PKEY *k = test_keygen(pub);
  make_pruned_store(d, k, pub);
  test_raw_write(d, tamper_record_after_mark); /* seq 25, link 3 */
  sto_verify_report r;
  /* the mark moved over link 3 without deleting it: its records remain */
  g_mark_pos = 3;
  g_mark_seq = 30;
  test_raw_write(d, set_mark);
  sto_env *env = open_ro(d);
  assert_int_equal(sto_chain_verify(env, pub, NULL, NULL, &r), CAIRN_OK);
  assert_int_equal(r.status, STO_VERIFY_INSERTED);
  assert_int_equal(r.position, 3);
  assert_int_equal(r.seq, 21);
  sto_close(env);
  /* a mark inside a link (pruning never leaves one half done) */
  g_mark_seq = 25;
  test_raw_write(d, set_mark);
  env = open_ro(d);
  assert_int_equal(sto_chain_verify(env, pub, NULL, NULL, &r), CAIRN_OK);
  assert_int_equal(r.status, STO_VERIFY_LINK_BROKEN);
  assert_int_equal(r.position, 3);
  sto_close(env);
  EVP_PKEY_free(k);
}

static void delete_record_12(MDB_txn *txn, MDB_env *e) {
  (void)e;
  MDB_dbi recs;
  assert_int_equal(mdb_dbi_open(txn, "records", 0, &recs), 0);
  uint8_t kb[8];
  be64(kb, 12);
  MDB_val k = {8, kb};
  assert_int_equal(mdb_del(txn, recs, &k, NULL), 0);
}

static void
prune_refuses_to_destroy_evidence_of_a_removed_record(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  put_link(env, 10, 0);
  put_link(env, 10, 10);
  sto_close(env);
  test_raw_write(d, delete_record_12);
  env = open_rw(d, 0, 0);
  sto_prune_result pr;
  assert_int_equal(sto_prune(env, FUTURE, UINT64_MAX, 0, &pr), CAIRN_E_CORRUPT);
  assert_int_equal(pr.bad_seq, 12);
  assert_int_equal(pr.records, 0);
  /* nothing was deleted (one txn): link 1 is still there, verify names seq 12
   */
  assert_int_equal(count_scan(env, NULL), 19);
  sto_verify_report r;
  assert_int_equal(sto_chain_verify(env, NULL, NULL, NULL, &r), CAIRN_OK);
  assert_int_equal(r.status, STO_VERIFY_REMOVED);
  assert_int_equal(r.seq, 12);
  sto_close(env);
}

static void prune_needs_no_open_write_txn(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  put_link(env, 3, 0);
  sto_wtxn *t;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  sto_prune_result pr;
  assert_int_equal(sto_prune(env, FUTURE, UINT64_MAX, 0, &pr), CAIRN_E_INVAL);
  sto_wtxn_abort(t);
  assert_int_equal(sto_prune(env, FUTURE, UINT64_MAX, 0, &pr), CAIRN_OK);
  assert_int_equal(pr.records, 3);
  sto_close(env);
  env = open_ro(d);
  assert_int_equal(sto_prune(env, FUTURE, UINT64_MAX, 0, &pr), CAIRN_E_INVAL);
  sto_close(env);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(prune_never_passes_the_seq_bound,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(prune_never_passes_the_age_cutoff,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(
          pruned_records_leave_no_index_entry_and_no_query_result, tdir_setup,
          tdir_teardown),
      cmocka_unit_test_setup_teardown(dedupe_marks_survive_pruning, tdir_setup,
                                      tdir_teardown),
      cmocka_unit_test_setup_teardown(links_are_pruned_whole_within_the_budget,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(
          verify_accepts_a_pruned_store_and_checks_its_signatures, tdir_setup,
          tdir_teardown),
      cmocka_unit_test_setup_teardown(verify_detects_tampering_after_the_mark,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(
          verify_detects_a_record_put_back_below_the_mark, tdir_setup,
          tdir_teardown),
      cmocka_unit_test_setup_teardown(verify_detects_a_mark_moved_to_hide_links,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(
          verify_detects_a_mark_moved_over_a_changed_link, tdir_setup,
          tdir_teardown),
      cmocka_unit_test_setup_teardown(
          prune_refuses_to_destroy_evidence_of_a_removed_record, tdir_setup,
          tdir_teardown),
      cmocka_unit_test_setup_teardown(prune_needs_no_open_write_txn, tdir_setup,
                                      tdir_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
