/* common/text.c: UTF-8 validation, JSON escaping and base64 on byte slices.
 * The validator and the JSON escaper have fast paths (8 bytes at a time, no
 * SIMD intrinsics) because most log text is ASCII with few bytes to escape. */
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

/* Nonzero when one of the 8 bytes of w needs escaping in a JSON string: a
 * control byte (< 0x20), '"' or '\\'; bit 7 of each such byte is set. A
 * subtraction's borrow can only flag a byte above one that really matched,
 * so the lowest flag is always a real one (the caller needs no more). */
static inline uint64_t json_word_special(uint64_t w) {
  const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
  uint64_t ctl = (w - ones * 0x20) & ~w;
  uint64_t q = w ^ (ones * '"');
  uint64_t bs = w ^ (ones * '\\');
  return (ctl | ((q - ones) & ~q) | ((bs - ones) & ~bs)) & high;
}

/* Index (0..7) in memory order of the lowest flagged byte of a nonzero
 * json_word_special mask. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
static inline size_t json_first_flag(uint64_t m) { return (size_t)__builtin_clzll(m) >> 3; }
#else
static inline size_t json_first_flag(uint64_t m) { return (size_t)__builtin_ctzll(m) >> 3; }
#endif

/* Append the escape of one byte that json_word_special flags. */
static inline uint8_t *json_escape_byte(uint8_t *o, uint8_t c) {
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

/* Plain bytes are copied 8 at a time: each word is stored whole, then the
 * output advances to its first byte needing an escape (or past all 8), that
 * byte is escaped and the scan goes on right after it. The reserve below
 * leaves room for the whole-word store. */
cairn_err cairn_json_str(cairn_buf *out, const uint8_t *p, size_t n) {
  /* worst case every byte becomes \u00XX (6 bytes) */
  if (n > (SIZE_MAX - 2) / 6) return CAIRN_E_NOMEM;
  cairn_err e = cairn_buf_reserve(out, n * 6 + 2);
  if (e) return e;
  uint8_t *o = out->ptr + out->len;
  *o++ = '"';
  size_t i = 0;
  while (i + 8 <= n) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    uint64_t m = json_word_special(w);
    memcpy(o, &w, 8);
    if (!m) {
      o += 8;
      i += 8;
      continue;
    }
    size_t plain = json_first_flag(m);
    o += plain;
    i += plain;
    o = json_escape_byte(o, p[i]);
    i++;
  }
  for (; i < n; i++) {
    uint8_t c = p[i];
    if (c >= 0x20 && c != '"' && c != '\\') *o++ = c;
    else o = json_escape_byte(o, c);
  }
  *o++ = '"';
  out->len = (size_t)(o - out->ptr);
  return CAIRN_OK;
}

cairn_err cairn_base64(cairn_buf *out, const uint8_t *p, size_t n) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t olen = (n + 2) / 3 * 4;
  cairn_err e = cairn_buf_reserve(out, olen);
  if (e) return e;
  uint8_t *o = out->ptr + out->len;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    *o++ = (uint8_t)tbl[v >> 18];
    *o++ = (uint8_t)tbl[(v >> 12) & 63];
    *o++ = (uint8_t)tbl[(v >> 6) & 63];
    *o++ = (uint8_t)tbl[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
    *o++ = (uint8_t)tbl[v >> 18];
    *o++ = (uint8_t)tbl[(v >> 12) & 63];
    *o++ = i + 1 < n ? (uint8_t)tbl[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  out->len += olen;
  return CAIRN_OK;
}
