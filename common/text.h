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
 * valid UTF-8 (check first): bytes >= 0x80 are copied as they are, never
 * checked. '"' '\\' \n \r \t \b \f are escaped as such, other control bytes
 * (< 0x20) as \u00xx; 0x7f is copied. CAIRN_E_NOMEM (out->len unchanged). */
CAIRN_MUST_CHECK cairn_err cairn_json_str(cairn_buf *out, const uint8_t *p, size_t n);

/* Append standard base64 (with padding) of p[0..n). CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err cairn_base64(cairn_buf *out, const uint8_t *p, size_t n);

/* ---- writing into reserved space (per-record renderers) ----
 * The caller reserves the room first; these check no capacity. */

/* Largest n cairn_json_str_room accepts without overflow. */
#define CAIRN_JSON_STR_MAX ((SIZE_MAX - 10) / 6)

/* Bytes cairn_json_str_put may write at *pos for n input bytes (n <=
 * CAIRN_JSON_STR_MAX): 6n + 2 (every byte as \u00xx, the quotes) plus 8
 * of scratch, since whole 8-byte words are stored past the end. */
static inline size_t cairn_json_str_room(size_t n) { return 6 * n + 10; }

/* cairn_utf8_valid + cairn_json_str in one pass, into space the caller
 * reserved: writes p[0..n) as a JSON string literal with quotes at o
 * (cairn_json_str_room(n) bytes must be writable there) and returns the end
 * of what it wrote. Returns NULL when p is not valid UTF-8 (not an error:
 * the caller writes something else at o instead, e.g. "" or base64; up to
 * cairn_json_str_room(n) bytes at o were overwritten). p is borrowed for
 * the call. A pointer return rather than an out-parameter: it runs for
 * every string of every record the Kafka forwarder renders. */
CAIRN_MUST_CHECK uint8_t *cairn_json_str_put(uint8_t *o, const uint8_t *p, size_t n);

/* Bytes of the base64 of n bytes: 4 * ceil(n / 3) (n / 3 < SIZE_MAX / 4). */
static inline size_t cairn_base64_len(size_t n) { return (n + 2) / 3 * 4; }

/* Standard base64 (with padding) of p[0..n) at o (cairn_base64_len(n)
 * bytes must be writable there); returns the end of what it wrote. p is
 * borrowed for the call. */
CAIRN_MUST_CHECK uint8_t *cairn_base64_put(uint8_t *o, const uint8_t *p, size_t n);

#endif
