/* common/text.c: UTF-8 validation, JSON escaping and base64 on byte slices.
 * The validator and the JSON escaper have fast paths (8 bytes at a time, no
 * SIMD intrinsics) because most log text is ASCII with few bytes to escape.
 * One escaper (json_str_write) serves cairn_json_str (bytes >= 0x80 copied)
 * and cairn_json_str_put (UTF-8 validated in the same pass). */
#include "common/text.h"

#include <string.h>

bool cairn_utf8_valid(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    /* ASCII fast path */
    while (i + 8 <= n) {
      uint64_t w;
      memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= n) break;
    uint8_t c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

/* Nonzero when one of the 8 bytes of w needs more than a copy: a control
 * byte (< 0x20), '"' or '\\', and with utf8 also a byte >= 0x80 (the start
 * or middle of a multi-byte sequence, to be validated); bit 7 of each such
 * byte is set. A subtraction's borrow can only flag a byte above one that
 * really matched, so the lowest flag is always a real one. */
static inline uint64_t json_word_flags(uint64_t w, bool utf8) {
  const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
  uint64_t ctl = (w - ones * 0x20) & ~w;
  uint64_t q = w ^ (ones * '"');
  uint64_t bs = w ^ (ones * '\\');
  return (ctl | ((q - ones) & ~q) | ((bs - ones) & ~bs) | (utf8 ? w : 0)) & high;
}

/* Index (0..7) in memory order of the lowest flagged byte of a nonzero
 * json_word_flags mask. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
static inline size_t json_first_flag(uint64_t m) { return (size_t)__builtin_clzll(m) >> 3; }
#else
static inline size_t json_first_flag(uint64_t m) { return (size_t)__builtin_ctzll(m) >> 3; }
#endif

/* The last rem (1..7) bytes before end, at memory positions 0..rem-1 of a
 * word whose other bytes are 0; end - 8 must be readable (a string of at
 * least 8 bytes, its tail after the 8-byte steps). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
static inline uint64_t json_tail_word(const uint8_t *end, size_t rem) {
  uint64_t w;
  memcpy(&w, end - 8, 8);
  return w << (8 * (8 - rem));
}
#else
static inline uint64_t json_tail_word(const uint8_t *end, size_t rem) {
  uint64_t w;
  memcpy(&w, end - 8, 8);
  return w >> (8 * (8 - rem));
}
#endif

/* Append the escape of one ASCII byte that json_word_flags flags. */
static uint8_t *json_escape_byte(uint8_t *o, uint8_t c) {
  static const char hex[] = "0123456789abcdef";
  *o++ = '\\';
  switch (c) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '\n': *o++ = 'n'; break;
    case '\r': *o++ = 'r'; break;
    case '\t': *o++ = 't'; break;
    case '\b': *o++ = 'b'; break;
    case '\f': *o++ = 'f'; break;
    default:
      *o++ = 'u';
      *o++ = '0';
      *o++ = '0';
      *o++ = (uint8_t)hex[c >> 4];
      *o++ = (uint8_t)hex[c & 15];
  }
  return o;
}

/* Length of the valid UTF-8 sequence of 2-4 bytes at p[0..n) (p[0] >= 0x80),
 * 0 when it is not one: the rules of cairn_utf8_valid (no overlongs, no
 * surrogates, nothing above U+10FFFF). */
static inline size_t utf8_seq(const uint8_t *p, size_t n) {
  uint8_t c = p[0];
  if (c >= 0xC2 && c <= 0xDF) return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
    uint32_t cp = (uint32_t)(c & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
    return cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF) ? 0 : 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
      return 0;
    uint32_t cp = (uint32_t)(c & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
                  (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
    return cp < 0x10000 || cp > 0x10FFFF ? 0 : 4;
  }
  return 0;
}

/* The one JSON string escaper: p[0..n) as a literal (quotes included) at o,
 * returning the new end. Plain bytes are copied 8 at a time: each word is
 * stored whole, then the output advances to its first byte needing more
 * than a copy (or past all 8). With utf8, a tail of 1..7 bytes after at
 * least one word is tested as one word too, and bytes >= 0x80 must form valid
 * UTF-8 (else NULL, with bytes written past o); without, they are copied.
 * Needs cairn_json_str_room(n) bytes at o. Always inlined with a constant
 * utf8, so each caller gets its own loop. */
static inline __attribute__((always_inline)) uint8_t *json_str_write(uint8_t *o, const uint8_t *p,
                                                                     size_t n, bool utf8) {
  *o++ = '"';
  size_t i = 0;
  for (;;) {
    while (i + 8 <= n) {
      uint64_t w;
      memcpy(&w, p + i, 8);
      memcpy(o, &w, 8); /* room: 6n covers the overshoot */
      uint64_t m = json_word_flags(w, utf8);
      if (!m) {
        o += 8;
        i += 8;
        continue;
      }
      size_t plain = json_first_flag(m);
      o += plain;
      i += plain;
      uint8_t c = p[i];
      if (c >= 0x80) break; /* (utf8 only) a multi-byte sequence: validated below */
      if (c == '"' || c == '\\') { /* the common escapes, without the switch */
        o[0] = '\\';
        o[1] = c;
        o += 2;
      } else {
        o = json_escape_byte(o, c);
      }
      i++;
    }
    if (i >= n) break;
    /* the tail as one word (the rest is zeros, flagged); only with utf8,
     * where each string is one record field: cairn_json_str gets whole
     * lines, whose tail ends in '\n' so the word test would only cost */
    if (utf8 && n >= 8 && n - i < 8) {
      size_t rem = n - i;
      uint64_t w = json_tail_word(p + n, rem);
      uint64_t m = json_word_flags(w, utf8);
      if (json_first_flag(m) >= rem) { /* m != 0: the zeros after the tail */
        memcpy(o, &w, 8);
        o += rem;
        break;
      }
    }
    uint8_t c = p[i];
    if (c < 0x80 || !utf8) {
      if (c >= 0x20 && c != '"' && c != '\\') *o++ = c;
      else o = json_escape_byte(o, c);
      i++;
      continue;
    }
    size_t len = utf8_seq(p + i, n - i);
    if (!len) return NULL;
    memcpy(o, p + i, len);
    o += len;
    i += len;
  }
  *o++ = '"';
  return o;
}

uint8_t *cairn_json_str_put(uint8_t *o, const uint8_t *p, size_t n) {
  return json_str_write(o, p, n, true);
}

cairn_err cairn_json_str(cairn_buf *out, const uint8_t *p, size_t n) {
  if (n > CAIRN_JSON_STR_MAX) return CAIRN_E_NOMEM;
  cairn_err e = cairn_buf_reserve(out, cairn_json_str_room(n));
  if (e) return e;
  uint8_t *o = json_str_write(out->ptr + out->len, p, n, false);
  out->len = (size_t)(o - out->ptr);
  return CAIRN_OK;
}

uint8_t *cairn_base64_put(uint8_t *o, const uint8_t *p, size_t n) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    o[0] = (uint8_t)tbl[v >> 18];
    o[1] = (uint8_t)tbl[(v >> 12) & 63];
    o[2] = (uint8_t)tbl[(v >> 6) & 63];
    o[3] = (uint8_t)tbl[v & 63];
    o += 4;
  }
  if (i < n) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
    o[0] = (uint8_t)tbl[v >> 18];
    o[1] = (uint8_t)tbl[(v >> 12) & 63];
    o[2] = i + 1 < n ? (uint8_t)tbl[(v >> 6) & 63] : '=';
    o[3] = '=';
    o += 4;
  }
  return o;
}

cairn_err cairn_base64(cairn_buf *out, const uint8_t *p, size_t n) {
  if (n / 3 >= SIZE_MAX / 4) return CAIRN_E_NOMEM;
  cairn_err e = cairn_buf_reserve(out, cairn_base64_len(n));
  if (e) return e;
  uint8_t *o = cairn_base64_put(out->ptr + out->len, p, n);
  out->len = (size_t)(o - out->ptr);
  return CAIRN_OK;
}
