/* tests/collector/parse_k8s_test.c: the Kubernetes API audit parser
 * (collector/parse_k8s.c) through the streaming API: every corpus row field
 * by field (attrs, time, message, rendered row) and the summary, plus lines
 * that are not audit events, timestamp fallback and a 100 KB event. */
#include "parse_corpus.h"

/* Attr key against the expected row's member (string, integer or null). */
static void attr_is(size_t row, const stored_rec *c, const char *key, json_t *w, const char *m) {
  expect_attr("k8s-audit/audit.log", row, c, key, json_object_get(w, m));
}

static void k8s_corpus_matches_expected(void **state) {
  (void)state;
  const char *rel = "k8s-audit/audit.log";
  char in[4096], exp[4096];
  corpus_path(in, sizeof(in), "", rel, "");
  corpus_path(exp, sizeof(exp), "expected/", rel, ".jsonl");
  size_t nrows;
  json_t **rows = load_jsonl(exp, &nrows);
  col_parser *p;
  assert_int_equal(col_parser_new(CAIRN__FORMAT__FORMAT_K8S_AUDIT, 0, &p), CAIRN_OK);
  rec_store st = {0};
  uint64_t nlines = feed_file(p, in, &st);
  assert_int_equal(st.n, nrows);

  FILE *f = fopen(in, "rb");
  assert_non_null(f);
  char *line = NULL;
  size_t cap = 0;
  for (size_t i = 0; i < nrows; i++) {
    const stored_rec *c = &st.v[i];
    json_t *w = rows[i];
    ssize_t got = getline(&line, &cap, f);
    assert_true(got > 0);
    assert_int_equal(c->r.msg_len, (size_t)got - 1);
    assert_memory_equal(c->msg, line, c->r.msg_len);
    assert_int_equal(c->r.source, CAIRN__SOURCE__SOURCE_K8S_AUDIT);
    assert_int_equal(c->r.flags, 0);
    assert_int_equal(c->r.first_line, json_integer_value(json_object_get(w, "line")));
    assert_int_equal(c->r.time_ns,
                     json_integer_value(json_object_get(w, "requestReceivedTimestamp_ns")));
    assert_non_null(c->row);
    expect_row_equal(rel, i + 1, c->row, w);
    attr_is(i + 1, c, "auditID", w, "auditID");
    attr_is(i + 1, c, "stage", w, "stage");
    attr_is(i + 1, c, "level", w, "level");
    attr_is(i + 1, c, "verb", w, "verb");
    attr_is(i + 1, c, "request_uri", w, "requestURI");
    attr_is(i + 1, c, "user", w, "user.username");
    attr_is(i + 1, c, "impersonated_user", w, "impersonatedUser.username");
    attr_is(i + 1, c, "source_ip", w, "sourceIP");
    attr_is(i + 1, c, "resource", w, "objectRef.resource");
    attr_is(i + 1, c, "subresource", w, "objectRef.subresource");
    attr_is(i + 1, c, "namespace", w, "objectRef.namespace");
    attr_is(i + 1, c, "name", w, "objectRef.name");
    attr_is(i + 1, c, "api_group", w, "objectRef.apiGroup");
    attr_is(i + 1, c, "code", w, "responseStatus.code");
    attr_is(i + 1, c, "decision", w, "decision");
    json_t *groups = json_object_get(w, "user.groups");
    assert_int_equal(rec_attr_count(c, "group"), json_array_size(groups));
    size_t gi;
    json_t *g;
    json_array_foreach(groups, gi, g) {
      assert_string_equal(rec_attr(c, "group", gi), json_string_value(g));
    }
  }
  free(line);
  fclose(f);

  json_t *summary = load_summary();
  json_t *s = json_object_get(summary, rel);
  assert_int_equal(st.n, json_integer_value(json_object_get(s, "records")));
  assert_int_equal(0, json_integer_value(json_object_get(s, "unparsed")));
  assert_int_equal(nlines, json_integer_value(json_object_get(s, "physical_lines")));
  assert_int_equal(json_array_size(json_object_get(s, "malformed_lines")), 0);
  json_decref(summary);
  /* one line, one record: nothing is ever pending */
  assert_int_equal(col_parser_safe_offset(p, 12345), 12345);
  rec_store_clear(&st);
  col_parser_free(p);
  free_rows(rows, nrows);
}

static void feed_store(feeder *f, rec_store *st, const char *line) {
  size_t n = strlen(line);
  assert_int_equal(
      col_parser_line(f->p, (const uint8_t *)line, n, f->off, ++f->line_no, rec_store_cb, st),
      CAIRN_OK);
  f->off += n + 1;
}

#define EV(extra)                                       \
  "{\"kind\":\"Event\",\"auditID\":\"id-1\",\"stage\":" \
  "\"ResponseComplete\"" extra "}"

static void k8s_non_events_become_unparsed(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      "not json",
      "[1,2]",
      "\"string\"",
      "{\"kind\":\"Event\",\"stage\":\"ResponseComplete\"}",
      "{\"auditID\":7}",
      "{\"auditID\":\"x\",\"stage\":\"Resp",
  };
  size_t nbad = sizeof(bad) / sizeof(bad[0]);
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_K8S_AUDIT, 0);
  rec_store st = {0};
  feed_store(&f, &st, EV(",\"verb\":\"get\""));
  for (size_t i = 0; i < nbad; i++) feed_store(&f, &st, bad[i]);
  feed_store(&f, &st, EV(",\"verb\":\"list\""));
  assert_int_equal(st.n, nbad + 2);
  for (size_t i = 0; i < nbad; i++) {
    const stored_rec *c = &st.v[i + 1];
    assert_int_equal(c->r.flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED,
                     CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED);
    assert_int_equal(c->r.source, CAIRN__SOURCE__SOURCE_K8S_AUDIT);
    assert_int_equal(c->r.first_line, i + 2);
    assert_string_equal((const char *)c->msg, bad[i]);
    assert_int_equal(c->n_attrs, 0);
  }
  assert_string_equal(rec_attr(&st.v[0], "verb", 0), "get");
  assert_string_equal(rec_attr(&st.v[nbad + 1], "verb", 0), "list");
  assert_int_equal(st.v[nbad + 1].r.flags, 0);
  rec_store_clear(&st);
  feeder_fini(&f);
}

static void k8s_time_falls_back_to_stage_timestamp(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_K8S_AUDIT, 0);
  rec_store st = {0};
  feed_store(&f, &st, EV(",\"stageTimestamp\":\"2024-01-15T10:24:01.5Z\""));
  feed_store(&f, &st, EV(",\"requestReceivedTimestamp\":\"garbage\""));
  feed_store(&f, &st,
             EV(",\"requestReceivedTimestamp\":\"2024-01-15T10:24:01Z\","
                "\"stageTimestamp\":\"2024-01-15T10:24:02Z\""));
  assert_int_equal(st.n, 3);
  assert_int_equal(st.v[0].r.time_ns, 1705314241500000000LL);
  assert_int_equal(st.v[0].r.flags, 0);
  assert_int_equal(st.v[1].r.time_ns, 0);
  assert_int_equal(st.v[1].r.flags, 0);
  assert_int_equal(st.v[2].r.time_ns, 1705314241000000000LL);
  assert_true(json_is_null(json_object_get(st.v[1].row, "stageTimestamp_ns")));
  rec_store_clear(&st);
  feeder_fini(&f);
}

static void k8s_hundred_kb_event_kept_whole(void **state) {
  (void)state;
  cairn_buf line;
  cairn_buf_init(&line);
  assert_int_equal(cairn_buf_append_str(&line,
                                        "{\"auditID\":\"big\",\"verb\":\"update\","
                                        "\"requestObject\":{\"data\":\""),
                   CAIRN_OK);
  for (size_t i = 0; i < 100000; i++) assert_int_equal(cairn_buf_append(&line, "x", 1), CAIRN_OK);
  assert_int_equal(cairn_buf_append_str(&line,
                                        "\"},\"user\":{\"username\":\"bob\","
                                        "\"groups\":[\"a\",\"b\"]}}"),
                   CAIRN_OK);
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_K8S_AUDIT, 0);
  rec_store st = {0};
  assert_int_equal(col_parser_line(f.p, line.ptr, line.len, 0, 1, rec_store_cb, &st), CAIRN_OK);
  assert_int_equal(st.n, 1);
  assert_int_equal(st.v[0].r.msg_len, line.len);
  assert_memory_equal(st.v[0].msg, line.ptr, line.len);
  assert_int_equal(st.v[0].r.end_offset, line.len + 1);
  assert_string_equal(rec_attr(&st.v[0], "user", 0), "bob");
  assert_string_equal(rec_attr(&st.v[0], "group", 1), "b");
  assert_true(json_is_true(json_object_get(st.v[0].row, "has_requestObject")));
  rec_store_clear(&st);
  feeder_fini(&f);
  cairn_buf_fini(&line);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(k8s_corpus_matches_expected),
      cmocka_unit_test(k8s_non_events_become_unparsed),
      cmocka_unit_test(k8s_time_falls_back_to_stage_timestamp),
      cmocka_unit_test(k8s_hundred_kb_event_kept_whole),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
