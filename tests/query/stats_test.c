/* tests/query/stats_test.c: `cairn-query stats --by / --histogram` against
 * a generated store: group counts and time buckets checked against brute
 * force over the model, both from the indexes alone (no filter) and from a
 * filtered scan; the text table (header, bars, --top cut), CSV, and the
 * filtered record count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "tests/query/audit_fixture.h"

static int setup(void **state) {
  ax_store *s = calloc(1, sizeof(*s));
  if (!s || ax_build(s) != 0) return -1;
  *state = s;
  return 0;
}

static int teardown(void **state) {
  ax_destroy(*state);
  free(*state);
  return 0;
}

/* Values of group `by` in model record r (distinct); returns the count. */
static size_t values(const ax_rec *r, const char *by, const char **out) {
  size_t n = 0;
#define ONE(cond, v)              \
  do {                            \
    if ((cond) && (v)) out[n++] = (v); \
  } while (0)
  if (!strcmp(by, "namespace")) ONE(r->kind == AX_CONTAINER, r->ns);
  if (!strcmp(by, "node")) ONE(1, r->node);
  if (!strcmp(by, "source"))
    ONE(1, r->kind == AX_AUDITD ? "audit" : r->kind == AX_K8S ? "k8s-audit" : "container");
  if (!strcmp(by, "stream"))
    ONE(r->kind == AX_CONTAINER,
        r->stream == CAIRN__LOG_STREAM__LOG_STREAM_STDERR ? "stderr" : "stdout");
  if (!strcmp(by, "key")) {
    ONE(r->kind == AX_AUDITD, r->key1);
    ONE(r->kind == AX_AUDITD, r->key2);
  }
  if (!strcmp(by, "verb")) ONE(r->kind == AX_K8S, r->verb);
  if (!strcmp(by, "user")) ONE(r->kind == AX_K8S, r->user);
  if (!strcmp(by, "code")) ONE(r->kind == AX_K8S, r->code);
  if (!strcmp(by, "decision")) ONE(r->kind == AX_K8S, r->decision);
  if (!strcmp(by, "auid")) ONE(r->kind == AX_AUDITD, r->auid);
  if (!strcmp(by, "type") && r->kind == AX_AUDITD) {
    static const char *const names[] = {"SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE", "EOE",
                                        "USER_LOGIN", "USER_AUTH"};
    for (size_t i = 0; i < 8; i++) {
      /* whole comma-separated element */
      const char *p = r->types;
      size_t l = strlen(names[i]);
      while ((p = strstr(p, names[i]))) {
        bool start = p == r->types || p[-1] == ',';
        bool end = p[l] == ',' || p[l] == 0;
        if (start && end) {
          out[n++] = names[i];
          break;
        }
        p += l;
      }
    }
  }
#undef ONE
  return n;
}

/* Compare `stats --by by [extra...] --output json --top 0` with the model
 * restricted to records where keep(r) holds. */
static void check_by(ax_store *s, const char *by, bool (*keep)(const ax_rec *), const char *extra1,
                     const char *extra2) {
  const char *args[16] = {"stats", "--data", s->data, "--by", by, "--output", "json", "--top", "0"};
  size_t na = 9;
  if (extra1) args[na++] = extra1;
  if (extra2) args[na++] = extra2;
  args[na] = NULL;
  fx_result r = fx_runv(NULL, args);
  /* model counts */
  const char *vals[64];
  uint64_t counts[64];
  size_t nv = 0, total = 0;
  for (int i = 0; i < AX_N; i++) {
    if (!keep(&s->r[i])) continue;
    total++;
    const char *v[8];
    size_t k = values(&s->r[i], by, v);
    for (size_t j = 0; j < k; j++) {
      size_t x = 0;
      while (x < nv && strcmp(vals[x], v[j]) != 0) x++;
      if (x == nv) {
        vals[nv] = v[j];
        counts[nv++] = 0;
      }
      counts[x]++;
    }
  }
  assert_int_equal(r.rc, total ? 0 : 1);
  size_t lines = 0, seen = 0;
  const char *p = r.out;
  uint64_t prev = UINT64_MAX;
  while (*p) {
    const char *nl = strchr(p, '\n');
    json_error_t je;
    json_t *j = json_loadb(p, (size_t)(nl - p), 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "by")), by);
    json_t *v = json_object_get(j, "value");
    if (v) {
      uint64_t c = (uint64_t)json_integer_value(json_object_get(j, "count"));
      assert_true(c <= prev); /* largest first */
      prev = c;
      size_t x = 0;
      while (x < nv && strcmp(vals[x], json_string_value(v)) != 0) x++;
      if (x == nv) fail_msg("--by %s: unexpected value %s", by, json_string_value(v));
      if (counts[x] != c)
        fail_msg("--by %s %s: value %s count %llu, want %llu", by, extra1 ? extra1 : "",
                 vals[x], (unsigned long long)c, (unsigned long long)counts[x]);
      seen++;
    } else {
      assert_int_equal(json_integer_value(json_object_get(j, "total")), total);
      assert_int_equal(json_integer_value(json_object_get(j, "values")), nv);
    }
    json_decref(j);
    lines++;
    p = nl + 1;
  }
  assert_int_equal(seen, nv);
  assert_int_equal(lines, nv + 1);
  fx_result_free(&r);
}

static bool all(const ax_rec *r) { return r != NULL; }
static bool on_node_b(const ax_rec *r) { return strcmp(r->node, "node-b") == 0; }
static bool after_first_hour(const ax_rec *r) { return r->time_ns >= AX_T0 + 3600LL * 1000000000LL; }

static void stats_by_field_matches_brute_force_from_the_indexes(void **state) {
  const char *fields[] = {"namespace", "node", "key", "verb", "user", "code", "type", "auid"};
  for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
    check_by(*state, fields[i], all, NULL, NULL);
    check_by(*state, fields[i], after_first_hour, "--since", "2024-01-15T01:00:00Z");
  }
}

static void stats_by_field_matches_brute_force_with_filters(void **state) {
  const char *fields[] = {"namespace", "source", "stream", "key", "verb", "decision", "type"};
  for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
    check_by(*state, fields[i], on_node_b, "--node", "node-b");
}

/* Histogram: JSON buckets vs the model. */
static void check_histogram(ax_store *s, const char *const *args, int64_t bucket, int64_t since,
                            int64_t until, bool (*keep)(const ax_rec *)) {
  fx_result r = fx_runv(NULL, args);
  assert_int_equal(r.rc, 0);
  int64_t first = INT64_MAX, last = INT64_MIN;
  for (int i = 0; i < AX_N; i++) {
    const ax_rec *m = &s->r[i];
    if (!keep(m) || m->time_ns < since || m->time_ns >= until) continue;
    int64_t b = m->time_ns / bucket * bucket;
    if (b < first) first = b;
    if (b > last) last = b;
  }
  if (since != INT64_MIN) first = since / bucket * bucket;
  if (until != INT64_MAX) last = (until - 1) / bucket * bucket;
  size_t want_n = (size_t)((last - first) / bucket + 1), n = 0;
  const char *p = r.out;
  while (*p) {
    const char *nl = strchr(p, '\n');
    json_error_t je;
    json_t *j = json_loadb(p, (size_t)(nl - p), 0, &je);
    assert_non_null(j);
    int64_t start = json_integer_value(json_object_get(j, "bucket_ns"));
    assert_int_equal(start, first + (int64_t)n * bucket);
    uint64_t want = 0;
    for (int i = 0; i < AX_N; i++) {
      const ax_rec *m = &s->r[i];
      want += keep(m) && m->time_ns >= since && m->time_ns < until && m->time_ns >= start &&
              m->time_ns < start + bucket;
    }
    assert_int_equal(json_integer_value(json_object_get(j, "count")), want);
    json_decref(j);
    n++;
    p = nl + 1;
  }
  assert_int_equal(n, want_n);
  fx_result_free(&r);
}

static bool is_audit(const ax_rec *r) { return r->kind == AX_AUDITD; }

static void stats_histogram_matches_brute_force(void **state) {
  ax_store *s = *state;
  const int64_t H = 3600LL * 1000000000LL;
  check_histogram(s, (const char *const[]){"stats", "--data", s->data, "--histogram", "1h",
                                           "--output", "json", NULL},
                  H, INT64_MIN, INT64_MAX, all);
  check_histogram(s, (const char *const[]){"stats", "--data", s->data, "--histogram", "15m",
                                           "--source", "audit", "--output", "json", NULL},
                  H / 4, INT64_MIN, INT64_MAX, is_audit);
  /* the asked range is covered, empty buckets included */
  check_histogram(s, (const char *const[]){"stats", "--data", s->data, "--histogram", "2h",
                                           "--since", "2024-01-14T20:00:00Z", "--until",
                                           "2024-01-15T13:00:00Z", "--output", "json", NULL},
                  2 * H, AX_T0 - 4 * H, AX_T0 + 13 * H, all);
}

static void stats_text_table_has_header_bars_and_top_cut(void **state) {
  ax_store *s = *state;
  fx_result r = FX_RUN(NULL, "stats", "--data", s->data, "--by", "verb", "--top", "2");
  assert_int_equal(r.rc, 0);
  assert_true(strncmp(r.out, "verb", 4) == 0);
  assert_non_null(strstr(r.out, "count"));
  assert_non_null(strstr(r.out, "########################################\n")); /* full bar */
  assert_non_null(strstr(r.out, "(3 more values with 120 records; --top 0 shows all)"));
  assert_non_null(strstr(r.out, "600 records, 5 distinct verb values"));
  /* columns aligned: every row has its count ending at the same column */
  const char *l2 = strchr(r.out, '\n') + 1;
  const char *l3 = strchr(l2, '\n') + 1;
  assert_int_equal(strchr(l2, '%') - l2, strchr(l3, '%') - l3);
  fx_result_free(&r);

  r = FX_RUN(NULL, "stats", "--data", s->data, "--histogram", "1d");
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "2024-01-15T00:00:00Z   600 ####"));
  assert_non_null(strstr(r.out, "600 records in 1 buckets of 86400 s"));
  fx_result_free(&r);
}

static void stats_csv_and_filtered_count(void **state) {
  ax_store *s = *state;
  fx_result r = FX_RUN(NULL, "stats", "--data", s->data, "--by", "decision", "--output", "csv");
  assert_int_equal(r.rc, 0);
  assert_string_equal(r.out, "decision,count\r\nallow,150\r\nforbid,50\r\n");
  fx_result_free(&r);
  r = FX_RUN(NULL, "stats", "--data", s->data, "--status", "403");
  assert_int_equal(r.rc, 0);
  assert_string_equal(r.out, "records   50\n");
  fx_result_free(&r);
  r = FX_RUN(NULL, "stats", "--data", s->data, "--verb", "nope", "--by", "user");
  assert_int_equal(r.rc, 1);
  fx_result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(stats_by_field_matches_brute_force_from_the_indexes),
      cmocka_unit_test(stats_by_field_matches_brute_force_with_filters),
      cmocka_unit_test(stats_histogram_matches_brute_force),
      cmocka_unit_test(stats_text_table_has_header_bars_and_top_cut),
      cmocka_unit_test(stats_csv_and_filtered_count),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
