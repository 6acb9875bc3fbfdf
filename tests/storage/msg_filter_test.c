/* tests/storage/msg_filter_test.c: the checks sto_query_run makes on a
 * record's packed bytes before decoding it (time, source, stream, grep and
 * sto_query.msg_filter, read from the protobuf wire format) give the same
 * answers as checking the decoded record: random queries over a real LMDB
 * against a brute force over every record (sto_scan_after + sto_query_match),
 * in both orders, in stores written in and out of time order (the cursor
 * step and the lookup of fetch); the record filter sees only records the
 * message filter kept; non-canonical encodings (a repeated message field)
 * decide as protobuf does (last wins); damaged records are still reported.
 */
#include <lmdb.h>

#include "tests/storage/sto_test_util.h"

#define N_RECS 2400

typedef struct world {
  tdir d;
  sto_env *env;
  char msg[N_RECS][80];
  size_t msg_len[N_RECS];
} world;

static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static size_t pick(uint64_t *s, size_t n) { return (size_t)(rng_next(s) % n); }

static const char *const WORDS[] = {"error", "warn",  "connection refused", "ok", "timeout",
                                    "Error", "retry", "\xff\xfe",           ""};

/* Records: the first half in time order (one per ns from 1000), the second
 * half at random times (negative too); random sources, streams, messages
 * (empty ones, embedded NULs, invalid UTF-8), long enough time values that
 * the varint of time_ns takes 9-10 bytes for some. */
static int world_setup(void **state) {
  world *w = calloc(1, sizeof(*w));
  tdir_make(&w->d);
  w->env = open_rw(&w->d, 0, 0);
  uint64_t s = 0x243f6a8885a308d3ull;
  Cairn__Record r[100], *p[100];
  for (int b = 0; b < N_RECS / 100; b++) {
    for (int i = 0; i < 100; i++) {
      int k = b * 100 + i;
      size_t n = 0;
      for (size_t wds = pick(&s, 4); wds > 0; wds--) {
        const char *wd = WORDS[pick(&s, sizeof(WORDS) / sizeof(WORDS[0]))];
        size_t l = strlen(wd);
        memcpy(w->msg[k] + n, wd, l);
        n += l;
        w->msg[k][n++] = pick(&s, 5) ? ' ' : '\0';
      }
      w->msg_len[k] = n;
      int64_t t = k < N_RECS / 2 ? 1000 + k : (int64_t)pick(&s, 4000) - 1000;
      if (k % 97 == 0) t = INT64_MIN / 2 + k; /* long varints */
      rec_fill(&r[i], t, "ns", pick(&s, 2) ? "pod-a" : "pod-b", "app", "node-a", "", 1, 0);
      r[i].message.data = (uint8_t *)w->msg[k];
      r[i].message.len = n;
      r[i].source = (Cairn__Source)(1 + pick(&s, 3));
      r[i].stream = (Cairn__LogStream)pick(&s, 3);
      r[i].file_stream = 0; /* never deduped */
      p[i] = &r[i];
    }
    assert_int_equal(put_commit(w->env, "inst", p, 100, NULL), 100);
  }
  *state = w;
  return 0;
}

static int world_teardown(void **state) {
  world *w = *state;
  sto_close(w->env);
  tdir_remove(&w->d);
  free(w);
  return 0;
}

/* The message filters the tests use: a byte that must occur / a length. */
typedef struct mf {
  int kind; /* 0: contains byte c, 1: len >= n, 2: empty */
  uint8_t c;
  size_t n;
  uint64_t calls;
} mf;

static bool mf_fn(const uint8_t *msg, size_t len, void *ud) {
  mf *m = ud;
  m->calls++;
  assert_non_null(msg);
  switch (m->kind) {
  case 0: return memchr(msg, m->c, len) != NULL;
  case 1: return len >= m->n;
  default: return len == 0;
  }
}

/* The record filter: checks that the message filter already passed r. */
typedef struct rf {
  const sto_query *q;
  uint64_t calls;
} rf;

static bool rf_fn(const Cairn__Record *r, void *ud) {
  rf *f = ud;
  f->calls++;
  if (f->q->msg_filter) {
    mf *m = f->q->msg_filter_ud;
    uint64_t before = m->calls;
    assert_true(mf_fn(r->message.data ? r->message.data : (const uint8_t *)"", r->message.len, m));
    m->calls = before;
  }
  return r->seq % 5 != 0;
}

typedef struct hit {
  int64_t t;
  uint64_t seq;
} hit;

typedef struct hits {
  hit v[N_RECS + 8];
  size_t n;
  const sto_query *q;
} hits;

static bool collect(const Cairn__Record *r, void *ud) {
  hits *h = ud;
  assert_true(h->n < N_RECS + 8);
  h->v[h->n++] = (hit){r->time_ns, r->seq};
  return true;
}

static bool collect_matching(const Cairn__Record *r, void *ud) {
  hits *h = ud;
  if (sto_query_match(h->q, r)) collect(r, ud);
  return true;
}

static int hit_cmp(const void *a, const void *b) {
  const hit *x = a, *y = b;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void random_queries_match_brute_force(void **state) {
  world *w = *state;
  uint64_t s = 0xb7e151628aed2a6bull;
  static hits got, want;
  for (int it = 0; it < 400; it++) {
    sto_query q;
    sto_query_init(&q);
    mf m = {.kind = (int)pick(&s, 3), .c = (uint8_t) "eorw\xff\0 "[pick(&s, 7)], .n = pick(&s, 30)};
    rf f = {.q = &q};
    if (pick(&s, 3)) {
      q.since_ns = (int64_t)pick(&s, 3000) - 1000;
      q.until_ns = q.since_ns + (int64_t)pick(&s, 3000);
    }
    if (!pick(&s, 3)) q.source = 1 + (int)pick(&s, 3);
    if (!pick(&s, 3)) q.stream = (int)pick(&s, 3);
    if (!pick(&s, 3)) q.grep = WORDS[pick(&s, 7)];
    if (pick(&s, 4)) {
      q.msg_filter = mf_fn;
      q.msg_filter_ud = &m;
    }
    if (!pick(&s, 3)) {
      q.filter = rf_fn;
      q.filter_ud = &f;
    }
    if (!pick(&s, 4)) q.pod = "pod-a";
    q.newest_first = pick(&s, 2);
    q.limit = pick(&s, 3) ? 0 : 1 + pick(&s, 50);

    /* expected: every record through sto_query_match, sorted, cut */
    want.n = 0;
    want.q = &q;
    assert_int_equal(sto_scan_after(w->env, 0, 0, collect_matching, &want), CAIRN_OK);
    qsort(want.v, want.n, sizeof(hit), hit_cmp);
    if (q.newest_first)
      for (size_t i = 0; i < want.n / 2; i++) {
        hit t = want.v[i];
        want.v[i] = want.v[want.n - 1 - i];
        want.v[want.n - 1 - i] = t;
      }
    if (q.limit && want.n > q.limit) want.n = q.limit;

    got.n = 0;
    m.calls = 0;
    f.calls = 0;
    sto_query_stats st;
    assert_int_equal(sto_query_run(w->env, &q, collect, &got, &st), CAIRN_OK);
    if (got.n != want.n) fail_msg("query %d: %zu records, want %zu", it, got.n, want.n);
    for (size_t i = 0; i < got.n; i++) {
      assert_int_equal(got.v[i].seq, want.v[i].seq);
      assert_int_equal(got.v[i].t, want.v[i].t);
    }
    /* the message filter runs before the record filter, which sees fewer */
    if (q.msg_filter && q.filter) assert_true(f.calls <= m.calls);
    if (q.msg_filter && !q.limit) assert_true(m.calls <= st.examined);
  }
}

/* Replace the stored bytes of record seq with v (behind storage's back, as
 * damage or another encoder would). */
static void poke(world *w, uint64_t seq, const void *v, size_t n, void *old, size_t *old_n) {
  sto_close(w->env);
  MDB_env *e;
  MDB_txn *t;
  MDB_dbi dbi;
  assert_int_equal(mdb_env_create(&e), 0);
  assert_int_equal(mdb_env_set_maxdbs(e, 16), 0);
  assert_int_equal(mdb_env_open(e, w->d.store, MDB_NOSYNC, 0600), 0);
  assert_int_equal(mdb_txn_begin(e, NULL, 0, &t), 0);
  assert_int_equal(mdb_dbi_open(t, "records", 0, &dbi), 0);
  uint8_t kb[8];
  for (int i = 0; i < 8; i++) kb[i] = (uint8_t)(seq >> (56 - 8 * i));
  MDB_val k = {8, kb}, d;
  if (old) {
    assert_int_equal(mdb_get(t, dbi, &k, &d), 0);
    assert_true(d.mv_size <= *old_n);
    memcpy(old, d.mv_data, d.mv_size);
    *old_n = d.mv_size;
  }
  d.mv_size = n;
  d.mv_data = (void *)v;
  assert_int_equal(mdb_put(t, dbi, &k, &d, 0), 0);
  assert_int_equal(mdb_txn_commit(t), 0);
  mdb_env_close(e);
  w->env = open_rw(&w->d, 0, 0);
}

static void repeated_message_field_last_wins(void **state) {
  world *w = *state;
  uint8_t buf[4096];
  size_t n = sizeof(buf) - 8;
  /* record 7 with a second message field appended: "zqz" */
  uint8_t tmp[4096];
  size_t tn = sizeof(tmp);
  poke(w, 7, "", 0, tmp, &tn); /* read the original (and blank it for now) */
  memcpy(buf, tmp, tn);
  n = tn;
  memcpy(buf + n, "\x2a\x03zqz", 5);
  n += 5;
  poke(w, 7, buf, n, NULL, NULL);
  sto_query q;
  sto_query_init(&q);
  q.grep = "zqz";
  hits *h = calloc(1, sizeof(*h));
  assert_int_equal(sto_query_run(w->env, &q, collect, h, NULL), CAIRN_OK);
  assert_int_equal(h->n, 1);
  assert_int_equal(h->v[0].seq, 7);
  /* and the original text of record 7 no longer matches (it was replaced) */
  if (w->msg_len[6] > 3) {
    char g[4] = {0};
    memcpy(g, w->msg[6], 3);
    if (strlen(g) == 3 && !memmem(buf + tn, 5, g, 3)) {
      q.grep = g;
      h->n = 0;
      assert_int_equal(sto_query_run(w->env, &q, collect, h, NULL), CAIRN_OK);
      for (size_t i = 0; i < h->n; i++) assert_int_not_equal(h->v[i].seq, 7);
    }
  }
  free(h);
  poke(w, 7, tmp, tn, NULL, NULL); /* restore */
}

static void damaged_record_is_reported(void **state) {
  world *w = *state;
  uint8_t tmp[4096];
  size_t tn = sizeof(tmp);
  static const struct {
    const char *bytes;
    size_t n;
  } bad[] = {
      {"\x0a\x05zz", 4},   /* time_ns with a length-delimited wire type */
      {"\x2a\x40zz", 4},   /* message longer than the record */
      {"\x08\xff\xff", 3}, /* cut varint */
      {"\x2b\x00", 2},     /* a group start */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    tn = sizeof(tmp);
    poke(w, 3, bad[i].bytes, bad[i].n, tmp, &tn);
    sto_query q;
    sto_query_init(&q);
    q.grep = "never-there";
    hits *h = calloc(1, sizeof(*h));
    cairn_err e = sto_query_run(w->env, &q, collect, h, NULL);
    if (e != CAIRN_E_CORRUPT)
      fail_msg("damage %zu: %s, want CAIRN_E_CORRUPT", i, cairn_err_name(e));
    free(h);
    poke(w, 3, tmp, tn, NULL, NULL);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(random_queries_match_brute_force),
      cmocka_unit_test(repeated_message_field_last_wins),
      cmocka_unit_test(damaged_record_is_reported),
      cmocka_unit_test(random_queries_match_brute_force), /* after the restores */
  };
  return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
