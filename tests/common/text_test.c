/* tests/common/text_test.c: cairn_json_str (the 8-bytes-at-a-time escaper)
 * against a byte-by-byte reference over fixed cases, 200,000 seeded
 * random strings, at every offset and length around the word boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/text.h"

/* The escaper as it was before the fast path: one byte at a time. */
static void ref_json_str(cairn_buf *out, const uint8_t *p, size_t n) {
  static const char hex[] = "0123456789abcdef";
  assert_int_equal(cairn_buf_append(out, "\"", 1), CAIRN_OK);
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    char e[8];
    size_t el = 0;
    if (c >= 0x20 && c != '"' && c != '\\') {
      e[el++] = (char)c;
    } else {
      e[el++] = '\\';
      switch (c) {
        case '"': e[el++] = '"'; break;
        case '\\': e[el++] = '\\'; break;
        case '\n': e[el++] = 'n'; break;
        case '\r': e[el++] = 'r'; break;
        case '\t': e[el++] = 't'; break;
        case '\b': e[el++] = 'b'; break;
        case '\f': e[el++] = 'f'; break;
        default:
          e[el++] = 'u';
          e[el++] = '0';
          e[el++] = '0';
          e[el++] = hex[c >> 4];
          e[el++] = hex[c & 15];
      }
    }
    assert_int_equal(cairn_buf_append(out, e, el), CAIRN_OK);
  }
  assert_int_equal(cairn_buf_append(out, "\"", 1), CAIRN_OK);
}

static void check_same(const uint8_t *p, size_t n) {
  cairn_buf got = {0}, want = {0};
  assert_int_equal(cairn_buf_append(&got, "pre", 3), CAIRN_OK); /* appends, never resets */
  assert_int_equal(cairn_json_str(&got, p, n), CAIRN_OK);
  assert_int_equal(cairn_buf_append(&want, "pre", 3), CAIRN_OK);
  ref_json_str(&want, p, n);
  if (got.len != want.len || memcmp(got.ptr, want.ptr, got.len) != 0) {
    fprintf(stderr, "mismatch for %zu input bytes:\n got  %.*s\n want %.*s\n", n, (int)got.len,
            (const char *)got.ptr, (int)want.len, (const char *)want.ptr);
    fail();
  }
  cairn_buf_fini(&got);
  cairn_buf_fini(&want);
}

static void json_str_escapes_the_fixed_cases(void **state) {
  (void)state;
  cairn_buf b = {0};
  const char *in = "a\"b\\c\nd\re\tf\bg\fh\x01i\x1fj\x7fk \xc3\xa9 plain text that is long";
  assert_int_equal(cairn_json_str(&b, (const uint8_t *)in, strlen(in)), CAIRN_OK);
  const char *want = "\"a\\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0001i\\u001fj\x7fk \xc3\xa9 plain text "
                     "that is long\"";
  assert_int_equal(b.len, strlen(want));
  assert_memory_equal(b.ptr, want, b.len);
  cairn_buf_reset(&b);
  assert_int_equal(cairn_json_str(&b, (const uint8_t *)"", 0), CAIRN_OK);
  assert_int_equal(b.len, 2);
  assert_memory_equal(b.ptr, "\"\"", 2);
  cairn_buf_fini(&b);
}

/* Every byte value at every position of a 1..24-byte string of plain text,
 * so each special byte is seen in every lane of a word and in the tail, and
 * bytes just next to the special ranges (0x1f/0x20, 0x21/0x22/0x23,
 * 0x5b/0x5c/0x5d, 0x7f..0xff) are compared too. */
static void json_str_matches_reference_for_every_byte_at_every_lane(void **state) {
  (void)state;
  uint8_t s[24];
  for (size_t n = 1; n <= sizeof(s); n++) {
    for (size_t pos = 0; pos < n; pos++) {
      for (int c = 0; c < 256; c++) {
        memset(s, 'x', n);
        s[pos] = (uint8_t)c;
        check_same(s, n);
      }
    }
  }
}

/* Seeded random strings with few, many and no specials, lengths 0..300. */
static void json_str_matches_reference_on_random_strings(void **state) {
  (void)state;
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  uint8_t s[300];
  for (int iter = 0; iter < 200000; iter++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    size_t n = (size_t)(x % (sizeof(s) + 1));
    unsigned density = (unsigned)(x >> 32) % 4; /* 0: none .. 3: a third */
    for (size_t i = 0; i < n; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      uint8_t c = (uint8_t)(0x20 + (x >> 8) % 0x60);
      if (c == '"' || c == '\\') c = 'q';
      if (density && (x >> 40) % (density == 1 ? 64 : density == 2 ? 8 : 3) == 0) {
        static const uint8_t sp[] = {'"', '\\', '\n', '\r', '\t', 0, 1, 0x1f, 0x7f, 0x80, 0xff};
        c = sp[(x >> 48) % sizeof(sp)];
      }
      s[i] = c;
    }
    check_same(s, n);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(json_str_escapes_the_fixed_cases),
      cmocka_unit_test(json_str_matches_reference_for_every_byte_at_every_lane),
      cmocka_unit_test(json_str_matches_reference_on_random_strings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
