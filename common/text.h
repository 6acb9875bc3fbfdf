/* common/text.h: byte-text helpers shared by every output path: UTF-8
 * validation, JSON string escaping, base64. Used on per-record paths, so
 * they work on (ptr, len) slices and append into a cairn_buf.
 */
#ifndef CAIRN_COMMON_TEXT_H
#define CAIRN_COMMON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* True when p[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool cairn_utf8_valid(const uint8_t *p, size_t n);

/* Append p[0..n) as a JSON string literal with quotes. The bytes must be
 * valid UTF-8 (check first); control bytes become \uXXXX / \n \t ...
 * CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err cairn_json_str(cairn_buf *out, const uint8_t *p, size_t n);

/* Append standard base64 (with padding) of p[0..n). CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err cairn_base64(cairn_buf *out, const uint8_t *p, size_t n);

#endif
