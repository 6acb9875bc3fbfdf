/* tests/query/output_test.c: query/output.c on hand-built records, no store:
 * UTF-8 decoding, terminal escaping, RFC 4180 fields, and the aligned and
 * coloured text modes used on a terminal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "query/internal.h"

static char *escape_text(const char *s, size_t n) {
  cairn_buf b = {0};
  assert_int_equal(qry__text_escape(&b, (const uint8_t *)s, n), CAIRN_OK);
  assert_int_equal(cairn_buf_append(&b, "", 1), CAIRN_OK);
  return (char *)b.ptr;
}

static char *csv_field(const char *s, size_t n) {
  cairn_buf b = {0};
  assert_int_equal(qry__csv_field(&b, (const uint8_t *)s, n), CAIRN_OK);
  assert_int_equal(cairn_buf_append(&b, "", 1), CAIRN_OK);
  return (char *)b.ptr;
}

#define ESC_EQ(lit, want)                                                                        \
  do {                                                                                         \
    char *got_ = escape_text((lit), sizeof(lit) - 1);                                          \
    assert_string_equal(got_, (want));                                                         \
    free(got_);                                                                                \
  } while (0)

#define CSV_EQ(lit, want)                                                                        \
  do {                                                                                         \
    char *got_ = csv_field((lit), sizeof(lit) - 1);                                            \
    assert_string_equal(got_, (want));                                                         \
    free(got_);                                                                                \
  } while (0)

static void utf8_seq_rejects_overlong_surrogate_and_out_of_range(void **state) {
  uint32_t cp;
  assert_int_equal(qry__utf8_seq((const uint8_t *)"\xC3\xA9", 2, &cp), 2);
  assert_int_equal(cp, 0xE9);
  assert_int_equal(qry__utf8_seq((const uint8_t *)"\xF0\x9F\x98\x80", 4, &cp), 4);
  assert_int_equal(cp, 0x1F600);
  assert_int_equal(qry__utf8_seq((const uint8_t *)"\xC0\x80", 2, &cp), 0);     /* overlong NUL */
  assert_int_equal(qry__utf8_seq((const uint8_t *)"\xE0\x80\xAF", 3, &cp), 0); /* overlong / */
  assert_int_equal(qry__utf8_seq((const uint8_t *)"\xED\xA0\x80", 3, &cp), 0); /* surrogate */
  assert_int_equal(qry__utf8_seq((const uint8_t *)"\xF4\x90\x80\x80", 4, &cp), 0); /* >10FFFF */
  assert_int_equal(qry__utf8_seq((const uint8_t *)"\xE2\x82", 2, &cp), 0); /* truncated */
  assert_int_equal(qry__utf8_seq((const uint8_t *)"\x80", 1, &cp), 0);     /* lone continuation */
}

static void text_escape_keeps_utf8_and_escapes_controls(void **state) {
  ESC_EQ("plain text", "plain text");
  ESC_EQ("caf\xC3\xA9 \xE2\x9C\x93", "caf\xC3\xA9 \xE2\x9C\x93");
  ESC_EQ("a\nb\rc\td", "a\\nb\\rc\\td");
  ESC_EQ("back\\slash", "back\\\\slash");
  ESC_EQ("\x1b[2J\x07\x7f", "\\x1B[2J\\x07\\x7F");
  ESC_EQ("nul\0end", "nul\\x00end");
  ESC_EQ("csi \xC2\x9B" "31m", "csi \\u009B31m"); /* C1 control, valid UTF-8 */
  ESC_EQ("bad \xFF\xC3(", "bad \\xFF\\xC3(");
  ESC_EQ("", "");
}

static void csv_field_quotes_only_when_needed(void **state) {
  CSV_EQ("simple", "simple");
  CSV_EQ("", "");
  CSV_EQ("a,b", "\"a,b\"");
  CSV_EQ("say \"hi\"", "\"say \"\"hi\"\"\"");
  CSV_EQ("two\nlines", "\"two\nlines\"");
  CSV_EQ("cr\rhere", "\"cr\rhere\"");
  CSV_EQ(" padded", "\" padded\"");
  CSV_EQ("caf\xC3\xA9", "caf\xC3\xA9");
  CSV_EQ("bin\xFF\0x", "bin\\xFF\\x00x");
}

static Cairn__Record record(int64_t t, const char *node, const char *ns, const char *pod,
                            const char *ctr, int stream, const char *msg) {
  Cairn__Record r = CAIRN__RECORD__INIT;
  r.time_ns = t;
  r.source = CAIRN__SOURCE__SOURCE_CONTAINER;
  r.stream = (Cairn__LogStream)stream;
  r.node = (char *)node;
  r.kube_namespace = (char *)ns;
  r.pod = (char *)pod;
  r.container = (char *)ctr;
  r.message.data = (uint8_t *)msg;
  r.message.len = strlen(msg);
  return r;
}

/* Render recs with a writer in the given mode into a string (owned). */
static char *render(const Cairn__Record *recs, size_t n, qry_format fmt, bool align, bool color) {
  char *s = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&s, &len);
  assert_non_null(f);
  qry_writer w;
  assert_int_equal(qry__writer_init(&w, f, fmt, align, color), CAIRN_OK);
  assert_int_equal(qry__writer_begin(&w), CAIRN_OK);
  for (size_t i = 0; i < n; i++) assert_int_equal(qry__writer_record(&w, &recs[i]), CAIRN_OK);
  assert_int_equal(qry__writer_finish(&w), CAIRN_OK);
  assert_int_equal(w.written, n);
  qry__writer_fini(&w);
  fclose(f);
  return s;
}

static void text_aligned_mode_pads_columns(void **state) {
  const int64_t t = 1705312800LL * 1000000000LL; /* 2024-01-15T10:00:00Z */
  Cairn__Record recs[2] = {
      record(t, "n1", "prod", "api-0", "app", CAIRN__LOG_STREAM__LOG_STREAM_STDOUT, "one"),
      record(t + 1, "node-long", "ns", "p", "c", CAIRN__LOG_STREAM__LOG_STREAM_STDERR, "two"),
  };
  char *s = render(recs, 2, QRY_FMT_TEXT, true, false);
  assert_string_equal(s, "2024-01-15T10:00:00.000000000Z n1        prod/api-0/app stdout one\n"
                         "2024-01-15T10:00:00.000000001Z node-long ns/p/c         stderr two\n");
  free(s);
  s = render(recs, 2, QRY_FMT_TEXT, false, false);
  assert_string_equal(s, "2024-01-15T10:00:00.000000000Z n1 prod/api-0/app stdout one\n"
                         "2024-01-15T10:00:00.000000001Z node-long ns/p/c stderr two\n");
  free(s);
}

static void text_aligned_mode_flushes_in_windows(void **state) {
  /* more rows than one window: all rendered, in order, each one line */
  size_t n = QRY_ALIGN_WINDOW * 2 + 3;
  Cairn__Record *recs = calloc(n, sizeof(*recs));
  char (*msgs)[16] = calloc(n, sizeof(*msgs));
  assert_non_null(recs);
  assert_non_null(msgs);
  for (size_t i = 0; i < n; i++) {
    snprintf(msgs[i], sizeof(msgs[i]), "m%zu", i);
    recs[i] = record((int64_t)i, "n", "ns", "p", "c", 1, msgs[i]);
  }
  char *s = render(recs, n, QRY_FMT_TEXT, true, false);
  size_t lines = 0;
  for (char *p = s; *p; p++) lines += *p == '\n';
  assert_int_equal(lines, n);
  assert_non_null(strstr(s, " m0\n"));
  char last[24];
  snprintf(last, sizeof(last), " m%zu\n", n - 1);
  assert_non_null(strstr(s, last));
  free(s);
  free(msgs);
  free(recs);
}

static void text_color_mode_wraps_cells_and_marks_stderr(void **state) {
  Cairn__Record r = record(0, "n", "ns", "p", "c", CAIRN__LOG_STREAM__LOG_STREAM_STDERR, "boom");
  char *s = render(&r, 1, QRY_FMT_TEXT, false, true);
  assert_non_null(strstr(s, "\033[2m1970-01-01T00:00:00.000000000Z\033[0m "));
  assert_non_null(strstr(s, "\033[31mstderr\033[0m boom\n"));
  free(s);
  /* colour never leaks into machine formats */
  s = render(&r, 1, QRY_FMT_CSV, true, true);
  assert_null(strchr(s, '\033'));
  assert_string_equal(s, "time,node,namespace,pod,container,stream,source,message\r\n"
                         "1970-01-01T00:00:00.000000000Z,n,ns,p,c,stderr,container,boom\r\n");
  free(s);
}

static void text_escapes_hostile_metadata_too(void **state) {
  Cairn__Record r = record(0, "n\x1b]0;x\x07", "ns", "p\nq", "c", 1, "m");
  char *s = render(&r, 1, QRY_FMT_TEXT, false, false);
  assert_string_equal(s, "1970-01-01T00:00:00.000000000Z n\\x1B]0;x\\x07 ns/p\\nq/c stdout m\n");
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(utf8_seq_rejects_overlong_surrogate_and_out_of_range),
      cmocka_unit_test(text_escape_keeps_utf8_and_escapes_controls),
      cmocka_unit_test(csv_field_quotes_only_when_needed),
      cmocka_unit_test(text_aligned_mode_pads_columns),
      cmocka_unit_test(text_aligned_mode_flushes_in_windows),
      cmocka_unit_test(text_color_mode_wraps_cells_and_marks_stderr),
      cmocka_unit_test(text_escapes_hostile_metadata_too),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
