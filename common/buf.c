/* common/buf.c: cairn_buf. Growth doubles capacity so appends are amortised O(1). */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cairn_buf_init(cairn_buf *b) {
  b->ptr = NULL;
  b->len = 0;
  b->cap = 0;
}

void cairn_buf_fini(cairn_buf *b) {
  free(b->ptr);
  cairn_buf_init(b);
}

cairn_err cairn_buf_reserve(cairn_buf *b, size_t extra) {
  if (b->cap - b->len >= extra) return CAIRN_OK;
  if (extra > SIZE_MAX / 2 - b->len) return CAIRN_E_NOMEM;
  size_t need = b->len + extra;
  size_t ncap = b->cap ? b->cap : 64;
  while (ncap < need) ncap *= 2;
  uint8_t *p = realloc(b->ptr, ncap);
  if (!p) return CAIRN_E_NOMEM;
  b->ptr = p;
  b->cap = ncap;
  return CAIRN_OK;
}

cairn_err cairn_buf_append(cairn_buf *b, const void *p, size_t n) {
  if (n == 0) return CAIRN_OK;
  cairn_err e = cairn_buf_reserve(b, n);
  if (e) return e;
  memcpy(b->ptr + b->len, p, n);
  b->len += n;
  return CAIRN_OK;
}

cairn_err cairn_buf_append_str(cairn_buf *b, const char *s) {
  return cairn_buf_append(b, s, strlen(s));
}

cairn_err cairn_buf_printf(cairn_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[256];
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < 0) return CAIRN_E_INVAL;
  if ((size_t)n < sizeof(tmp)) return cairn_buf_append(b, tmp, (size_t)n);
  cairn_err e = cairn_buf_reserve(b, (size_t)n + 1);
  if (e) return e;
  va_start(ap, fmt);
  vsnprintf((char *)b->ptr + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return CAIRN_OK;
}

void cairn_buf_consume(cairn_buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->ptr, b->ptr + n, b->len - n);
  b->len -= n;
}
