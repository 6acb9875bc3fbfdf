/* proto/frame.c: length-prefixed frames (4-byte big-endian length + packed
 * Envelope) and envelope decoding.
 * pb_frame_peek only reads the header and never allocates, so a hostile length
 * is refused before the receive buffer is ever grown for it.
 */
#include <stdint.h>

#include "proto/internal.h"
#include "proto/proto.h"

void pb_limits_default(pb_limits *l) {
  l->max_frame = PB_DEFAULT_MAX_FRAME;
  l->max_raw = PB_DEFAULT_MAX_RAW;
  l->max_records = PB_DEFAULT_MAX_RECORDS;
}

cairn_err pb_frame_peek(const uint8_t *buf, size_t len, uint32_t max_frame, const uint8_t **body,
                        size_t *body_len, size_t *consumed) {
  if (len < PB_FRAME_HEADER) return CAIRN_E_AGAIN;
  uint32_t n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 |
               (uint32_t)buf[3];
  if (n == 0 || n > max_frame) {
    *body_len = n; /* lets the caller name the announced size in its reason */
    return CAIRN_E_LIMIT;
  }
  if (len - PB_FRAME_HEADER < n) return CAIRN_E_AGAIN;
  *body = buf + PB_FRAME_HEADER;
  *body_len = n;
  *consumed = PB_FRAME_HEADER + (size_t)n;
  return CAIRN_OK;
}

cairn_err pb_frame_append(cairn_buf *out, const Cairn__Envelope *env) {
  if (env->msg_case == CAIRN__ENVELOPE__MSG__NOT_SET) return CAIRN_E_INVAL;
  size_t n = cairn__envelope__get_packed_size(env);
  if (n == 0) return CAIRN_E_INVAL;
  if (n > UINT32_MAX) return CAIRN_E_LIMIT;
  cairn_err e = cairn_buf_reserve(out, PB_FRAME_HEADER + n);
  if (e) return e;
  uint8_t *p = out->ptr + out->len;
  p[0] = (uint8_t)(n >> 24);
  p[1] = (uint8_t)(n >> 16);
  p[2] = (uint8_t)(n >> 8);
  p[3] = (uint8_t)n;
  size_t w = cairn__envelope__pack(env, p + PB_FRAME_HEADER);
  out->len += PB_FRAME_HEADER + w;
  return CAIRN_OK;
}

cairn_err pb_envelope_decode(const uint8_t *body, size_t len, cairn_arena *a,
                             Cairn__Envelope **out) {
  *out = NULL;
  pb__budget_alloc ba;
  ProtobufCAllocator al = pb__budget_allocator(&ba, a, SIZE_MAX);
  Cairn__Envelope *env = cairn__envelope__unpack(&al, len, body);
  if (!env) return ba.oom ? CAIRN_E_NOMEM : CAIRN_E_PROTO;
  if (env->msg_case == CAIRN__ENVELOPE__MSG__NOT_SET) return CAIRN_E_PROTO;
  *out = env;
  return CAIRN_OK;
}
