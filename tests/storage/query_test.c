/* tests/storage/query_test.c: the query planner and index scans against a
 * real LMDB, checked against a brute-force filter over an in-memory copy of
 * every stored record (random filter combinations, time ranges, limits, both
 * orders, grep), plus the index choice and the entries examined.
 */
#include "tests/storage/sto_test_util.h"

#define N_RECS 3000

typedef struct exp_rec {
  int64_t t;
  uint64_t seq;
  const char *ns, *pod, *container, *node;
  int source;
  char msg[48];
} exp_rec;

typedef struct world {
  tdir d;
  sto_env *env;
  exp_rec recs[N_RECS];
  char long_pod[2][320]; /* same first 300 bytes: share a truncated idx key */
} world;

static const char *const NSS[] = {"default", "prod", "kube-system", ""};
static const char *const CONTAINERS[] = {"app", "sidecar", "init", ""};
static const char *const NODES[] = {"node-a", "node-b", "node-c"};
static const char *const WORDS[] = {"alpha", "beta", "gamma", "delta", "omega"};
static const char *PODS[10];

static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static size_t pick(uint64_t *s, size_t n) { return (size_t)(rng_next(s) % n); }

static int world_setup(void **state) {
  world *w = calloc(1, sizeof(*w));
  tdir_make(&w->d);
  for (int i = 0; i < 2; i++) {
    memset(w->long_pod[i], 'x', 300);
    snprintf(w->long_pod[i] + 300, 20, "-tail%d", i);
  }
  static const char *const short_pods[] = {"web-0", "web-1", "web-2", "web-3", "db-0",
                                           "db-1",  "cache", ""};
  for (int i = 0; i < 8; i++) PODS[i] = short_pods[i];
  PODS[8] = w->long_pod[0];
  PODS[9] = w->long_pod[1];

  w->env = open_rw(&w->d, 0, 0);
  uint64_t s = 0x9e3779b97f4a7c15ull;
  Cairn__Record r[100], *p[100];
  for (int b = 0; b < N_RECS / 100; b++) {
    for (int i = 0; i < 100; i++) {
      exp_rec *e = &w->recs[b * 100 + i];
      e->t = (int64_t)pick(&s, 600) - 100; /* collisions and negative times */
      e->ns = NSS[pick(&s, 4)];
      e->pod = PODS[pick(&s, 10)];
      e->container = CONTAINERS[pick(&s, 4)];
      e->node = NODES[pick(&s, 3)];
      e->source = (int)pick(&s, 4); /* 0 = unknown, not indexed */
      snprintf(e->msg, sizeof(e->msg), "line %d %s", b * 100 + i, WORDS[pick(&s, 5)]);
      rec_fill(&r[i], e->t, e->ns, e->pod, e->container, e->node, e->msg, 0, 0);
      r[i].source = (Cairn__Source)e->source;
      p[i] = &r[i];
    }
    assert_int_equal(put_commit(w->env, "inst", p, 100, NULL), 100);
    for (int i = 0; i < 100; i++) w->recs[b * 100 + i].seq = r[i].seq;
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

static bool str_match(const char *field, const char *want) {
  return !want || !*want || strcmp(field, want) == 0;
}

static bool exp_matches(const exp_rec *e, const sto_query *q) {
  return e->t >= q->since_ns && e->t < q->until_ns && str_match(e->ns, q->kube_namespace) &&
         str_match(e->pod, q->pod) && str_match(e->container, q->container) &&
         str_match(e->node, q->node) && (!q->source || e->source == q->source) &&
         (!q->grep || !*q->grep || strstr(e->msg, q->grep));
}

static int cmp_asc(const void *a, const void *b) {
  const exp_rec *x = *(const exp_rec *const *)a, *y = *(const exp_rec *const *)b;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Expected seqs of q in order, limit applied. Returns the count. */
static size_t brute_force(world *w, const sto_query *q, uint64_t *out) {
  static const exp_rec *hits[N_RECS];
  size_t n = 0;
  for (size_t i = 0; i < N_RECS; i++)
    if (exp_matches(&w->recs[i], q)) hits[n++] = &w->recs[i];
  qsort(hits, n, sizeof(hits[0]), cmp_asc);
  size_t lim = q->limit && q->limit < n ? q->limit : n;
  for (size_t i = 0; i < lim; i++) out[i] = hits[q->newest_first ? n - 1 - i : i]->seq;
  return lim;
}

static void check_query(world *w, const sto_query *q, sto_query_stats *st) {
  static uint64_t want[N_RECS];
  size_t nw = brute_force(w, q, want);
  seq_list got = {0};
  assert_int_equal(sto_query_run(w->env, q, seq_list_cb, &got, st), CAIRN_OK);
  if (got.n != nw)
    fail_msg("query pod=%.20s ns=%s c=%s node=%s src=%d grep=%s [%lld,%lld) lim=%zu nf=%d: "
             "got %zu want %zu",
             q->pod ? q->pod : "-", q->kube_namespace ? q->kube_namespace : "-",
             q->container ? q->container : "-", q->node ? q->node : "-", q->source,
             q->grep ? q->grep : "-", (long long)q->since_ns, (long long)q->until_ns, q->limit,
             q->newest_first, got.n, nw);
  for (size_t i = 0; i < nw; i++) assert_int_equal(got.v[i], want[i]);
  assert_int_equal(st->matched, nw);
  assert_true(st->examined >= st->matched);
  seq_list_fini(&got);
}

static void query_matches_brute_force_for_random_filters(void **state) {
  world *w = *state;
  uint64_t s = 12345;
  for (int i = 0; i < 600; i++) {
    sto_query q;
    sto_query_init(&q);
    if (pick(&s, 3) == 0) q.pod = PODS[pick(&s, 10)];
    if (pick(&s, 3) == 0) q.kube_namespace = NSS[pick(&s, 4)];
    if (pick(&s, 3) == 0) q.container = CONTAINERS[pick(&s, 4)];
    if (pick(&s, 4) == 0) q.node = NODES[pick(&s, 3)];
    if (pick(&s, 4) == 0) q.source = (int)pick(&s, 4);
    if (pick(&s, 4) == 0) q.grep = WORDS[pick(&s, 5)];
    if (pick(&s, 2)) q.since_ns = (int64_t)pick(&s, 700) - 150;
    if (pick(&s, 2)) q.until_ns = (int64_t)pick(&s, 700) - 150;
    if (pick(&s, 2)) q.limit = 1 + pick(&s, 40);
    q.newest_first = pick(&s, 2);
    sto_query_stats st;
    check_query(w, &q, &st);
  }
}

static void query_empty_filter_returns_everything_in_time_order(void **state) {
  world *w = *state;
  sto_query q;
  sto_query_init(&q);
  sto_query_stats st;
  check_query(w, &q, &st);
  assert_string_equal(st.index, "time");
  assert_int_equal(st.matched, N_RECS);
  assert_int_equal(st.examined, N_RECS);
  q.newest_first = true;
  check_query(w, &q, &st);
  q.since_ns = 10;
  q.until_ns = 10;
  check_query(w, &q, &st);
  assert_int_equal(st.matched, 0);
}

static void query_reports_index_by_selectivity_order(void **state) {
  world *w = *state;
  sto_query q;
  sto_query_stats st;
  sto_query_init(&q);
  q.source = CAIRN__SOURCE__SOURCE_AUDIT;
  check_query(w, &q, &st);
  assert_string_equal(st.index, "source");
  q.node = "node-a";
  check_query(w, &q, &st);
  assert_string_equal(st.index, "node");
  q.kube_namespace = "prod";
  check_query(w, &q, &st);
  assert_string_equal(st.index, "namespace");
  q.container = "app";
  check_query(w, &q, &st);
  assert_string_equal(st.index, "container");
  q.pod = "web-1";
  check_query(w, &q, &st);
  assert_string_equal(st.index, "pod");
  q.pod = ""; /* empty = any: falls back to the next index */
  check_query(w, &q, &st);
  assert_string_equal(st.index, "container");
}

static void pod_query_examines_only_that_pods_entries(void **state) {
  world *w = *state;
  sto_query q;
  sto_query_init(&q);
  q.pod = "web-3";
  q.since_ns = 0;
  q.until_ns = 250;
  q.grep = "gamma";
  uint64_t in_range = 0;
  for (size_t i = 0; i < N_RECS; i++)
    if (strcmp(w->recs[i].pod, "web-3") == 0 && w->recs[i].t >= 0 && w->recs[i].t < 250)
      in_range++;
  assert_true(in_range > 10);
  sto_query_stats st;
  check_query(w, &q, &st);
  assert_string_equal(st.index, "pod");
  assert_int_equal(st.examined, in_range);
  assert_true(st.matched < in_range);
  q.newest_first = true;
  check_query(w, &q, &st);
  assert_int_equal(st.examined, in_range);
}

static void query_limit_stops_the_scan_early(void **state) {
  world *w = *state;
  sto_query q;
  sto_query_init(&q);
  q.pod = "db-0";
  q.limit = 5;
  sto_query_stats st;
  check_query(w, &q, &st);
  assert_int_equal(st.matched, 5);
  assert_int_equal(st.examined, 5);
  q.newest_first = true;
  check_query(w, &q, &st);
  assert_int_equal(st.examined, 5);
}

static void query_with_truncated_pod_key_stays_exact(void **state) {
  world *w = *state;
  sto_query q;
  sto_query_init(&q);
  q.pod = w->long_pod[1];
  uint64_t both = 0;
  for (size_t i = 0; i < N_RECS; i++)
    if (w->recs[i].pod == w->long_pod[0] || w->recs[i].pod == w->long_pod[1]) both++;
  sto_query_stats st;
  check_query(w, &q, &st);
  assert_string_equal(st.index, "pod");
  assert_int_equal(st.examined, both); /* shared idx key: both pods scanned */
  assert_true(st.matched > 0 && st.matched < both);
}

static bool stop_after_first(const Cairn__Record *r, void *ud) {
  (void)r;
  (*(int *)ud)++;
  return false;
}

static void callback_returning_false_stops_without_error(void **state) {
  world *w = *state;
  sto_query q;
  sto_query_init(&q);
  int calls = 0;
  sto_query_stats st;
  assert_int_equal(sto_query_run(w->env, &q, stop_after_first, &calls, &st), CAIRN_OK);
  assert_int_equal(calls, 1);
  assert_int_equal(st.matched, 1);
  calls = 0;
  assert_int_equal(sto_scan_after(w->env, 0, 0, stop_after_first, &calls), CAIRN_OK);
  assert_int_equal(calls, 1);
}

static void query_on_read_only_env_sees_committed_data(void **state) {
  world *w = *state;
  sto_close(w->env);
  w->env = open_ro(&w->d);
  sto_query q;
  sto_query_init(&q);
  q.kube_namespace = "kube-system";
  q.newest_first = true;
  q.limit = 17;
  sto_query_stats st;
  check_query(w, &q, &st);
  assert_int_equal(st.matched, 17);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(query_matches_brute_force_for_random_filters, world_setup, world_teardown),
      cmocka_unit_test_setup_teardown(query_empty_filter_returns_everything_in_time_order, world_setup, world_teardown),
      cmocka_unit_test_setup_teardown(query_reports_index_by_selectivity_order, world_setup, world_teardown),
      cmocka_unit_test_setup_teardown(pod_query_examines_only_that_pods_entries, world_setup, world_teardown),
      cmocka_unit_test_setup_teardown(query_limit_stops_the_scan_early, world_setup, world_teardown),
      cmocka_unit_test_setup_teardown(query_with_truncated_pod_key_stays_exact, world_setup, world_teardown),
      cmocka_unit_test_setup_teardown(callback_returning_false_stops_without_error, world_setup, world_teardown),
      cmocka_unit_test_setup_teardown(query_on_read_only_env_sees_committed_data, world_setup, world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
