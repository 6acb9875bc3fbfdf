/* tests/storage/attr_query_test.c: the audit attr indexes (auditd key, auid,
 * uid, syscall, record type, exe, success; k8s user, verb, resource,
 * subresource, code) and the multi-term filters (OR within a field, prefix
 * and glob terms, stream, filter callback), checked against a brute-force
 * model of every stored record: random queries over a real LMDB, the index
 * the planner picks, index-only counts (sto_index_counts, sto_times_scan),
 * and a store that predates attr indexes (answers stay exact).
 */
#include <fnmatch.h>
#include <lmdb.h>

#include "tests/storage/sto_test_util.h"

#define N_RECS 3000
#define MAXV 8 /* values of one field in one record */

typedef struct arec {
  int64_t t;
  uint64_t seq;
  int source, stream;
  const char *ns, *pod, *container, *node;
  const char *v[STO_FIELD_COUNT_][MAXV]; /* model values per field (types split) */
  size_t nv[STO_FIELD_COUNT_];
  const char *types; /* the "types" attr as stored */
  char msg[40];
} arec;

typedef struct world {
  tdir d;
  sto_env *env;
  arec recs[N_RECS];
} world;

static const char *const KEYS[] = {"exec", "priv-esc", "identity", "time-change", "logins"};
static const char *const IDS[] = {"1000", "1001", "0", "4294967295"};
static const char *const SYSCALLS[] = {"59", "2", "257", "42"};
static const char *const TYPES[] = {"SYSCALL,EXECVE,CWD,PATH,PATH,PROCTITLE,EOE", "USER_LOGIN",
                                    "SYSCALL,PATH,EOE", "USER_AUTH", "CONFIG_CHANGE"};
static const char *const EXES[] = {"/usr/bin/ls", "/usr/bin/sudo", "/usr/sbin/sshd", "/bin/bash"};
static const char *const YN[] = {"yes", "no"};
static const char *const USERS[] = {"alice@example.com", "bob@example.com",
                                    "system:serviceaccount:kube-system:default"};
static const char *const VERBS[] = {"get", "list", "create", "delete", "patch"};
static const char *const RESOURCES[] = {"pods", "secrets", "configmaps", "deployments"};
static const char *const SUBS[] = {"exec", "log"};
static const char *const CODES[] = {"200", "201", "403", "404"};
static const char *const NSS[] = {"payments", "payment-gw", "kube-system", "dev"};
static const char *const PODS[] = {"api-0", "api-1", "db-0", "web-0"};
static const char *const NODES[] = {"node-a", "node-b"};

typedef struct pool {
  const char *const *v;
  size_t n;
} pool;

#define POOL(a) {a, sizeof(a) / sizeof(a[0])}
static const pool POOLS[STO_FIELD_COUNT_] = {
    [STO_FIELD_NAMESPACE] = POOL(NSS),     [STO_FIELD_POD] = POOL(PODS),
    [STO_FIELD_CONTAINER] = {NULL, 0},     [STO_FIELD_NODE] = POOL(NODES),
    [STO_FIELD_AUDIT_KEY] = POOL(KEYS),    [STO_FIELD_AUID] = POOL(IDS),
    [STO_FIELD_UID] = POOL(IDS),           [STO_FIELD_SYSCALL] = POOL(SYSCALLS),
    [STO_FIELD_TYPE] = {NULL, 0},          [STO_FIELD_EXE] = POOL(EXES),
    [STO_FIELD_SUCCESS] = POOL(YN),        [STO_FIELD_K8S_USER] = POOL(USERS),
    [STO_FIELD_VERB] = POOL(VERBS),        [STO_FIELD_RESOURCE] = POOL(RESOURCES),
    [STO_FIELD_SUBRESOURCE] = POOL(SUBS),  [STO_FIELD_CODE] = POOL(CODES),
};
static const char *const TYPE_NAMES[] = {"SYSCALL", "EXECVE", "PATH", "EOE", "USER_LOGIN",
                                         "USER_AUTH", "CONFIG_CHANGE", "CWD", "PROCTITLE"};

static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static size_t pick(uint64_t *s, size_t n) { return (size_t)(rng_next(s) % n); }

static void model_add(arec *e, sto_field f, const char *v) {
  if (e->nv[f] < MAXV) e->v[f][e->nv[f]++] = v;
}

/* Split the types list into the model (static strings from TYPE_NAMES). */
static void model_types(arec *e, const char *types) {
  e->types = types;
  const char *p = types;
  while (*p) {
    size_t n = strcspn(p, ",");
    for (size_t i = 0; i < sizeof(TYPE_NAMES) / sizeof(TYPE_NAMES[0]); i++)
      if (strlen(TYPE_NAMES[i]) == n && strncmp(TYPE_NAMES[i], p, n) == 0) {
        bool dup = false;
        for (size_t k = 0; k < e->nv[STO_FIELD_TYPE]; k++)
          dup |= e->v[STO_FIELD_TYPE][k] == TYPE_NAMES[i];
        if (!dup) model_add(e, STO_FIELD_TYPE, TYPE_NAMES[i]);
      }
    p += n;
    if (*p == ',') p++;
  }
}

/* Attrs of one record, built from the model. */
typedef struct attr_buf {
  Cairn__Attr a[16];
  Cairn__Attr *p[16];
  size_t n;
} attr_buf;

static void attr_put(attr_buf *b, const char *key, const char *val) {
  Cairn__Attr init = CAIRN__ATTR__INIT;
  b->a[b->n] = init;
  b->a[b->n].key = (char *)key;
  b->a[b->n].value.data = (uint8_t *)val;
  b->a[b->n].value.len = strlen(val);
  b->p[b->n] = &b->a[b->n];
  b->n++;
}

/* Record i of the model: a third auditd events, a third k8s audit events, a
 * third container lines (some with a docker attr named "key", never indexed). */
static void model_rec(arec *e, uint64_t *s, attr_buf *b) {
  memset(e->nv, 0, sizeof(e->nv));
  b->n = 0;
  e->t = (int64_t)pick(s, 500) - 50;
  e->node = NODES[pick(s, 2)];
  e->ns = e->pod = e->container = "";
  e->stream = 0;
  e->types = NULL;
  model_add(e, STO_FIELD_NODE, e->node);
  switch (pick(s, 3)) {
  case 0: {
    e->source = CAIRN__SOURCE__SOURCE_AUDIT;
    model_types(e, TYPES[pick(s, 5)]);
    attr_put(b, "types", e->types);
    size_t nk = pick(s, 3);
    for (size_t k = 0; k < nk; k++) {
      const char *key = KEYS[pick(s, 5)];
      attr_put(b, "key", key);
      bool dup = false;
      for (size_t j = 0; j < e->nv[STO_FIELD_AUDIT_KEY]; j++)
        dup |= e->v[STO_FIELD_AUDIT_KEY][j] == key;
      if (!dup) model_add(e, STO_FIELD_AUDIT_KEY, key);
    }
    const struct {
      sto_field f;
      const char *attr;
      int absent_one_in;
    } one[] = {{STO_FIELD_AUID, "auid", 5},   {STO_FIELD_UID, "uid", 5},
               {STO_FIELD_SYSCALL, "syscall", 3}, {STO_FIELD_EXE, "exe", 4},
               {STO_FIELD_SUCCESS, "success", 4}};
    for (size_t i = 0; i < 5; i++) {
      if (pick(s, (size_t)one[i].absent_one_in) == 0) continue;
      const char *v = POOLS[one[i].f].v[pick(s, POOLS[one[i].f].n)];
      attr_put(b, one[i].attr, v);
      model_add(e, one[i].f, v);
    }
    attr_put(b, "comm", "ls"); /* not indexed */
    break;
  }
  case 1: {
    e->source = CAIRN__SOURCE__SOURCE_K8S_AUDIT;
    const struct {
      sto_field f;
      const char *attr;
    } one[] = {{STO_FIELD_K8S_USER, "user"}, {STO_FIELD_VERB, "verb"},
               {STO_FIELD_RESOURCE, "resource"}, {STO_FIELD_SUBRESOURCE, "subresource"},
               {STO_FIELD_CODE, "code"}};
    for (size_t i = 0; i < 5; i++) {
      if (one[i].f == STO_FIELD_SUBRESOURCE && pick(s, 2)) continue;
      if (one[i].f == STO_FIELD_CODE && pick(s, 5) == 0) continue;
      const char *v = POOLS[one[i].f].v[pick(s, POOLS[one[i].f].n)];
      attr_put(b, one[i].attr, v);
      model_add(e, one[i].f, v);
    }
    attr_put(b, "group", "system:authenticated");
    break;
  }
  default:
    e->source = CAIRN__SOURCE__SOURCE_CONTAINER;
    e->stream = 1 + (int)pick(s, 2);
    e->ns = NSS[pick(s, 4)];
    e->pod = PODS[pick(s, 4)];
    e->container = "app";
    model_add(e, STO_FIELD_NAMESPACE, e->ns);
    model_add(e, STO_FIELD_POD, e->pod);
    model_add(e, STO_FIELD_CONTAINER, e->container);
    if (pick(s, 4) == 0) attr_put(b, "key", "exec"); /* docker label: not an audit key */
    break;
  }
}

static int world_setup(void **state) {
  world *w = calloc(1, sizeof(*w));
  tdir_make(&w->d);
  w->env = open_rw(&w->d, 0, 0);
  uint64_t s = 0x243f6a8885a308d3ull;
  static Cairn__Record r[100];
  static Cairn__Record *p[100];
  static attr_buf ab[100];
  for (int b = 0; b < N_RECS / 100; b++) {
    for (int i = 0; i < 100; i++) {
      arec *e = &w->recs[b * 100 + i];
      model_rec(e, &s, &ab[i]);
      snprintf(e->msg, sizeof(e->msg), "event %d", b * 100 + i);
      rec_fill(&r[i], e->t, e->ns, e->pod, e->container, e->node, e->msg, 0, 0);
      r[i].source = (Cairn__Source)e->source;
      r[i].stream = (Cairn__LogStream)e->stream;
      r[i].n_attrs = ab[i].n;
      r[i].attrs = ab[i].n ? ab[i].p : NULL;
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

/* ---- brute force ---- */

static bool model_term(const sto_term *t, const char *v) {
  switch (t->match) {
  case STO_MATCH_EXACT: return strcmp(t->value, v) == 0;
  case STO_MATCH_PREFIX: return strncmp(t->value, v, strlen(t->value)) == 0;
  case STO_MATCH_GLOB: return fnmatch(t->value, v, 0) == 0;
  }
  return false;
}

static bool model_matches(const arec *e, const sto_query *q) {
  if (e->t < q->since_ns || e->t >= q->until_ns) return false;
  if (q->source && e->source != q->source) return false;
  if (q->stream && e->stream != q->stream) return false;
  if (q->pod && *q->pod && strcmp(e->pod, q->pod) != 0) return false;
  if (q->kube_namespace && *q->kube_namespace && strcmp(e->ns, q->kube_namespace) != 0)
    return false;
  for (int f = 0; f < STO_FIELD_COUNT_; f++) {
    if (!q->terms[f].n) continue;
    bool any = false;
    for (size_t i = 0; i < e->nv[f] && !any; i++)
      for (size_t k = 0; k < q->terms[f].n && !any; k++)
        any = model_term(&q->terms[f].v[k], e->v[f][i]);
    if (!any) return false;
  }
  if (q->filter) {
    int idx = atoi(e->msg + 6);
    if (idx % 7 != 0) return false; /* mirrors every_seventh() */
  }
  return true;
}

static int cmp_asc(const void *a, const void *b) {
  const arec *x = *(const arec *const *)a, *y = *(const arec *const *)b;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static size_t brute_force(world *w, const sto_query *q, uint64_t *out) {
  static const arec *hits[N_RECS];
  size_t n = 0;
  for (size_t i = 0; i < N_RECS; i++)
    if (model_matches(&w->recs[i], q)) hits[n++] = &w->recs[i];
  qsort(hits, n, sizeof(hits[0]), cmp_asc);
  size_t lim = q->limit && q->limit < n ? q->limit : n;
  for (size_t i = 0; i < lim; i++) out[i] = hits[q->newest_first ? n - 1 - i : i]->seq;
  return lim;
}

/* Model index of a stored record, from its message "event N". */
static int rec_index(const Cairn__Record *r) {
  char b[40];
  snprintf(b, sizeof(b), "%.*s", (int)r->message.len, (const char *)r->message.data);
  return atoi(b + 6);
}

static bool every_seventh(const Cairn__Record *r, void *ud) {
  (void)ud;
  return rec_index(r) % 7 == 0;
}

static void check_query(world *w, const sto_query *q, sto_query_stats *st, const char *what) {
  static uint64_t want[N_RECS];
  size_t nw = brute_force(w, q, want);
  seq_list got = {0};
  assert_int_equal(sto_query_run(w->env, q, seq_list_cb, &got, st), CAIRN_OK);
  if (got.n != nw) fail_msg("%s: got %zu want %zu (index %s)", what, got.n, nw, st->index);
  for (size_t i = 0; i < nw; i++) assert_int_equal(got.v[i], want[i]);
  assert_int_equal(st->matched, nw);
  assert_true(st->examined >= st->matched);
  assert_int_equal(st->snapshot_seq, N_RECS);
  seq_list_fini(&got);
}

/* A random term for field f: exact pool value, a prefix, a glob, or a miss. */
static void random_term(uint64_t *s, sto_field f, sto_term *t, char *buf, size_t cap) {
  const pool *pl = &POOLS[f];
  const char *v = f == STO_FIELD_TYPE ? TYPE_NAMES[pick(s, 9)] : pl->v[pick(s, pl->n)];
  switch (pick(s, 6)) {
  case 0:
  case 1:
  case 2:
    t->value = v;
    t->match = STO_MATCH_EXACT;
    break;
  case 3: {
    size_t n = 1 + pick(s, strlen(v));
    snprintf(buf, cap, "%.*s", (int)n, v);
    t->value = buf;
    t->match = STO_MATCH_PREFIX;
    break;
  }
  case 4: { /* glob: literal prefix, then ? or * */
    size_t n = pick(s, strlen(v));
    snprintf(buf, cap, "%.*s%s", (int)n, v, pick(s, 2) ? "*" : "?*");
    t->value = buf;
    t->match = STO_MATCH_GLOB;
    break;
  }
  default:
    t->value = pick(s, 2) ? "nope" : "*e*"; /* absent value / leading wildcard */
    t->match = t->value[0] == '*' ? STO_MATCH_GLOB : STO_MATCH_EXACT;
    break;
  }
}

static void attr_queries_match_brute_force(void **state) {
  world *w = *state;
  uint64_t s = 777;
  for (int it = 0; it < 700; it++) {
    sto_query q;
    sto_query_init(&q);
    sto_term terms[3][3];
    char bufs[3][3][64];
    size_t nf = 1 + pick(&s, 2);
    for (size_t k = 0; k < nf; k++) {
      sto_field f = (sto_field)pick(&s, STO_FIELD_COUNT_);
      if (f == STO_FIELD_CONTAINER || q.terms[f].n) continue;
      size_t nt = 1 + pick(&s, 3);
      for (size_t j = 0; j < nt; j++) random_term(&s, f, &terms[k][j], bufs[k][j], 64);
      q.terms[f].v = terms[k];
      q.terms[f].n = nt;
    }
    if (pick(&s, 8) == 0) q.source = 1 + (int)pick(&s, 3);
    if (pick(&s, 8) == 0) q.stream = 1 + (int)pick(&s, 2);
    if (pick(&s, 8) == 0) q.pod = PODS[pick(&s, 4)];
    if (pick(&s, 10) == 0) {
      q.filter = every_seventh;
      q.filter_ud = NULL;
    }
    if (pick(&s, 2)) q.since_ns = (int64_t)pick(&s, 600) - 100;
    if (pick(&s, 2)) q.until_ns = (int64_t)pick(&s, 600) - 100;
    if (pick(&s, 2)) q.limit = 1 + pick(&s, 30);
    q.newest_first = pick(&s, 2);
    sto_query_stats st;
    char what[256];
    size_t off = (size_t)snprintf(what, sizeof(what), "iteration %d", it);
    for (int f = 0; f < STO_FIELD_COUNT_ && off < sizeof(what); f++)
      for (size_t j = 0; j < q.terms[f].n && off < sizeof(what); j++)
        off += (size_t)snprintf(what + off, sizeof(what) - off, " %s%c%s", sto_field_name((sto_field)f),
                                "=^~"[q.terms[f].v[j].match], q.terms[f].v[j].value);
    check_query(w, &q, &st, what);
  }
}

/* Entries the index of (f, value) holds, from the model. */
static uint64_t model_count(world *w, sto_field f, const char *v) {
  uint64_t n = 0;
  for (size_t i = 0; i < N_RECS; i++)
    for (size_t k = 0; k < w->recs[i].nv[f]; k++) n += strcmp(w->recs[i].v[f][k], v) == 0;
  return n;
}

static void planner_picks_the_attr_index_with_fewest_entries(void **state) {
  world *w = *state;
  sto_query q;
  sto_query_stats st;
  sto_term key = {"time-change", STO_MATCH_EXACT};
  sto_term verb[2] = {{"delete", STO_MATCH_EXACT}, {"patch", STO_MATCH_EXACT}};
  sto_query_init(&q);
  q.terms[STO_FIELD_AUDIT_KEY] = (sto_terms){&key, 1};
  check_query(w, &q, &st, "key");
  assert_string_equal(st.index, "key");
  /* only that key's entries are read */
  assert_int_equal(st.examined, model_count(w, STO_FIELD_AUDIT_KEY, "time-change"));
  assert_int_equal(st.matched, st.examined);

  /* with the source too, the smaller of the two indexes wins */
  q.source = CAIRN__SOURCE__SOURCE_AUDIT;
  check_query(w, &q, &st, "key+source");
  assert_string_equal(st.index, "key");

  /* two verbs: the union of both keys, merged in time order */
  sto_query_init(&q);
  q.terms[STO_FIELD_VERB] = (sto_terms){verb, 2};
  check_query(w, &q, &st, "verbs");
  assert_string_equal(st.index, "verb");
  assert_int_equal(st.examined,
                   model_count(w, STO_FIELD_VERB, "delete") + model_count(w, STO_FIELD_VERB, "patch"));
  q.newest_first = true;
  check_query(w, &q, &st, "verbs newest first");

  /* a prefix glob walks the keys of the range, a leading wildcard cannot */
  sto_term ns_glob = {"payment*", STO_MATCH_GLOB};
  sto_query_init(&q);
  q.terms[STO_FIELD_NAMESPACE] = (sto_terms){&ns_glob, 1};
  check_query(w, &q, &st, "namespace glob");
  assert_string_equal(st.index, "namespace");
  assert_int_equal(st.examined, model_count(w, STO_FIELD_NAMESPACE, "payments") +
                                    model_count(w, STO_FIELD_NAMESPACE, "payment-gw"));
  sto_term any_ns = {"*s*", STO_MATCH_GLOB};
  q.terms[STO_FIELD_NAMESPACE] = (sto_terms){&any_ns, 1};
  check_query(w, &q, &st, "namespace leading wildcard");
  assert_string_equal(st.index, "time");

  /* a value nobody has: no index entries to read at all */
  sto_term none = {"no-such-exe", STO_MATCH_EXACT};
  sto_query_init(&q);
  q.terms[STO_FIELD_EXE] = (sto_terms){&none, 1};
  check_query(w, &q, &st, "absent exe");
  assert_string_equal(st.index, "exe");
  assert_int_equal(st.examined, 0);
}

static void repeated_values_of_one_event_match_once(void **state) {
  world *w = *state;
  /* PATH appears twice in one event's types, keys may repeat: one result each */
  sto_term path = {"PATH", STO_MATCH_EXACT};
  sto_term keys[2] = {{"exec", STO_MATCH_EXACT}, {"priv-esc", STO_MATCH_EXACT}};
  sto_query q;
  sto_query_stats st;
  sto_query_init(&q);
  q.terms[STO_FIELD_TYPE] = (sto_terms){&path, 1};
  check_query(w, &q, &st, "type PATH");
  assert_true(st.matched > 0);
  sto_query_init(&q);
  q.terms[STO_FIELD_AUDIT_KEY] = (sto_terms){keys, 2};
  check_query(w, &q, &st, "two keys");
  q.newest_first = true;
  check_query(w, &q, &st, "two keys newest first");
}

static void docker_attr_named_key_is_not_an_audit_key(void **state) {
  world *w = *state;
  sto_term exec = {"exec", STO_MATCH_EXACT};
  sto_query q;
  sto_query_stats st;
  sto_query_init(&q);
  q.terms[STO_FIELD_AUDIT_KEY] = (sto_terms){&exec, 1};
  q.source = CAIRN__SOURCE__SOURCE_CONTAINER;
  check_query(w, &q, &st, "container + key");
  assert_int_equal(st.matched, 0);
}

typedef struct count_list {
  char v[32][64];
  uint64_t c[32];
  size_t n;
} count_list;

static bool count_cb(const uint8_t *v, size_t n, uint64_t c, void *ud) {
  count_list *l = ud;
  assert_true(l->n < 32);
  snprintf(l->v[l->n], sizeof(l->v[0]), "%.*s", (int)n, (const char *)v);
  l->c[l->n++] = c;
  return true;
}

static void index_counts_match_brute_force(void **state) {
  world *w = *state;
  const int64_t ranges[][2] = {{INT64_MIN, INT64_MAX}, {0, 200}, {-50, -10}, {300, 301}};
  for (int f = 0; f < STO_FIELD_COUNT_; f++) {
    for (size_t ri = 0; ri < 4; ri++) {
      int64_t since = ranges[ri][0], until = ranges[ri][1];
      count_list got = {.n = 0};
      uint64_t total = 0;
      assert_int_equal(sto_index_counts(w->env, (sto_field)f, since, until, count_cb, &got, &total),
                       CAIRN_OK);
      uint64_t want_total = 0;
      for (size_t i = 0; i < N_RECS; i++)
        want_total += w->recs[i].t >= since && w->recs[i].t < until;
      assert_int_equal(total, want_total);
      /* every value the model has in the range, with its count, and no other */
      size_t want_values = 0;
      const char *seen[64];
      size_t nseen = 0;
      for (size_t i = 0; i < N_RECS; i++) {
        const arec *e = &w->recs[i];
        if (e->t < since || e->t >= until) continue;
        for (size_t k = 0; k < e->nv[f]; k++) {
          bool dup = false;
          for (size_t j = 0; j < nseen; j++) dup |= strcmp(seen[j], e->v[f][k]) == 0;
          if (dup) continue;
          seen[nseen++] = e->v[f][k];
          want_values++;
          uint64_t want = 0;
          for (size_t x = 0; x < N_RECS; x++) {
            const arec *o = &w->recs[x];
            if (o->t < since || o->t >= until) continue;
            for (size_t y = 0; y < o->nv[f]; y++) want += strcmp(o->v[f][y], e->v[f][k]) == 0;
          }
          bool found = false;
          for (size_t j = 0; j < got.n; j++)
            if (strcmp(got.v[j], e->v[f][k]) == 0) {
              if (got.c[j] != want) fail_msg("field %s value %s: %llu != %llu", sto_field_name((sto_field)f), e->v[f][k], (unsigned long long)got.c[j], (unsigned long long)want);
              found = true;
            }
          if (!found) fail_msg("field %s value %s missing", sto_field_name((sto_field)f), e->v[f][k]);
        }
      }
      assert_int_equal(got.n, want_values);
    }
  }
}

typedef struct time_list {
  int64_t v[N_RECS];
  size_t n;
} time_list;

static bool time_cb(int64_t t, void *ud) {
  time_list *l = ud;
  assert_true(l->n < N_RECS);
  l->v[l->n++] = t;
  return true;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static void times_scan_yields_every_time_in_range_ascending(void **state) {
  world *w = *state;
  static time_list got, want;
  got.n = want.n = 0;
  assert_int_equal(sto_times_scan(w->env, 10, 400, time_cb, &got), CAIRN_OK);
  for (size_t i = 0; i < N_RECS; i++)
    if (w->recs[i].t >= 10 && w->recs[i].t < 400) want.v[want.n++] = w->recs[i].t;
  qsort(want.v, want.n, sizeof(int64_t), cmp_i64);
  assert_int_equal(got.n, want.n);
  assert_memory_equal(got.v, want.v, want.n * sizeof(int64_t));
}

typedef struct match_ctx {
  const sto_query *q;
  world *w;
  size_t matched;
} match_ctx;

static bool match_cb(const Cairn__Record *r, void *ud) {
  match_ctx *c = ud;
  const arec *e = &c->w->recs[rec_index(r)];
  assert_int_equal(sto_query_match(c->q, r), model_matches(e, c->q));
  c->matched += sto_query_match(c->q, r);
  return true;
}

static void query_match_agrees_with_the_model_on_every_record(void **state) {
  world *w = *state;
  sto_term code = {"40?", STO_MATCH_GLOB};
  sto_term user = {"alice@", STO_MATCH_PREFIX};
  sto_query q;
  sto_query_init(&q);
  q.terms[STO_FIELD_CODE] = (sto_terms){&code, 1};
  q.terms[STO_FIELD_K8S_USER] = (sto_terms){&user, 1};
  q.since_ns = 0;
  match_ctx c = {&q, w, 0};
  assert_int_equal(sto_scan_after(w->env, 0, 0, match_cb, &c), CAIRN_OK);
  sto_query_stats st;
  check_query(w, &q, &st, "code+user");
  assert_int_equal(c.matched, st.matched);
  assert_true(c.matched > 0);
}

static void null_term_value_is_rejected(void **state) {
  world *w = *state;
  sto_term bad = {NULL, STO_MATCH_EXACT};
  sto_query q;
  sto_query_init(&q);
  q.terms[STO_FIELD_VERB] = (sto_terms){&bad, 1};
  seq_list got = {0};
  assert_int_equal(sto_query_run(w->env, &q, seq_list_cb, &got, NULL), CAIRN_E_INVAL);
  assert_int_equal(got.n, 0);
}

/* Set meta attr_idx_from of the closed store in dir directly with LMDB, as
 * a store written before attr indexes existed would have it. */
static void set_attr_idx_from(const char *dir, uint64_t v) {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi meta;
  assert_int_equal(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 16);
  assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
  uint8_t b[8];
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (56 - 8 * i));
  MDB_val k = {13, (void *)"attr_idx_from"}, d = {8, b};
  assert_int_equal(mdb_put(txn, meta, &k, &d, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

static void store_without_full_attr_index_answers_by_checking_records(void **state) {
  world *w = *state;
  sto_close(w->env);
  set_attr_idx_from(w->d.store, 1500); /* as if upgraded half way */
  w->env = open_rw(&w->d, 0, 0);
  sto_term key = {"exec", STO_MATCH_EXACT};
  sto_query q;
  sto_query_stats st;
  sto_query_init(&q);
  q.terms[STO_FIELD_AUDIT_KEY] = (sto_terms){&key, 1};
  check_query(w, &q, &st, "key in an upgraded store");
  assert_string_equal(st.index, "time");
  assert_true(st.matched > 0);
  q.source = CAIRN__SOURCE__SOURCE_AUDIT;
  check_query(w, &q, &st, "key+source in an upgraded store");
  assert_string_equal(st.index, "source");
  count_list got = {.n = 0};
  assert_int_equal(sto_index_counts(w->env, STO_FIELD_AUDIT_KEY, INT64_MIN, INT64_MAX, count_cb,
                                    &got, NULL),
                   CAIRN_E_NOTFOUND);
  /* the Record-field indexes always cover every record */
  assert_int_equal(sto_index_counts(w->env, STO_FIELD_NODE, INT64_MIN, INT64_MAX, count_cb, &got,
                                    NULL),
                   CAIRN_OK);
  sto_close(w->env);
  set_attr_idx_from(w->d.store, 1);
  w->env = open_rw(&w->d, 0, 0);
}

static void new_store_stamps_attr_index_from_its_first_record(void **state) {
  (void)state;
  tdir d;
  tdir_make(&d);
  sto_env *env = open_rw(&d, 0, 0);
  Cairn__Record r;
  Cairn__Record *p = &r;
  Cairn__Attr a = CAIRN__ATTR__INIT, *ap = &a;
  a.key = (char *)"verb";
  a.value.data = (uint8_t *)"get";
  a.value.len = 3;
  rec_fill(&r, 5, "", "", "", "n", "x", 0, 0);
  r.source = CAIRN__SOURCE__SOURCE_K8S_AUDIT;
  r.attrs = &ap;
  r.n_attrs = 1;
  assert_int_equal(put_commit(env, "i", &p, 1, NULL), 1);
  sto_term get = {"get", STO_MATCH_EXACT};
  sto_query q;
  sto_query_stats st;
  sto_query_init(&q);
  q.terms[STO_FIELD_VERB] = (sto_terms){&get, 1};
  seq_list got = {0};
  assert_int_equal(sto_query_run(env, &q, seq_list_cb, &got, &st), CAIRN_OK);
  assert_string_equal(st.index, "verb");
  assert_int_equal(got.n, 1);
  seq_list_fini(&got);
  sto_close(env);
  tdir_remove(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(attr_queries_match_brute_force),
      cmocka_unit_test(planner_picks_the_attr_index_with_fewest_entries),
      cmocka_unit_test(repeated_values_of_one_event_match_once),
      cmocka_unit_test(docker_attr_named_key_is_not_an_audit_key),
      cmocka_unit_test(index_counts_match_brute_force),
      cmocka_unit_test(times_scan_yields_every_time_in_range_ascending),
      cmocka_unit_test(query_match_agrees_with_the_model_on_every_record),
      cmocka_unit_test(null_term_value_is_rejected),
      cmocka_unit_test(store_without_full_attr_index_answers_by_checking_records),
  };
  const struct CMUnitTest alone[] = {
      cmocka_unit_test(new_store_stamps_attr_index_from_its_first_record),
  };
  int rc = cmocka_run_group_tests(tests, world_setup, world_teardown);
  return rc | cmocka_run_group_tests(alone, NULL, NULL);
}
