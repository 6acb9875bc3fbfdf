/* tests/storage/env_test.c: opening the store: read-only open of a missing
 * store, argument checks, and read-only readers in one process while a writer
 * in another (fork) commits and grows the map underneath them; a data.mdb
 * that ends in free pages LMDB never wrote opens (it is not truncated).
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "tests/storage/sto_test_util.h"

static void read_only_open_of_missing_store_is_notfound(void **state) {
  tdir *d = *state;
  sto_options o = {.read_only = true};
  sto_env *env = (sto_env *)1;
  char eb[256];
  assert_int_equal(sto_open(d->store, &o, &env, eb, sizeof(eb)),
                   CAIRN_E_NOTFOUND);
  assert_null(env);
  assert_non_null(strstr(eb, "no cairn store in"));
  assert_non_null(strstr(eb, "cairn-aggregator --data"));
  struct stat st;
  assert_int_equal(stat(d->store, &st),
                   -1); /* read-only never creates the dir */
  /* an existing but empty dir is no store either */
  assert_int_equal(mkdir(d->store, 0700), 0);
  assert_int_equal(sto_open(d->store, &o, &env, eb, sizeof(eb)),
                   CAIRN_E_NOTFOUND);
  assert_non_null(strstr(eb, d->store));
}

static void open_rejects_bad_arguments_and_missing_parent(void **state) {
  tdir *d = *state;
  sto_env *env = NULL;
  char eb[256];
  assert_int_equal(sto_open(NULL, NULL, &env, eb, sizeof(eb)), CAIRN_E_INVAL);
  assert_int_equal(sto_open("", NULL, &env, NULL, 0), CAIRN_E_INVAL);
  char deep[200];
  snprintf(deep, sizeof(deep), "%s/no/such/dir", d->path);
  assert_int_equal(sto_open(deep, NULL, &env, eb, sizeof(eb)),
                   CAIRN_E_NOTFOUND);
  assert_non_null(strstr(eb, "cannot create data dir"));
  sto_close(NULL);
}

static void open_with_null_options_uses_defaults(void **state) {
  tdir *d = *state;
  sto_env *env = NULL;
  assert_int_equal(sto_open(d->store, NULL, &env, NULL, 0), CAIRN_OK);
  sto_stats st;
  assert_int_equal(sto_stats_get(env, &st), CAIRN_OK);
  assert_int_equal(st.map_size, 1ull << 30);
  assert_int_equal(st.records, 0);
  assert_int_equal(st.last_seq, 0);
  sto_close(env);
}

#define CHILD_BATCHES 120
#define CHILD_BATCH 50

/* Writer process: commits CHILD_BATCHES groups, growing the 1 MiB map as it
 * fills. Reports through its exit status only (no cmocka in the child). */
static int child_writer(const tdir *d) {
  sto_options o = {
      .map_size = 1u << 20, .max_map_size = 256u << 20, .no_sync = true};
  sto_env *env;
  if (sto_open(d->store, &o, &env, NULL, 0) != CAIRN_OK)
    return 10;
  static char msg[600];
  memset(msg, 'w', sizeof(msg) - 1);
  Cairn__Record r[CHILD_BATCH], *p[CHILD_BATCH];
  for (int b = 0; b < CHILD_BATCHES; b++) {
    for (int i = 0; i < CHILD_BATCH; i++) {
      rec_fill(&r[i], b * CHILD_BATCH + i, "ns", "pod", "c", "n", msg, 0, 0);
      p[i] = &r[i];
    }
    for (int attempt = 0;; attempt++) {
      if (attempt > 20)
        return 11;
      sto_wtxn *t;
      if (sto_wtxn_begin(env, &t) != CAIRN_OK)
        return 12;
      sto_ingest_meta m = {.instance_id = "child", .identity = "id"};
      uint32_t stored, dups;
      cairn_err err =
          sto_wtxn_put_records(t, &m, p, CHILD_BATCH, &stored, &dups);
      if (err == CAIRN_OK)
        err = sto_wtxn_cursor_set(t, "progress", (uint64_t)b + 1);
      if (err == CAIRN_OK) {
        err = sto_wtxn_commit(t);
      } else {
        sto_wtxn_abort(t);
      }
      if (err == CAIRN_E_MAPFULL) {
        if (sto_grow(env) != CAIRN_OK)
          return 13;
        continue;
      }
      if (err != CAIRN_OK)
        return 14;
      break;
    }
  }
  sto_close(env);
  return 0;
}

typedef struct contig {
  uint64_t next; /* expected next seq */
  bool ok;
} contig;

static bool contig_cb(const Cairn__Record *r, void *ud) {
  contig *c = ud;
  if (r->seq != c->next)
    c->ok = false;
  c->next++;
  return true;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void read_only_reader_follows_writer_in_other_process(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 1u << 20, 256u << 20); /* create the store */
  sto_close(env);

  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(child_writer(d));

  env = open_ro(d);
  const uint64_t total = (uint64_t)CHILD_BATCHES * CHILD_BATCH;
  uint64_t last_seen = 0, reads = 0, distinct_states = 0;
  int status = 0;
  bool child_done = false;
  double deadline = now_s() + 60;
  while (now_s() < deadline) {
    sto_stats st;
    assert_int_equal(sto_stats_get(env, &st), CAIRN_OK);
    assert_int_equal(st.records, st.last_seq); /* one consistent snapshot */
    assert_true(st.last_seq >= last_seen);     /* never goes back */
    assert_int_equal(st.last_seq % CHILD_BATCH, 0); /* only whole groups */
    if (st.last_seq != last_seen)
      distinct_states++;
    last_seen = st.last_seq;
    contig c = {.next = 1, .ok = true};
    assert_int_equal(sto_scan_after(env, 0, 0, contig_cb, &c), CAIRN_OK);
    assert_true(c.ok);
    assert_true(c.next - 1 >= st.last_seq);
    reads++;
    if (!child_done && waitpid(pid, &status, WNOHANG) == pid)
      child_done = true;
    if (child_done && last_seen == total)
      break;
  }
  if (!child_done) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    fail_msg(
        "writer child did not finish within the deadline (saw %llu records)",
        (unsigned long long)last_seen);
  }
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(last_seen, total);
  assert_true(reads >= 2);
  uint64_t progress;
  assert_int_equal(sto_cursor_get(env, "progress", &progress), CAIRN_OK);
  assert_int_equal(progress, CHILD_BATCHES);
  sto_stats st;
  assert_int_equal(sto_stats_get(env, &st), CAIRN_OK);
  assert_true(st.map_size > (1u << 20)); /* the reader adopted the grown map */
  sto_query q;
  sto_query_init(&q);
  q.pod = "pod";
  q.newest_first = true;
  q.limit = 3;
  seq_list l = {0};
  assert_int_equal(sto_query_run(env, &q, seq_list_cb, &l, NULL), CAIRN_OK);
  assert_int_equal(l.n, 3);
  assert_int_equal(l.v[0], total);
  seq_list_fini(&l);
  sto_close(env);
}

/* Highest page of env that is not in LMDB's freelist. */
static size_t highest_used_page(MDB_env *env) {
  MDB_envinfo info;
  assert_int_equal(mdb_env_info(env, &info), 0);
  size_t last = info.me_last_pgno;
  unsigned char *isfree = calloc(last + 1, 1);
  assert_non_null(isfree);
  MDB_txn *txn;
  MDB_cursor *cur;
  assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
  assert_int_equal(mdb_cursor_open(txn, 0, &cur), 0);
  MDB_val k, v;
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    const size_t *ids = v.mv_data;
    for (size_t i = 1; i <= ids[0]; i++)
      if (ids[i] <= last) isfree[ids[i]] = 1;
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  size_t hi = last;
  while (hi > 0 && isfree[hi]) hi--;
  free(isfree);
  return hi;
}

/* Found by shutdown_stress_test.sh: after deletions the aggregator's clean
 * exit left a data.mdb 2 pages shorter than last_pgno (pages LMDB allocated
 * and freed in one txn are never written), and the restart refused the
 * store as "truncated". Here a big value is stored and deleted, a few small
 * txns churn, and the file is cut after its last used page, which is what
 * LMDB leaves when the free tail was never written. */
static void open_accepts_file_ending_in_free_pages(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  sto_close(env);
  MDB_env *m;
  assert_int_equal(mdb_env_create(&m), 0);
  assert_int_equal(mdb_env_set_maxdbs(m, 32), 0);
  assert_int_equal(mdb_env_open(m, d->store, MDB_NOSYNC, 0600), 0);
  static char big[64 << 10];
  memset(big, 'x', sizeof(big));
  for (int step = 0; step < 6; step++) {
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_txn_begin(m, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "test-scratch", MDB_CREATE, &dbi), 0);
    MDB_val k = {.mv_size = 3, .mv_data = "key"};
    MDB_val v = {.mv_size = step == 0 ? sizeof(big) : 1, .mv_data = big};
    if (step % 2 == 0) assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    else assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
  }
  MDB_envinfo info;
  MDB_stat est;
  assert_int_equal(mdb_env_info(m, &info), 0);
  assert_int_equal(mdb_env_stat(m, &est), 0);
  size_t keep = highest_used_page(m) + 1;
  mdb_env_close(m);
  /* the test means something only when the tail it cuts is free */
  assert_true(keep < info.me_last_pgno + 1);
  char file[160];
  snprintf(file, sizeof(file), "%s/data.mdb", d->store);
  assert_int_equal(truncate(file, (off_t)(keep * est.ms_psize)), 0);

  env = open_rw(d, 0, 0); /* fails the test if refused */
  sto_stats st;
  assert_int_equal(sto_stats_get(env, &st), CAIRN_OK);
  sto_close(env);
  env = open_ro(d);
  sto_close(env);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          read_only_open_of_missing_store_is_notfound, tdir_setup,
          tdir_teardown),
      cmocka_unit_test_setup_teardown(
          open_rejects_bad_arguments_and_missing_parent, tdir_setup,
          tdir_teardown),
      cmocka_unit_test_setup_teardown(open_with_null_options_uses_defaults,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(
          read_only_reader_follows_writer_in_other_process, tdir_setup,
          tdir_teardown),
      cmocka_unit_test_setup_teardown(open_accepts_file_ending_in_free_pages,
                                      tdir_setup, tdir_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
