/* tests/collector/parse_docker_test.c: the docker json-file parser
 * (collector/parse_docker.c) against every docker/ file of the shared corpus,
 * plus attrs, escapes, 16 KiB chunk reassembly with truncation, and bad JSON. */
#include "parse_corpus.h"

static void docker_corpus_matches_expected(void **state) {
  (void)state;
  assert_int_equal(check_corpus_prefix(CAIRN__FORMAT__FORMAT_DOCKER, "docker/"), 2);
}

static void docker_attrs_passed_as_json_text(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_DOCKER, 0);
  feed(&f, "{\"log\":\"hi\\n\",\"stream\":\"stdout\",\"attrs\":{\"tag\":\"web\",\"env\":\"prod\"},"
           "\"time\":\"2024-01-15T11:00:00.5Z\"}");
  feed(&f, "{\"log\":\"no attrs\\n\",\"stream\":\"stderr\",\"time\":\"2024-01-15T11:00:01Z\"}");
  assert_int_equal(f.out.n, 2);
  const col_rec *r = &f.out.v[0].r;
  assert_string_equal((const char *)r->msg, "hi");
  assert_int_equal(r->time_ns, 1705316400500000000LL);
  assert_non_null(r->attrs_json);
  json_t *got = json_loads(r->attrs_json, 0, NULL);
  json_t *want = json_pack("{s:s, s:s}", "tag", "web", "env", "prod");
  assert_true(json_equal(got, want));
  json_decref(got);
  json_decref(want);
  assert_null(f.out.v[1].r.attrs_json);
  assert_int_equal(f.out.v[1].r.stream, CAIRN__LOG_STREAM__LOG_STREAM_STDERR);
  feeder_fini(&f);
}

static void docker_escapes_decoded_including_nul(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_DOCKER, 0);
  feed(&f, "{\"log\":\"a\\u0000b \\\"q\\\" \\\\ \\u00e9\\n\",\"stream\":\"stdout\","
           "\"time\":\"2024-01-15T11:00:00Z\"}");
  assert_int_equal(f.out.n, 1);
  const col_rec *r = &f.out.v[0].r;
  assert_int_equal(r->msg_len, 12);
  assert_memory_equal(r->msg, "a\0b \"q\" \\ \xc3\xa9", 12);
  assert_int_equal(r->flags, 0);
  feeder_fini(&f);
}

static void docker_chunks_reassembled_and_truncated(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_DOCKER, 8);
  feed(&f, "{\"log\":\"01234\",\"stream\":\"stdout\",\"attrs\":{\"a\":\"1\"},"
           "\"time\":\"2024-01-15T11:00:00Z\"}");
  feed(&f, "{\"log\":\"err\\n\",\"stream\":\"stderr\",\"time\":\"2024-01-15T11:00:01Z\"}");
  feed(&f, "{\"log\":\"56789\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:02Z\"}");
  feed(&f, "{\"log\":\"abc\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:03Z\"}");
  assert_int_equal(f.out.n, 2);
  assert_string_equal((const char *)f.out.v[0].r.msg, "err");
  const col_rec *r = &f.out.v[1].r;
  assert_int_equal(r->msg_len, 8);
  assert_memory_equal(r->msg, "01234567", 8);
  assert_int_equal(r->full_len, 13);
  assert_int_equal(r->flags, CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED);
  assert_int_equal(r->fragments, 3);
  assert_int_equal(r->first_line, 1);
  assert_int_equal(r->last_line, 4);
  assert_int_equal(r->time_ns, 1705316400000000000LL);
  assert_non_null(r->attrs_json); /* from the first chunk */
  feeder_fini(&f);
}

static void docker_bad_lines_become_unparsed_without_disturbing_chunks(void **state) {
  (void)state;
  static const char *const bad[] = {
      "{\"log\":\"x\\n\",\"stream\":\"stdout\",\"ti",
      "[1,2,3]",
      "{\"log\":7,\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:00Z\"}",
      "{\"log\":\"x\\n\",\"stream\":\"stdin\",\"time\":\"2024-01-15T11:00:00Z\"}",
      "{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"yesterday\"}",
      "{\"log\":\"x\\n\",\"stream\":\"stdout\"}",
      "{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:00Z\",\"attrs\":3}",
      "",
  };
  size_t nbad = sizeof(bad) / sizeof(bad[0]);
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_DOCKER, 0);
  feed(&f, "{\"log\":\"first-\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:00Z\"}");
  for (size_t i = 0; i < nbad; i++) feed(&f, bad[i]);
  static const uint8_t inval[] = "{\"log\":\"\xff\\n\",\"stream\":\"stdout\",\"time\":\"x\"}";
  feed_n(&f, inval, sizeof(inval) - 1);
  feed(&f, "{\"log\":\"second\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:09Z\"}");
  assert_int_equal(f.out.n, nbad + 2);
  for (size_t i = 0; i < nbad; i++) {
    const col_rec *r = &f.out.v[i].r;
    assert_int_equal(r->flags, CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED);
    assert_int_equal(r->first_line, i + 2);
    assert_int_equal(r->msg_len, strlen(bad[i]));
    assert_memory_equal(r->msg, bad[i], r->msg_len);
  }
  assert_int_equal(f.out.v[nbad].r.flags, CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED |
                                              CAIRN__RECORD_FLAG__RECORD_FLAG_INVALID_UTF8);
  const col_rec *r = &f.out.v[nbad + 1].r;
  assert_string_equal((const char *)r->msg, "first-second");
  assert_int_equal(r->first_line, 1);
  assert_int_equal(r->last_line, nbad + 3);
  assert_int_equal(r->fragments, 2);
  feeder_fini(&f);
}

static void docker_safe_offset_holds_pending_chunk(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_DOCKER, 0);
  feed(&f, "{\"log\":\"whole\\n\",\"stream\":\"stderr\",\"time\":\"2024-01-15T11:00:00Z\"}");
  uint64_t chunk_start = f.off;
  feed(&f, "{\"log\":\"chunk\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:00Z\"}");
  feed(&f, "{\"log\":\"whole\\n\",\"stream\":\"stderr\",\"time\":\"2024-01-15T11:00:00Z\"}");
  assert_int_equal(col_parser_safe_offset(f.p, f.off), chunk_start);
  const char *p[2];
  assert_int_equal(col_parser_pending(f.p, p), 1);
  assert_string_equal(p[0], "stdout");
  feed(&f, "{\"log\":\"end\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:00Z\"}");
  assert_int_equal(col_parser_safe_offset(f.p, f.off), f.off);
  assert_int_equal(f.out.n, 3);
  feeder_fini(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(docker_corpus_matches_expected),
      cmocka_unit_test(docker_attrs_passed_as_json_text),
      cmocka_unit_test(docker_escapes_decoded_including_nul),
      cmocka_unit_test(docker_chunks_reassembled_and_truncated),
      cmocka_unit_test(docker_bad_lines_become_unparsed_without_disturbing_chunks),
      cmocka_unit_test(docker_safe_offset_holds_pending_chunk),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
