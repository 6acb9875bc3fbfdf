/* tests/collector/parse_cri_test.c: the CRI parser (collector/parse_cri.c and
 * the shared reassembly in collector/parse.c) against every cri/ file of the
 * shared corpus, plus truncation, malformed lines, offsets and UTF-8 edges. */
#include "parse_corpus.h"

#define T0 "2024-01-15T10:00:00Z"

static void cri_corpus_matches_expected(void **state) {
  (void)state;
  assert_int_equal(check_corpus_prefix(CAIRN__FORMAT__FORMAT_CRI, "cri/"), 4);
}

static void cri_lone_f_line_points_into_input(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_CRI, 0);
  const char *line = "2024-01-15T10:23:45.5+01:00 stderr F hello world";
  feed(&f, line);
  assert_int_equal(f.out.n, 1);
  const col_rec *r = &f.out.v[0].r;
  assert_ptr_equal(f.out.v[0].orig_msg, (const uint8_t *)line + 37);
  assert_memory_equal(r->msg, "hello world", 11);
  assert_int_equal(r->msg_len, 11);
  assert_int_equal(r->time_ns, 1705310625500000000LL);
  assert_int_equal(r->stream, CAIRN__LOG_STREAM__LOG_STREAM_STDERR);
  assert_int_equal(r->flags, 0);
  assert_int_equal(r->fragments, 1);
  assert_int_equal(r->end_offset, strlen(line) + 1);
  assert_null(r->attrs_json);
  feeder_fini(&f);
}

static void cri_content_is_byte_exact(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_CRI, 0);
  static const uint8_t line[] = T0 " stdout F \t a\0b\r";
  feed_n(&f, line, sizeof(line) - 1);
  feed(&f, T0 " stdout F ");
  feed(&f, T0 " stdout F"); /* no trailing space: accepted as empty */
  assert_int_equal(f.out.n, 3);
  assert_int_equal(f.out.v[0].r.msg_len, 6);
  assert_memory_equal(f.out.v[0].r.msg, "\t a\0b\r", 6);
  assert_int_equal(f.out.v[1].r.msg_len, 0);
  assert_int_equal(f.out.v[2].r.msg_len, 0);
  assert_false(f.out.v[2].r.flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED);
  feeder_fini(&f);
}

static void cri_extra_tags_after_colon_accepted(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_CRI, 0);
  feed(&f, T0 " stdout P:x part1-");
  feed(&f, T0 " stdout F:y part2");
  assert_int_equal(f.out.n, 1);
  assert_int_equal(f.out.v[0].r.fragments, 2);
  assert_string_equal((const char *)f.out.v[0].r.msg, "part1-part2");
  feeder_fini(&f);
}

static void cri_bad_lines_become_unparsed(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      "no-spaces-at-all",
      T0 " stdin F hello",
      T0 " stdout X hello",
      T0 " stdout Fx hello",
      T0 " stdout",
      T0 " stdoutF hello",
      "2024-13-15T10:00:00Z stdout F bad month",
      "2024-01-15 10:00:00 stdout F space in time",
      "2024-01-15T10:00:00 stdout F no zone",
  };
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_CRI, 0);
  size_t n = sizeof(bad) / sizeof(bad[0]);
  for (size_t i = 0; i < n; i++) feed(&f, bad[i]);
  assert_int_equal(f.out.n, n);
  for (size_t i = 0; i < n; i++) {
    const col_rec *r = &f.out.v[i].r;
    assert_int_equal(r->flags, CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED);
    assert_int_equal(r->stream, CAIRN__LOG_STREAM__LOG_STREAM_UNKNOWN);
    assert_int_equal(r->time_ns, 0);
    assert_int_equal(r->fragments, 1);
    assert_int_equal(r->first_line, i + 1);
    assert_int_equal(r->last_line, i + 1);
    assert_int_equal(r->msg_len, strlen(bad[i]));
    assert_memory_equal(r->msg, bad[i], r->msg_len);
  }
  feeder_fini(&f);
}

static void cri_malformed_line_between_fragments_keeps_neighbours(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_CRI, 0);
  feed(&f, "2024-01-15T10:00:00.1Z stdout F before");
  feed(&f, "2024-01-15T10:00:00.2Z stdout P first-");
  feed(&f, "garbage in the middle");
  feed(&f, "2024-01-15T10:00:00.3Z stdout F second");
  feed(&f, "2024-01-15T10:00:00.4Z stdout F after");
  assert_int_equal(f.out.n, 4);
  assert_string_equal((const char *)f.out.v[0].r.msg, "before");
  assert_int_equal(f.out.v[1].r.flags, CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED);
  assert_int_equal(f.out.v[1].r.first_line, 3);
  assert_string_equal((const char *)f.out.v[2].r.msg, "first-second");
  assert_int_equal(f.out.v[2].r.first_line, 2);
  assert_int_equal(f.out.v[2].r.last_line, 4);
  assert_int_equal(f.out.v[2].r.fragments, 2);
  assert_int_equal(f.out.v[2].r.time_ns, 1705312800200000000LL);
  assert_string_equal((const char *)f.out.v[3].r.msg, "after");
  feeder_fini(&f);
}

static void cri_truncates_reassembled_record_at_max_record(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_CRI, 16);
  feed(&f, T0 " stdout P 0123456789");
  feed(&f, T0 " stdout P abcdefghij");
  feed(&f, T0 " stderr F other");
  feed(&f, T0 " stdout F ABCDEFGHIJ");
  feed(&f, T0 " stdout F next");
  assert_int_equal(f.out.n, 3);
  assert_string_equal((const char *)f.out.v[0].r.msg, "other");
  const col_rec *r = &f.out.v[1].r;
  assert_int_equal(r->msg_len, 16);
  assert_memory_equal(r->msg, "0123456789abcdef", 16);
  assert_int_equal(r->full_len, 30);
  assert_true(r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED);
  assert_false(r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_INVALID_UTF8);
  assert_int_equal(r->fragments, 3);
  assert_int_equal(r->first_line, 1);
  assert_int_equal(r->last_line, 4);
  /* the rest of the truncated record was consumed, not emitted separately */
  assert_string_equal((const char *)f.out.v[2].r.msg, "next");
  assert_int_equal(f.out.v[2].r.flags, 0);
  feeder_fini(&f);
}

static void cri_truncates_single_line_without_splitting_a_character(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_CRI, 8);
  feed(&f, T0 " stdout F 0123456789");
  feed(&f, T0 " stdout F 123456\xe2\x82\xac!"); /* euro sign spans bytes 7..9 */
  assert_int_equal(f.out.n, 2);
  assert_int_equal(f.out.v[0].r.msg_len, 8);
  assert_int_equal(f.out.v[0].r.full_len, 10);
  assert_true(f.out.v[0].r.flags & CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED);
  assert_int_equal(f.out.v[1].r.msg_len, 6);
  assert_int_equal(f.out.v[1].r.full_len, 10);
  assert_int_equal(f.out.v[1].r.flags, CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED);
  feeder_fini(&f);
}

static void cri_utf8_validated_after_reassembly(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_CRI, 0);
  feed(&f, T0 " stdout P caf\xc3"); /* character split across fragments */
  feed(&f, T0 " stdout F \xa9");
  feed(&f, T0 " stdout F bad \xc3\x28");
  assert_int_equal(f.out.n, 2);
  assert_int_equal(f.out.v[0].r.flags, 0);
  assert_string_equal((const char *)f.out.v[0].r.msg, "caf\xc3\xa9");
  assert_int_equal(f.out.v[1].r.flags, CAIRN__RECORD_FLAG__RECORD_FLAG_INVALID_UTF8);
  assert_int_equal(f.out.v[1].r.msg_len, 6);
  feeder_fini(&f);
}

static void cri_safe_offset_holds_oldest_pending_partial(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_CRI, 0);
  const char *p[2] = {NULL, NULL};
  feed(&f, T0 " stdout F done");
  uint64_t after_first = f.off;
  assert_int_equal(col_parser_safe_offset(f.p, f.off), f.off);
  assert_int_equal(col_parser_pending(f.p, p), 0);

  feed(&f, T0 " stdout P open-"); /* starts at after_first */
  feed(&f, T0 " stderr F interleaved");
  assert_int_equal(col_parser_safe_offset(f.p, f.off), after_first);
  uint64_t err_start = f.off;
  feed(&f, T0 " stderr P err-open");
  assert_int_equal(col_parser_safe_offset(f.p, f.off), after_first);
  assert_int_equal(col_parser_pending(f.p, p), 2);
  assert_string_equal(p[0], "stdout");
  assert_string_equal(p[1], "stderr");

  feed(&f, T0 " stdout F closed"); /* stdout completes; stderr still open */
  assert_int_equal(col_parser_safe_offset(f.p, f.off), err_start);
  assert_int_equal(col_parser_pending(f.p, p), 1);
  assert_string_equal(p[0], "stderr");

  feed(&f, T0 " stderr F -closed");
  assert_int_equal(col_parser_safe_offset(f.p, f.off), f.off);
  assert_int_equal(f.out.n, 4);
  assert_string_equal((const char *)f.out.v[2].r.msg, "open-closed");
  assert_int_equal(f.out.v[2].r.end_offset, err_start + strlen(T0 " stderr P err-open") + 1 +
                                                strlen(T0 " stdout F closed") + 1);
  assert_string_equal((const char *)f.out.v[3].r.msg, "err-open-closed");
  feeder_fini(&f);
}

static void utf8_validator_rejects_malformed_sequences(void **state) {
  (void)state;
  static const struct {
    const char *s;
    bool ok;
  } cases[] = {
      {"plain ascii that is longer than sixteen bytes", true},
      {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x90\xb3", true},
      {"\xed\x9f\xbf", true},      /* U+D7FF */
      {"\xf4\x8f\xbf\xbf", true},  /* U+10FFFF */
      {"\xc0\xaf", false},         /* overlong '/' */
      {"\xe0\x80\xaf", false},     /* overlong */
      {"\xf0\x80\x80\xaf", false}, /* overlong */
      {"\xed\xa0\x80", false},     /* surrogate */
      {"\xf4\x90\x80\x80", false}, /* above U+10FFFF */
      {"\xf5\x80\x80\x80", false},
      {"\x80", false},
      {"abc\xe2\x82", false}, /* cut at the end */
      {"0123456789abcdef\xff", false},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    bool got = col__utf8_valid((const uint8_t *)cases[i].s, strlen(cases[i].s));
    if (got != cases[i].ok) fail_msg("utf8 case %zu: got %d", i, got);
  }
  assert_int_equal(col__utf8_cut((const uint8_t *)"ab\xe2\x82\xac", 4), 2);
  assert_int_equal(col__utf8_cut((const uint8_t *)"ab\xe2\x82\xac", 5), 5);
  assert_int_equal(col__utf8_cut((const uint8_t *)"ab\xf0\x9f\x90\xb3", 5), 2);
  assert_int_equal(col__utf8_cut((const uint8_t *)"abcd", 3), 3);
}

/* Mutated valid lines (deterministic PRNG): nothing crashes, every record
 * respects max_record, and closing both streams leaves nothing pending. */
static void cri_mutated_lines_stay_within_limits(void **state) {
  (void)state;
  static const char *const seeds[] = {
      "2024-01-15T10:23:45.123456789-05:00 stdout P part ",
      "2024-01-15T10:23:45Z stderr F done \xc3\xa9",
      "2024-01-15T10:23:45.5+01:00 stdout F:x tagged",
  };
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_CRI, 24);
  uint32_t rng = 12345;
  for (int i = 0; i < 20000; i++) {
    uint8_t line[96];
    const char *seed = seeds[i % 3];
    size_t n = strlen(seed);
    memcpy(line, seed, n);
    for (int k = 0; k < 3; k++) {
      rng = rng * 1103515245u + 12345u;
      line[(rng >> 8) % n] = (uint8_t)(rng >> 16);
    }
    rng = rng * 1103515245u + 12345u;
    n -= (rng >> 8) % 4; /* sometimes shorter */
    feed_n(&f, line, n);
    for (size_t r = 0; r < f.out.n; r++) {
      assert_true(f.out.v[r].r.msg_len <= 24);
      assert_true(f.out.v[r].r.msg_len <= f.out.v[r].r.full_len);
      assert_true(f.out.v[r].r.first_line <= f.out.v[r].r.last_line);
    }
    rec_list_clear(&f.out);
  }
  feed(&f, "2024-01-15T10:23:45Z stdout F end");
  feed(&f, "2024-01-15T10:23:45Z stderr F end");
  const char *p[2];
  assert_int_equal(col_parser_pending(f.p, p), 0);
  assert_int_equal(col_parser_safe_offset(f.p, f.off), f.off);
  feeder_fini(&f);
}

static void parser_new_rejects_unsupported_format(void **state) {
  (void)state;
  col_parser *p = (col_parser *)1;
  assert_int_equal(col_parser_new(CAIRN__FORMAT__FORMAT_UNKNOWN, 0, &p), CAIRN_E_INVAL);
  assert_null(p);
  col_parser_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cri_corpus_matches_expected),
      cmocka_unit_test(cri_lone_f_line_points_into_input),
      cmocka_unit_test(cri_content_is_byte_exact),
      cmocka_unit_test(cri_extra_tags_after_colon_accepted),
      cmocka_unit_test(cri_bad_lines_become_unparsed),
      cmocka_unit_test(cri_malformed_line_between_fragments_keeps_neighbours),
      cmocka_unit_test(cri_truncates_reassembled_record_at_max_record),
      cmocka_unit_test(cri_truncates_single_line_without_splitting_a_character),
      cmocka_unit_test(cri_utf8_validated_after_reassembly),
      cmocka_unit_test(cri_safe_offset_holds_oldest_pending_partial),
      cmocka_unit_test(utf8_validator_rejects_malformed_sequences),
      cmocka_unit_test(cri_mutated_lines_stay_within_limits),
      cmocka_unit_test(parser_new_rejects_unsupported_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
