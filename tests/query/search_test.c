/* tests/query/search_test.c: `cairn-query search` and `stats` end to end
 * against a real LMDB store: every filter, the time range (absolute and
 * relative), order and limit are compared with a brute-force model of the
 * stored records; the three output formats are parsed back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "tests/query/fixture.h"

static fx_store *store(void **state) { return *state; }

static int group_setup(void **state) {
  fx_store *f = calloc(1, sizeof(*f));
  if (!f || fx_build(f) != 0) {
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

static int group_teardown(void **state) {
  fx_destroy(*state);
  free(*state);
  return 0;
}

/* Run a text search (extra args after "search --data DIR") and check the
 * printed records are exactly want[0..nwant) in that order. */
static void check_text(fx_store *f, const int64_t *want, size_t nwant, const char *const *extra) {
  const char *args[40] = {"search", "--data", fx_data(f)};
  int n = 3;
  for (int i = 0; extra[i]; i++) args[n++] = extra[i];
  args[n] = NULL;
  fx_result r = fx_runv(NULL, args);
  assert_int_equal(r.rc, nwant ? 0 : 1);
  assert_int_equal(r.err_len, 0);
  int64_t got[FX_N];
  size_t ngot = fx_text_times(r.out, got, FX_N);
  assert_int_equal(ngot, nwant);
  for (size_t i = 0; i < nwant; i++) assert_int_equal(got[i], want[i]);
  fx_result_free(&r);
}

#define CHECK_TEXT(f, q, oldest, limit, ...)                                                      \
  do {                                                                                          \
    int64_t want_[FX_N];                                                                        \
    size_t n_ = fx_expect((f), (q), (oldest), (limit), want_);                                  \
    check_text((f), want_, n_, (const char *const[]){__VA_ARGS__, NULL});                       \
  } while (0)

static void search_pod_filter_returns_exactly_the_pods_records(void **state) {
  fx_filter q = fx_any();
  q.pod = "api-1";
  assert_true(fx_count(store(state), &q) > 60); /* in all three namespaces */
  CHECK_TEXT(store(state), &q, false, 0, "--pod", "api-1", "--limit", "0");
}

static void search_namespace_and_container_filters_combine(void **state) {
  fx_filter q = fx_any();
  q.ns = "staging";
  q.container = "sidecar";
  assert_true(fx_count(store(state), &q) > 0);
  CHECK_TEXT(store(state), &q, false, 0, "--namespace", "staging", "--container", "sidecar",
             "--limit", "0");
  q.pod = "db-0";
  CHECK_TEXT(store(state), &q, true, 0, "--namespace=staging", "--container=sidecar",
             "--pod=db-0", "--limit=0", "--oldest-first");
}

static void search_node_and_source_filters(void **state) {
  fx_filter q = fx_any();
  q.source = CAIRN__SOURCE__SOURCE_AUDIT;
  assert_int_equal(fx_count(store(state), &q), FX_N / 9);
  CHECK_TEXT(store(state), &q, false, 0, "--source", "audit", "--limit", "0");
  q.node = "node-b";
  CHECK_TEXT(store(state), &q, false, 0, "--source", "audit", "--node", "node-b", "--limit", "0");
  q = fx_any();
  q.source = CAIRN__SOURCE__SOURCE_CONTAINER;
  q.node = "node-a";
  CHECK_TEXT(store(state), &q, false, 0, "--node", "node-a", "--source", "container", "--limit",
             "0");
}

static void search_grep_matches_message_substring(void **state) {
  fx_filter q = fx_any();
  q.grep = "ERROR";
  size_t n = fx_count(store(state), &q);
  assert_true(n > 20 && n < FX_N / 2);
  CHECK_TEXT(store(state), &q, false, 0, "--grep", "ERROR", "--limit", "0");
  q.ns = "prod";
  CHECK_TEXT(store(state), &q, false, 0, "--grep", "ERROR", "--namespace", "prod", "--limit", "0");
}

static void search_since_until_absolute_times(void **state) {
  /* 01:00:00 .. 02:00:00 UTC, the until side exclusive */
  fx_filter q = fx_any();
  q.since = FX_T0 + 3600LL * 1000000000LL;
  q.until = FX_T0 + 7200LL * 1000000000LL;
  CHECK_TEXT(store(state), &q, false, 0, "--since", "2024-01-15T01:00:00Z", "--until",
             "2024-01-15T02:00:00Z", "--limit", "0");
  /* offsets are applied: 03:00+02:00 is 01:00Z */
  CHECK_TEXT(store(state), &q, true, 0, "--since", "2024-01-15T03:00:00+02:00", "--until",
             "2024-01-15T02:00:00.000000000Z", "--limit", "0", "--oldest-first");
  /* a date is midnight UTC: everything is on the 15th */
  q = fx_any();
  q.since = FX_T0;
  q.until = FX_T0 + 86400LL * 1000000000LL;
  assert_int_equal(fx_count(store(state), &q), FX_N);
  CHECK_TEXT(store(state), &q, false, 0, "--since", "2024-01-15", "--until", "2024-01-16",
             "--limit", "0");
}

static void search_since_relative_counts_back_from_now(void **state) {
  fx_filter q = fx_any();
  q.since = FX_NOW - 2 * 3600LL * 1000000000LL; /* --since 2h */
  q.until = FX_NOW - 90LL * 60 * 1000000000LL;  /* --until 90m */
  size_t n = fx_count(store(state), &q);
  assert_true(n > 0 && n < FX_N);
  CHECK_TEXT(store(state), &q, false, 0, "--since", "2h", "--until", "90m", "--limit", "0");
  q.until = INT64_MAX;
  CHECK_TEXT(store(state), &q, false, 0, "--since", "120m", "--until", "now", "--limit", "0");
}

static void search_default_is_newest_first_limited_to_100(void **state) {
  fx_filter q = fx_any();
  int64_t want[FX_N];
  size_t n = fx_expect(store(state), &q, false, 100, want);
  assert_int_equal(n, 100);
  assert_true(want[0] > want[1]);
  check_text(store(state), want, n, (const char *const[]){NULL});
  check_text(store(state), want, n, (const char *const[]){"--newest-first", NULL});
}

static void search_oldest_first_applies_limit_after_ordering(void **state) {
  fx_filter q = fx_any();
  q.ns = "dev";
  CHECK_TEXT(store(state), &q, true, 7, "--namespace", "dev", "--oldest-first", "--limit", "7");
  CHECK_TEXT(store(state), &q, false, 7, "--namespace", "dev", "--limit", "7");
  /* last of --oldest-first / --newest-first wins */
  CHECK_TEXT(store(state), &q, false, 3, "--namespace", "dev", "--oldest-first", "--newest-first",
             "--limit", "3");
}

static void search_limit_zero_returns_every_match(void **state) {
  fx_filter q = fx_any();
  CHECK_TEXT(store(state), &q, false, 0, "--limit", "0");
  CHECK_TEXT(store(state), &q, true, 0, "--limit", "0", "--oldest-first");
}

static void search_no_match_exits_1_with_empty_output(void **state) {
  fx_result r = FX_RUN(NULL, "search", "--data", fx_data(store(state)), "--pod", "no-such-pod");
  assert_int_equal(r.rc, 1);
  assert_int_equal(r.out_len, 0);
  assert_int_equal(r.err_len, 0);
  fx_result_free(&r);
  r = FX_RUN(NULL, "search", "--data", fx_data(store(state)), "--since", "2030-01-01");
  assert_int_equal(r.rc, 1);
  fx_result_free(&r);
  /* the CSV header alone is not a match */
  r = FX_RUN(NULL, "search", "--data", fx_data(store(state)), "--grep", "nothing-like-this",
             "--output", "csv");
  assert_int_equal(r.rc, 1);
  assert_string_equal(r.out, "time,node,namespace,pod,container,stream,source,message\r\n");
  fx_result_free(&r);
}

static void search_stats_flag_reports_index_to_stderr(void **state) {
  fx_filter q = fx_any();
  q.pod = "db-0";
  size_t n = fx_count(store(state), &q);
  fx_result r = FX_RUN(NULL, "search", "--data", fx_data(store(state)), "--pod", "db-0", "--limit",
                       "0", "--stats");
  assert_int_equal(r.rc, 0);
  assert_int_equal(fx_lines(r.out), n);
  char want[64];
  snprintf(want, sizeof(want), "matched=%zu ", n);
  assert_non_null(strstr(r.err, "index=pod "));
  assert_non_null(strstr(r.err, want));
  assert_non_null(strstr(r.err, "examined="));
  assert_int_equal(fx_lines(r.err), 1);
  fx_result_free(&r);
}

static void search_reads_data_dir_from_environment_and_flag_wins(void **state) {
  fx_result r = FX_RUN(fx_data(store(state)), "search", "--limit", "5");
  assert_int_equal(r.rc, 0);
  assert_int_equal(fx_lines(r.out), 5);
  fx_result_free(&r);
  r = FX_RUN("/nonexistent/cairn", "search", "--data", fx_data(store(state)), "--limit", "5");
  assert_int_equal(r.rc, 0);
  assert_int_equal(fx_lines(r.out), 5);
  fx_result_free(&r);
  r = FX_RUN("/nonexistent/cairn", "search", "--limit", "5");
  assert_int_equal(r.rc, 2);
  assert_non_null(strstr(r.err, "/nonexistent/cairn"));
  fx_result_free(&r);
}

/* The single record with time t, in text form. */
static char *text_line_at(fx_store *f, int idx) {
  const fx_rec *m = &f->recs[idx];
  char since[40], until[40];
  cairn_time_format(m->time_ns, since, sizeof(since));
  cairn_time_format(m->time_ns + 1, until, sizeof(until));
  fx_result r = FX_RUN(NULL, "search", "--data", fx_data(f), "--since", since, "--until", until);
  assert_int_equal(r.rc, 0);
  assert_int_equal(fx_lines(r.out), 1);
  char *out = r.out;
  r.out = NULL;
  fx_result_free(&r);
  return out;
}

static void search_text_line_has_time_node_ident_stream_message(void **state) {
  fx_store *f = store(state);
  char *line = text_line_at(f, 12);
  const fx_rec *m = &f->recs[12];
  char want[256], ts[40];
  cairn_time_format(m->time_ns, ts, sizeof(ts));
  snprintf(want, sizeof(want), "%s %s %s/%s/%s stdout %.*s\n", ts, m->node, m->ns, m->pod,
           m->container, (int)m->msg_len, (const char *)m->msg);
  assert_string_equal(line, want);
  free(line);
  /* auditd: no Kubernetes identity, the source stands in for the stream */
  line = text_line_at(f, 8);
  m = &f->recs[8];
  cairn_time_format(m->time_ns, ts, sizeof(ts));
  snprintf(want, sizeof(want), "%s %s - audit %.*s\n", ts, m->node, (int)m->msg_len,
           (const char *)m->msg);
  assert_string_equal(line, want);
  free(line);
}

static void search_text_escapes_control_bytes_and_invalid_utf8(void **state) {
  char *line = text_line_at(store(state), FX_HOSTILE);
  assert_non_null(strstr(line, " bad \\xFF\\xFE byte \\x1B[31m red\\\\x\n"));
  assert_null(strchr(line, 0x1b));
  free(line);
  line = text_line_at(store(state), FX_QUOTED);
  assert_non_null(strstr(line, " hello, \"world\"\\nsecond line\n"));
  free(line);
}

static void search_json_output_parses_and_has_fields(void **state) {
  fx_store *f = store(state);
  fx_filter q = fx_any();
  q.ns = "prod";
  int64_t want[FX_N];
  size_t n = fx_expect(f, &q, false, 0, want);
  fx_result r = FX_RUN(NULL, "search", "--data", fx_data(f), "--namespace", "prod", "--output",
                       "json", "--limit", "0");
  assert_int_equal(r.rc, 0);
  assert_int_equal(fx_lines(r.out), n);
  char *save = NULL;
  size_t i = 0;
  for (char *ln = strtok_r(r.out, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save), i++) {
    json_error_t jerr;
    json_t *j = json_loads(ln, 0, &jerr);
    assert_non_null(j);
    assert_true(json_is_object(j));
    assert_int_equal(json_integer_value(json_object_get(j, "time_ns")), want[i]);
    assert_string_equal(json_string_value(json_object_get(j, "namespace")), "prod");
    assert_non_null(json_string_value(json_object_get(j, "pod")));
    assert_non_null(json_string_value(json_object_get(j, "container")));
    assert_non_null(json_string_value(json_object_get(j, "node")));
    assert_non_null(json_string_value(json_object_get(j, "time")));
    assert_string_equal(json_string_value(json_object_get(j, "source")), "container");
    assert_true(json_integer_value(json_object_get(j, "seq")) > 0);
    const char *msg = json_string_value(json_object_get(j, "message"));
    const char *b64 = json_string_value(json_object_get(j, "message_b64"));
    assert_true(msg != NULL || b64 != NULL);
    json_decref(j);
  }
  assert_int_equal(i, n);
  fx_result_free(&r);
}

/* Minimal RFC 4180 reader: splits s into fields (written NUL-terminated into
 * s itself) and rows. Returns the number of rows; fields[r][c]. */
static size_t csv_parse(char *s, char *fields[][8], size_t max_rows) {
  size_t row = 0, col = 0;
  char *w = s, *p = s;
  while (*p && row < max_rows) {
    fields[row][col] = w;
    if (*p == '"') {
      p++;
      for (;;) {
        assert_true(*p != '\0'); /* unterminated quote */
        if (*p == '"' && p[1] == '"') {
          *w++ = '"';
          p += 2;
        } else if (*p == '"') {
          p++;
          break;
        } else {
          *w++ = *p++;
        }
      }
    } else {
      while (*p && *p != ',' && *p != '\r') *w++ = *p++;
    }
    if (*p == ',') {
      *w++ = '\0';
      p++;
      col++;
      assert_true(col < 8);
    } else {
      assert_true(p[0] == '\r' && p[1] == '\n');
      *w++ = '\0';
      p += 2;
      assert_int_equal(col, 7);
      row++;
      col = 0;
    }
  }
  return row;
}

static void search_csv_quotes_commas_quotes_and_newlines(void **state) {
  fx_store *f = store(state);
  fx_filter q = fx_any();
  q.pod = fx_pods[(FX_QUOTED / 3) % 3];
  q.ns = fx_namespaces[FX_QUOTED % 3];
  int64_t want[FX_N];
  size_t n = fx_expect(f, &q, true, 0, want);
  fx_result r = FX_RUN(NULL, "search", "--data", fx_data(f), "--pod", q.pod, "--namespace", q.ns,
                       "--output", "csv", "--limit", "0", "--oldest-first");
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "\"hello, \"\"world\"\"\nsecond line\"\r\n"));
  static char *fields[FX_N + 1][8];
  size_t rows = csv_parse(r.out, fields, FX_N + 1);
  assert_int_equal(rows, n + 1);
  const char *hdr[8] = {"time", "node", "namespace", "pod", "container", "stream", "source",
                        "message"};
  for (int c = 0; c < 8; c++) assert_string_equal(fields[0][c], hdr[c]);
  bool seen_quoted = false;
  for (size_t i = 0; i < n; i++) {
    int64_t t;
    assert_int_equal(cairn_time_parse_rfc3339(fields[i + 1][0], strlen(fields[i + 1][0]), &t),
                     CAIRN_OK);
    assert_int_equal(t, want[i]);
    assert_string_equal(fields[i + 1][2], q.ns);
    assert_string_equal(fields[i + 1][3], q.pod);
    assert_string_equal(fields[i + 1][6], "container");
    if (t == f->recs[FX_QUOTED].time_ns) {
      assert_string_equal(fields[i + 1][7], "hello, \"world\"\nsecond line");
      seen_quoted = true;
    }
  }
  assert_true(seen_quoted);
  fx_result_free(&r);
}

static void stats_reports_record_count_as_text_json_and_csv(void **state) {
  fx_store *f = store(state);
  fx_result r = FX_RUN(NULL, "stats", "--data", fx_data(f));
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "records   360\n"));
  assert_non_null(strstr(r.out, "last_seq  360\n"));
  fx_result_free(&r);

  r = FX_RUN(NULL, "stats", "--data", fx_data(f), "--output", "json");
  assert_int_equal(r.rc, 0);
  json_error_t jerr;
  json_t *j = json_loads(r.out, 0, &jerr);
  assert_non_null(j);
  assert_int_equal(json_integer_value(json_object_get(j, "records")), FX_N);
  assert_int_equal(json_integer_value(json_object_get(j, "last_seq")), FX_N);
  assert_true(json_integer_value(json_object_get(j, "map_size")) >=
              json_integer_value(json_object_get(j, "map_used")));
  assert_true(json_integer_value(json_object_get(j, "map_used")) > 0);
  json_decref(j);
  fx_result_free(&r);

  r = FX_RUN(fx_data(f), "stats", "--output", "csv");
  assert_int_equal(r.rc, 0);
  assert_true(strncmp(r.out, "records,last_seq,map_size,map_used\r\n360,360,", 44) == 0);
  fx_result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(search_pod_filter_returns_exactly_the_pods_records),
      cmocka_unit_test(search_namespace_and_container_filters_combine),
      cmocka_unit_test(search_node_and_source_filters),
      cmocka_unit_test(search_grep_matches_message_substring),
      cmocka_unit_test(search_since_until_absolute_times),
      cmocka_unit_test(search_since_relative_counts_back_from_now),
      cmocka_unit_test(search_default_is_newest_first_limited_to_100),
      cmocka_unit_test(search_oldest_first_applies_limit_after_ordering),
      cmocka_unit_test(search_limit_zero_returns_every_match),
      cmocka_unit_test(search_no_match_exits_1_with_empty_output),
      cmocka_unit_test(search_stats_flag_reports_index_to_stderr),
      cmocka_unit_test(search_reads_data_dir_from_environment_and_flag_wins),
      cmocka_unit_test(search_text_line_has_time_node_ident_stream_message),
      cmocka_unit_test(search_text_escapes_control_bytes_and_invalid_utf8),
      cmocka_unit_test(search_json_output_parses_and_has_fields),
      cmocka_unit_test(search_csv_quotes_commas_quotes_and_newlines),
      cmocka_unit_test(stats_reports_record_count_as_text_json_and_csv),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
