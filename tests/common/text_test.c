/* tests/common/text_test.c: cairn_json_str (the 8-bytes-at-a-time escaper)
 * against a byte-by-byte reference over fixed cases, 200,000 seeded
 * random strings, at every offset and length around the word boundaries;
 * cairn_json_str_put (the same escaper, UTF-8 checked in the same pass)
 * against cairn_utf8_valid + that reference; base64 against RFC 4648. */
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

/* cairn_json_str_put of p[0..n) into a heap block of exactly
 * cairn_json_str_room(n) bytes (ASan catches a write past it) must be
 * cairn_utf8_valid + the reference escaper: the same bytes, or NULL. */
static void check_put_same(const uint8_t *p, size_t n) {
  size_t room = cairn_json_str_room(n);
  uint8_t *blk = malloc(room);
  assert_non_null(blk);
  uint8_t *pos = cairn_json_str_put(blk, p, n);
  if (!cairn_utf8_valid(p, n)) {
    assert_null(pos);
    free(blk);
    return;
  }
  assert_non_null(pos);
  cairn_buf want = {0};
  ref_json_str(&want, p, n);
  size_t got = (size_t)(pos - blk);
  if (got != want.len || memcmp(blk, want.ptr, got) != 0) {
    fprintf(stderr, "put mismatch for %zu input bytes:\n got  %.*s\n want %.*s\n", n, (int)got,
            (const char *)blk, (int)want.len, (const char *)want.ptr);
    fail();
  }
  cairn_buf_fini(&want);
  free(blk);
}

/* Every byte value at every position of 1..24 bytes of plain text (lone
 * bytes >= 0x80 are invalid UTF-8), and every 2-, 3- and 4-byte sequence
 * head with edge continuation bytes at every position (overlongs,
 * surrogates, > U+10FFFF, cut short by the end of the string). */
static void json_str_put_matches_check_then_escape_at_every_lane(void **state) {
  (void)state;
  uint8_t s[24];
  check_put_same((const uint8_t *)"", 0);
  for (size_t n = 1; n <= sizeof(s); n++) {
    for (size_t pos = 0; pos < n; pos++) {
      for (int c = 0; c < 256; c++) {
        memset(s, 'x', n);
        s[pos] = (uint8_t)c;
        check_put_same(s, n);
      }
    }
  }
  static const uint8_t heads[] = {0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5};
  static const uint8_t conts[] = {0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc0};
  for (size_t n = 1; n <= sizeof(s); n++) {
    for (size_t pos = 0; pos < n; pos++) {
      for (size_t h = 0; h < sizeof(heads); h++) {
        for (size_t c1 = 0; c1 < sizeof(conts); c1++) {
          for (size_t c2 = 0; c2 < sizeof(conts); c2++) {
            memset(s, 'y', n);
            s[pos] = heads[h];
            if (pos + 1 < n) s[pos + 1] = conts[c1];
            if (pos + 2 < n) s[pos + 2] = conts[c2];
            if (pos + 3 < n) s[pos + 3] = 0x80;
            check_put_same(s, n);
          }
        }
      }
    }
  }
}

/* Seeded random strings of ASCII, escapes and valid or broken multi-byte
 * sequences, lengths 0..300. */
static void json_str_put_matches_check_then_escape_on_random_strings(void **state) {
  (void)state;
  static const char *const pieces[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                       "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80",
                                       "\xe2\x82", "\x80", "\"", "\\", "\n", "\x01"};
  uint64_t x = 0x2545f4914f6cdd1dULL;
  uint8_t s[300 + 4];
  for (int iter = 0; iter < 100000; iter++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    size_t n = (size_t)(x % 301);
    unsigned density = (unsigned)(x >> 32) % 4;
    bool valid_only = (x >> 36) & 1; /* half the strings without broken pieces */
    size_t i = 0;
    while (i < n) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      if (density && (x >> 40) % (density == 1 ? 64 : density == 2 ? 8 : 3) == 0) {
        const char *pc = pieces[(x >> 48) % (sizeof(pieces) / sizeof(pieces[0]))];
        if (valid_only && !cairn_utf8_valid((const uint8_t *)pc, strlen(pc))) pc = "\xc3\xa9";
        size_t pl = strlen(pc);
        memcpy(s + i, pc, pl);
        i += pl;
      } else {
        s[i++] = (uint8_t)(0x20 + (x >> 8) % 0x5f);
      }
    }
    check_put_same(s, i);
  }
}

static void base64_matches_rfc4648(void **state) {
  (void)state;
  static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *const want[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                     "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
    size_t n = strlen(in[i]), wl = strlen(want[i]);
    cairn_buf b = {0};
    assert_int_equal(cairn_buf_append(&b, "pre", 3), CAIRN_OK);
    assert_int_equal(cairn_base64(&b, (const uint8_t *)in[i], n), CAIRN_OK);
    assert_int_equal(b.len, 3 + wl);
    assert_memory_equal(b.ptr + 3, want[i], wl);
    cairn_buf_fini(&b);
    assert_int_equal(cairn_base64_len(n), wl);
    uint8_t out[16];
    uint8_t *o = cairn_base64_put(out, (const uint8_t *)in[i], n);
    assert_int_equal((size_t)(o - out), wl);
    assert_memory_equal(out, want[i], wl);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(json_str_escapes_the_fixed_cases),
      cmocka_unit_test(json_str_matches_reference_for_every_byte_at_every_lane),
      cmocka_unit_test(json_str_matches_reference_on_random_strings),
      cmocka_unit_test(json_str_put_matches_check_then_escape_at_every_lane),
      cmocka_unit_test(json_str_put_matches_check_then_escape_on_random_strings),
      cmocka_unit_test(base64_matches_rfc4648),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
