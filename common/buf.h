/* common/buf.h: growable byte buffer (ptr, len, cap) with reserve/append/consume.
 *
 * Caveats:
 *  - Any call that takes a cairn_buf * may reallocate: never keep b->ptr
 *    across such a call; re-read it.
 *  - A zero-initialised cairn_buf ({0}) is a valid empty buffer.
 */
#ifndef CAIRN_COMMON_BUF_H
#define CAIRN_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct cairn_buf {
  uint8_t *ptr; /* owned; NULL while cap == 0 */
  size_t len;   /* bytes used */
  size_t cap;   /* bytes allocated */
} cairn_buf;

/* Make b empty without allocating. */
void cairn_buf_init(cairn_buf *b);

/* Release the memory; b is left empty and reusable. */
void cairn_buf_fini(cairn_buf *b);

/* Ensure cap - len >= extra. Returns CAIRN_OK or CAIRN_E_NOMEM (b unchanged). */
CAIRN_MUST_CHECK cairn_err cairn_buf_reserve(cairn_buf *b, size_t extra);

/* Append n bytes from p (p may be NULL when n == 0). CAIRN_E_NOMEM on failure. */
CAIRN_MUST_CHECK cairn_err cairn_buf_append(cairn_buf *b, const void *p, size_t n);

/* Append a NUL-terminated string without its NUL. */
CAIRN_MUST_CHECK cairn_err cairn_buf_append_str(cairn_buf *b, const char *s);

/* Append printf-style formatted text (no NUL counted in len). */
CAIRN_MUST_CHECK cairn_err cairn_buf_printf(cairn_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Drop the first n bytes (n <= len), moving the rest to the front. */
void cairn_buf_consume(cairn_buf *b, size_t n);

/* len = 0, keeps the allocation. */
static inline void cairn_buf_reset(cairn_buf *b) { b->len = 0; }

#endif
