/* tests/collector/parse_docker_fast_test.c: the docker fast scanner
 * (col__docker_scan_fast in collector/parse_docker.c) against the jansson
 * path it shortcuts: generated daemon-shaped lines (every JSON escape,
 * \uXXXX with surrogate pairs, raw UTF-8 valid and not, NUL, chunks) and
 * random mutations of them are fed to two parsers, one through
 * col_parser_line (scanner first) and one through col__docker_line_json
 * only; every emitted record and every safe offset must be identical. Plus
 * direct checks of what the scanner accepts, declines and decodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/internal_docker.h"
#include "common/buf.h"

/* ---- deterministic random ---- */

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rnd(rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 2685821657736338717ULL;
}

static size_t rnd_n(rng *r, size_t n) { return (size_t)(rnd(r) % n); }

/* ---- record capture: every field of every record, serialised ---- */

static void put(cairn_buf *b, const void *p, size_t n) {
  assert_int_equal(cairn_buf_append(b, p, n), CAIRN_OK);
}

static void capture_cb(const col_rec *r, void *ud) {
  cairn_buf *b = ud;
  put(b, &r->time_ns, sizeof(r->time_ns));
  put(b, &r->stream, sizeof(r->stream));
  put(b, &r->flags, sizeof(r->flags));
  put(b, &r->msg_len, sizeof(r->msg_len));
  put(b, &r->full_len, sizeof(r->full_len));
  put(b, &r->fragments, sizeof(r->fragments));
  put(b, &r->first_line, sizeof(r->first_line));
  put(b, &r->last_line, sizeof(r->last_line));
  put(b, &r->end_offset, sizeof(r->end_offset));
  put(b, &r->source, sizeof(r->source));
  put(b, &r->n_attrs, sizeof(r->n_attrs));
  if (r->msg_len) put(b, r->msg, r->msg_len);
  size_t al = r->attrs_json ? strlen(r->attrs_json) + 1 : 0;
  put(b, &al, sizeof(al));
  if (al) put(b, r->attrs_json, al);
}

/* Two parsers fed the same lines: fast (col_parser_line) and reference. */
typedef struct pair {
  col_parser *fast, *ref;
  cairn_buf got_fast, got_ref;
  uint64_t off, line_no;
  size_t fast_taken; /* lines the scanner accepted */
  size_t lines;
} pair;

static void pair_init(pair *p, size_t max_record) {
  memset(p, 0, sizeof(*p));
  assert_int_equal(col_parser_new(CAIRN__FORMAT__FORMAT_DOCKER, max_record, &p->fast), CAIRN_OK);
  assert_int_equal(col_parser_new(CAIRN__FORMAT__FORMAT_DOCKER, max_record, &p->ref), CAIRN_OK);
  cairn_buf_init(&p->got_fast);
  cairn_buf_init(&p->got_ref);
}

static void pair_fini(pair *p) {
  col_parser_free(p->fast);
  col_parser_free(p->ref);
  cairn_buf_fini(&p->got_fast);
  cairn_buf_fini(&p->got_ref);
}

static void hexdump_line(const uint8_t *l, size_t n) {
  fprintf(stderr, "line: ");
  for (size_t i = 0; i < n; i++) {
    if (l[i] >= 0x20 && l[i] < 0x7F)
      fputc(l[i], stderr);
    else
      fprintf(stderr, "<%02x>", l[i]);
  }
  fputc('\n', stderr);
}

static void pair_feed(pair *p, const uint8_t *line, size_t n) {
  static uint8_t scratch[COL_DOCKER_FAST_MAX];
  col_docker_fields f;
  if (col__docker_scan_fast(line, n, scratch, &f)) p->fast_taken++;
  p->lines++;
  p->line_no++;
  cairn_buf_reset(&p->got_fast);
  cairn_buf_reset(&p->got_ref);
  assert_int_equal(col_parser_line(p->fast, line, n, p->off, p->line_no, capture_cb, &p->got_fast),
                   CAIRN_OK);
  assert_int_equal(col__docker_line_json(p->ref, line, n, p->off, p->line_no, capture_cb, &p->got_ref),
                   CAIRN_OK);
  p->off += n + 1;
  if (p->got_fast.len != p->got_ref.len ||
      memcmp(p->got_fast.ptr, p->got_ref.ptr, p->got_fast.len) != 0) {
    hexdump_line(line, n);
    fail_msg("fast and jansson paths emitted different records for line %llu",
             (unsigned long long)p->line_no);
  }
  assert_int_equal(col_parser_safe_offset(p->fast, p->off), col_parser_safe_offset(p->ref, p->off));
}

/* ---- line generator ---- */

static void s_app(cairn_buf *b, const char *s) { put(b, s, strlen(s)); }

/* A random "log" body: plain text, every escape, \u (BMP, pairs, case
 * variants), raw UTF-8, optionally a broken piece. */
static void gen_log_body(rng *r, cairn_buf *b, bool allow_broken) {
  static const char *const words[] = {"GET", "/api/v1/items", "status=200", "user=Zo\xc3\xab",
                                      "\xe5\xb1\xb1\xe7\x94\xb0", "\xf0\x9f\x90\xb3", "latency",
                                      "{", "}", ":", "0123456789abcdef", "took 12ms", " "};
  static const char *const escapes[] = {"\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t",
                                        "\\u0000", "\\u001b", "\\u003c", "\\u003E", "\\u0026",
                                        "\\u00e9", "\\u00C9", "\\u2028", "\\uffff", "\\ud83d\\udc33",
                                        "\\uD83D\\uDE00", "\\udbff\\udfff", "\\u0800", "\\u07ff"};
  static const char *const broken[] = {"\\x", "\\u12", "\\uzzzz", "\\ud83d", "\\udc33",
                                       "\\ud83dx", "\\ud83d\\u0041", "\xff", "\xc3", "\xed\xa0\x80",
                                       "\xe0\x80\x80", "\xf4\x90\x80\x80", "\x01", "\t", "\\"};
  size_t parts = rnd_n(r, 24);
  for (size_t i = 0; i < parts; i++) {
    uint64_t k = rnd(r) % 100;
    if (k < 55)
      s_app(b, words[rnd_n(r, sizeof(words) / sizeof(words[0]))]);
    else if (k < 97 || !allow_broken)
      s_app(b, escapes[rnd_n(r, sizeof(escapes) / sizeof(escapes[0]))]);
    else
      s_app(b, broken[rnd_n(r, sizeof(broken) / sizeof(broken[0]))]);
  }
}

static void gen_line(rng *r, cairn_buf *b, bool allow_broken) {
  cairn_buf_reset(b);
  s_app(b, "{\"log\":\"");
  gen_log_body(r, b, allow_broken);
  if (rnd(r) % 4) s_app(b, "\\n"); /* most lines are complete, some are chunks */
  s_app(b, "\",\"stream\":\"");
  uint64_t k = rnd(r) % 40;
  s_app(b, k == 0 && allow_broken ? "stdin" : k < 20 ? "stdout" : "stderr");
  s_app(b, "\",\"time\":\"");
  static const char *const times[] = {"2024-01-15T10:40:00.123456789Z", "2024-01-15T10:40:00Z",
                                      "2024-01-15T12:40:00.5+02:00", "2024-02-30T10:40:00Z",
                                      "yesterday", ""};
  s_app(b, times[allow_broken ? rnd_n(r, 6) : rnd_n(r, 3)]);
  s_app(b, "\"}");
}

static void mutate(rng *r, cairn_buf *b) {
  static const uint8_t interesting[] = {'"', '\\', '{', '}', ',', ':', ' ', '\n', 0, 0x80, 0xff,
                                        'u', 'n', 'd', '0'};
  size_t muts = 1 + rnd_n(r, 3);
  for (size_t m = 0; m < muts && b->len > 0; m++) {
    size_t at = rnd_n(r, b->len);
    uint8_t *d = b->ptr;
    switch (rnd(r) % 5) {
      case 0: d[at] = (uint8_t)rnd(r); break;
      case 1: d[at] = interesting[rnd_n(r, sizeof(interesting))]; break;
      case 2: /* delete */
        memmove(d + at, d + at + 1, b->len - at - 1);
        b->len--;
        break;
      case 3: /* insert */
        assert_int_equal(cairn_buf_reserve(b, 1), CAIRN_OK);
        d = b->ptr;
        memmove(d + at + 1, d + at, b->len - at);
        d[at] = interesting[rnd_n(r, sizeof(interesting))];
        b->len++;
        break;
      default: b->len = at; /* truncate */
    }
  }
}

/* ---- tests ---- */

static void fast_path_matches_jansson_on_generated_lines(void **state) {
  (void)state;
  rng r = {0x243F6A8885A308D3ULL};
  cairn_buf line;
  cairn_buf_init(&line);
  for (size_t mr = 0; mr < 2; mr++) {
    pair p;
    pair_init(&p, mr == 0 ? 0 : 64); /* default limit, and one that truncates */
    for (int i = 0; i < 20000; i++) {
      gen_line(&r, &line, false);
      pair_feed(&p, line.ptr, line.len);
    }
    /* the scanner must actually take the well-formed lines, not defer them */
    assert_int_equal(p.fast_taken, p.lines);
    pair_fini(&p);
  }
  cairn_buf_fini(&line);
}

static void fast_path_matches_jansson_on_broken_and_mutated_lines(void **state) {
  (void)state;
  rng r = {0x13198A2E03707344ULL};
  cairn_buf line;
  cairn_buf_init(&line);
  pair p;
  pair_init(&p, 0);
  for (int i = 0; i < 60000; i++) {
    gen_line(&r, &line, true);
    if (i % 2) mutate(&r, &line);
    pair_feed(&p, line.ptr, line.len);
  }
  /* both outcomes were exercised */
  assert_true(p.fast_taken > p.lines / 10);
  assert_true(p.fast_taken < p.lines * 9 / 10);
  pair_fini(&p);
  cairn_buf_fini(&line);
}

static void fast_path_decodes_escapes_and_surrogate_pairs(void **state) {
  (void)state;
  static uint8_t scratch[COL_DOCKER_FAST_MAX];
  const char *l = "{\"log\":\"a\\u0000b\\\"\\\\\\/\\t\\u00e9\\u00C9\\ud83d\\udc33\\uD83D\\uDE00\\n\","
                  "\"stream\":\"stderr\",\"time\":\"2024-01-15T11:00:00.5Z\"}";
  col_docker_fields f;
  assert_true(col__docker_scan_fast((const uint8_t *)l, strlen(l), scratch, &f));
  static const char want[] = "a\0b\"\\/\t\xc3\xa9\xc3\x89\xf0\x9f\x90\xb3\xf0\x9f\x98\x80";
  assert_int_equal(f.log_len, sizeof(want) - 1);
  assert_memory_equal(f.log, want, sizeof(want) - 1);
  assert_true(f.final);
  assert_int_equal(f.stream, COL_STREAM_ERR);
  assert_int_equal(f.time_ns, 1705316400500000000LL);
}

static void fast_path_uses_the_usual_line_in_place(void **state) {
  (void)state;
  static uint8_t scratch[COL_DOCKER_FAST_MAX];
  const char *l = "{\"log\":\"GET /x 200 \xc3\xa9\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:00Z\"}";
  col_docker_fields f;
  assert_true(col__docker_scan_fast((const uint8_t *)l, strlen(l), scratch, &f));
  assert_ptr_equal(f.log, (const uint8_t *)l + 8); /* no copy */
  assert_int_equal(f.log_len, 13);
  assert_true(f.final);
  const char *chunk = "{\"log\":\"part\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:00Z\"}";
  assert_true(col__docker_scan_fast((const uint8_t *)chunk, strlen(chunk), scratch, &f));
  assert_ptr_equal(f.log, (const uint8_t *)chunk + 8);
  assert_int_equal(f.log_len, 4);
  assert_false(f.final);
}

static void fast_path_declines_what_it_is_not_sure_about(void **state) {
  (void)state;
  static uint8_t scratch[COL_DOCKER_FAST_MAX];
  static const char *const declined[] = {
      /* attrs, other order, whitespace, trailing bytes: valid, left to jansson */
      "{\"log\":\"x\\n\",\"stream\":\"stdout\",\"attrs\":{\"a\":\"1\"},\"time\":\"2024-01-15T11:00:00Z\"}",
      "{\"stream\":\"stdout\",\"log\":\"x\\n\",\"time\":\"2024-01-15T11:00:00Z\"}",
      "{ \"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:00Z\"}",
      "{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:00Z\"} ",
      "{\"log\":\"x\\n\",\"stream\":\"std\\u006fut\",\"time\":\"2024-01-15T11:00:00Z\"}",
      /* invalid: jansson makes them unparsed */
      "{\"log\":\"\\ud83d\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:00Z\"}",
      "{\"log\":\"\\udc33\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:00Z\"}",
      "{\"log\":\"\\q\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:00Z\"}",
      "{\"log\":\"\xed\xa0\x80\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:00Z\"}",
      "{\"log\":\"x\",\"stream\":\"stdout\",\"time\":\"2024-13-15T11:00:00Z\"}",
      "{\"log\":\"x\",\"stream\":\"stdin\",\"time\":\"2024-01-15T11:00:00Z\"}",
      "{\"log\":\"x\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:00Z\"",
  };
  for (size_t i = 0; i < sizeof(declined) / sizeof(declined[0]); i++) {
    col_docker_fields f;
    if (col__docker_scan_fast((const uint8_t *)declined[i], strlen(declined[i]), scratch, &f))
      fail_msg("scanner accepted: %s", declined[i]);
  }
}

static void fast_path_declines_values_longer_than_its_buffer(void **state) {
  (void)state;
  static uint8_t scratch[COL_DOCKER_FAST_MAX];
  cairn_buf b;
  cairn_buf_init(&b);
  s_app(&b, "{\"log\":\"");
  for (size_t i = 0; i < COL_DOCKER_FAST_MAX; i++) s_app(&b, "\\t");
  s_app(&b, "x\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-15T11:00:00Z\"}");
  col_docker_fields f;
  assert_false(col__docker_scan_fast(b.ptr, b.len, scratch, &f));
  /* the parser still takes it through jansson */
  pair p;
  pair_init(&p, 0);
  pair_feed(&p, b.ptr, b.len);
  assert_true(p.got_fast.len > COL_DOCKER_FAST_MAX);
  pair_fini(&p);
  cairn_buf_fini(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fast_path_matches_jansson_on_generated_lines),
      cmocka_unit_test(fast_path_matches_jansson_on_broken_and_mutated_lines),
      cmocka_unit_test(fast_path_decodes_escapes_and_surrogate_pairs),
      cmocka_unit_test(fast_path_uses_the_usual_line_in_place),
      cmocka_unit_test(fast_path_declines_what_it_is_not_sure_about),
      cmocka_unit_test(fast_path_declines_values_longer_than_its_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
