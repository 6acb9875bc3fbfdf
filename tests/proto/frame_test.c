/* tests/proto/frame_test.c: frame boundaries (pb_frame_peek), frame building
 * and envelope decoding of good and hostile bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

#include "proto/proto.h"

static void put_len(uint8_t *p, uint32_t n) {
  p[0] = (uint8_t)(n >> 24);
  p[1] = (uint8_t)(n >> 16);
  p[2] = (uint8_t)(n >> 8);
  p[3] = (uint8_t)n;
}

static void frame_peek_waits_for_whole_header(void **state) {
  (void)state;
  uint8_t b[8];
  put_len(b, 4);
  memcpy(b + 4, "abcd", 4);
  const uint8_t *body;
  size_t blen, used;
  for (size_t n = 0; n < 4; n++)
    assert_int_equal(pb_frame_peek(b, n, 100, &body, &blen, &used), CAIRN_E_AGAIN);
}

static void frame_peek_waits_for_whole_body(void **state) {
  (void)state;
  uint8_t b[8];
  put_len(b, 4);
  memcpy(b + 4, "abcd", 4);
  const uint8_t *body;
  size_t blen, used;
  for (size_t n = 4; n < 8; n++)
    assert_int_equal(pb_frame_peek(b, n, 100, &body, &blen, &used), CAIRN_E_AGAIN);
  assert_int_equal(pb_frame_peek(b, 8, 100, &body, &blen, &used), CAIRN_OK);
  assert_ptr_equal(body, b + 4);
  assert_int_equal(blen, 4);
  assert_int_equal(used, 8);
}

static void frame_peek_rejects_oversized_length_from_header_alone(void **state) {
  (void)state;
  uint8_t b[4];
  put_len(b, 0xfffffff0u);
  const uint8_t *body;
  size_t blen = 0, used;
  assert_int_equal(pb_frame_peek(b, 4, 1u << 20, &body, &blen, &used), CAIRN_E_LIMIT);
  assert_int_equal(blen, 0xfffffff0u);
  put_len(b, (1u << 20) + 1);
  assert_int_equal(pb_frame_peek(b, 4, 1u << 20, &body, &blen, &used), CAIRN_E_LIMIT);
  put_len(b, 1u << 20); /* exactly the limit is fine: wait for the body */
  assert_int_equal(pb_frame_peek(b, 4, 1u << 20, &body, &blen, &used), CAIRN_E_AGAIN);
}

static void frame_peek_rejects_zero_length(void **state) {
  (void)state;
  uint8_t b[4] = {0, 0, 0, 0};
  const uint8_t *body;
  size_t blen = 99, used;
  assert_int_equal(pb_frame_peek(b, 4, 100, &body, &blen, &used), CAIRN_E_LIMIT);
  assert_int_equal(blen, 0);
}

static void frame_peek_splits_two_frames_back_to_back(void **state) {
  (void)state;
  uint8_t b[4 + 3 + 4 + 5];
  put_len(b, 3);
  memcpy(b + 4, "one", 3);
  put_len(b + 7, 5);
  memcpy(b + 11, "two!!", 5);
  const uint8_t *body;
  size_t blen, used;
  assert_int_equal(pb_frame_peek(b, sizeof(b), 100, &body, &blen, &used), CAIRN_OK);
  assert_int_equal(blen, 3);
  assert_memory_equal(body, "one", 3);
  assert_int_equal(used, 7);
  assert_int_equal(pb_frame_peek(b + used, sizeof(b) - used, 100, &body, &blen, &used), CAIRN_OK);
  assert_int_equal(blen, 5);
  assert_memory_equal(body, "two!!", 5);
  assert_int_equal(used, 9);
}

static void frame_append_then_envelope_decode_round_trip(void **state) {
  (void)state;
  Cairn__Hello hello = CAIRN__HELLO__INIT;
  hello.protocol_version = PB_PROTOCOL_VERSION;
  hello.instance_id = "0123456789abcdef0123456789abcdef";
  hello.node_name = "node-1";
  Cairn__Envelope env = CAIRN__ENVELOPE__INIT;
  env.msg_case = CAIRN__ENVELOPE__MSG_HELLO;
  env.hello = &hello;
  Cairn__Ack ack = CAIRN__ACK__INIT;
  ack.seq = 9;
  ack.status = CAIRN__ACK_STATUS__ACK_RETRY;
  ack.reason = "CAIRN_E_NOSPC: disk full";
  Cairn__Envelope env2 = CAIRN__ENVELOPE__INIT;
  env2.msg_case = CAIRN__ENVELOPE__MSG_ACK;
  env2.ack = &ack;

  cairn_buf out = {0};
  assert_int_equal(pb_frame_append(&out, &env), CAIRN_OK);
  assert_int_equal(pb_frame_append(&out, &env2), CAIRN_OK);
  cairn_arena a;
  cairn_arena_init(&a, 0);
  const uint8_t *body;
  size_t blen, used;
  assert_int_equal(pb_frame_peek(out.ptr, out.len, PB_DEFAULT_MAX_FRAME, &body, &blen, &used),
                   CAIRN_OK);
  Cairn__Envelope *d = NULL;
  assert_int_equal(pb_envelope_decode(body, blen, &a, &d), CAIRN_OK);
  assert_int_equal(d->msg_case, CAIRN__ENVELOPE__MSG_HELLO);
  assert_string_equal(d->hello->node_name, "node-1");
  assert_int_equal(d->hello->protocol_version, PB_PROTOCOL_VERSION);
  size_t off = used;
  assert_int_equal(
      pb_frame_peek(out.ptr + off, out.len - off, PB_DEFAULT_MAX_FRAME, &body, &blen, &used),
      CAIRN_OK);
  assert_int_equal(off + used, out.len);
  assert_int_equal(pb_envelope_decode(body, blen, &a, &d), CAIRN_OK);
  assert_int_equal(d->msg_case, CAIRN__ENVELOPE__MSG_ACK);
  assert_int_equal(d->ack->seq, 9);
  assert_string_equal(d->ack->reason, "CAIRN_E_NOSPC: disk full");
  cairn_arena_fini(&a);
  cairn_buf_fini(&out);
}

static void frame_append_rejects_envelope_without_message(void **state) {
  (void)state;
  Cairn__Envelope env = CAIRN__ENVELOPE__INIT;
  cairn_buf out = {0};
  assert_int_equal(pb_frame_append(&out, &env), CAIRN_E_INVAL);
  assert_int_equal(out.len, 0);
}

static void envelope_decode_rejects_garbage_and_empty(void **state) {
  (void)state;
  cairn_arena a;
  cairn_arena_init(&a, 0);
  Cairn__Envelope *d = (Cairn__Envelope *)&a;
  static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  assert_int_equal(pb_envelope_decode(junk, sizeof(junk), &a, &d), CAIRN_E_PROTO);
  assert_null(d);
  /* a length running past the end */
  static const uint8_t cut[] = {0x1a, 0x40, 0x08, 0x01};
  assert_int_equal(pb_envelope_decode(cut, sizeof(cut), &a, &d), CAIRN_E_PROTO);
  /* valid protobuf, but no message case */
  assert_int_equal(pb_envelope_decode((const uint8_t *)"", 0, &a, &d), CAIRN_E_PROTO);
  static const uint8_t unknown_only[] = {0x78, 0x01}; /* field 15 varint */
  assert_int_equal(pb_envelope_decode(unknown_only, sizeof(unknown_only), &a, &d), CAIRN_E_PROTO);
  cairn_arena_fini(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(frame_peek_waits_for_whole_header),
      cmocka_unit_test(frame_peek_waits_for_whole_body),
      cmocka_unit_test(frame_peek_rejects_oversized_length_from_header_alone),
      cmocka_unit_test(frame_peek_rejects_zero_length),
      cmocka_unit_test(frame_peek_splits_two_frames_back_to_back),
      cmocka_unit_test(frame_append_then_envelope_decode_round_trip),
      cmocka_unit_test(frame_append_rejects_envelope_without_message),
      cmocka_unit_test(envelope_decode_rejects_garbage_and_empty),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
