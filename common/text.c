/* common/text.c: UTF-8 validation, JSON escaping and base64 on byte slices.
 * The validator has an ASCII fast path (8 bytes at a time) because most log
 * text is ASCII. */
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

cairn_err cairn_json_str(cairn_buf *out, const uint8_t *p, size_t n) {
  /* worst case every byte becomes \u00XX (6 bytes) */
  if (n > (SIZE_MAX - 2) / 6) return CAIRN_E_NOMEM;
  cairn_err e = cairn_buf_reserve(out, n * 6 + 2);
  if (e) return e;
  static const char hex[] = "0123456789abcdef";
  uint8_t *o = out->ptr + out->len;
  *o++ = '"';
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (c >= 0x20 && c != '"' && c != '\\') {
      *o++ = c;
      continue;
    }
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
