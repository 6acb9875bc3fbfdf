/* tests/proto/codec_test.c: the zstd RecordBatch codec, single-record packing
 * and enum names. Includes proto/codec.c to look at the codec's scratch
 * buffer, which proves a zstd bomb never made it grow past max_raw.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "proto/codec.c"

static const uint8_t bin_msg[] = {'a', 0, 0xff, 0xfe, '\n', 'z', 0x80};

/* Fill r (with storage from a) as record number i: strings, binary message, attrs. */
static void make_record(cairn_arena *a, Cairn__Record *r, int i) {
  cairn__record__init(r);
  r->time_ns = 1700000000000000000LL + i;
  r->source = CAIRN__SOURCE__SOURCE_CONTAINER;
  r->stream = CAIRN__LOG_STREAM__LOG_STREAM_STDERR;
  r->flags = CAIRN__RECORD_FLAG__RECORD_FLAG_INVALID_UTF8;
  r->message.data = (uint8_t *)bin_msg;
  r->message.len = sizeof(bin_msg);
  r->kube_namespace = "kube-system";
  r->pod = "coredns-1";
  r->container = "coredns";
  r->node = "node-1";
  r->path = "/var/log/containers/x.log";
  r->file_stream = 7;
  r->end_offset = 1000u + (uint64_t)i;
  r->fragments = 2;
  r->format = CAIRN__FORMAT__FORMAT_CRI;
  r->n_attrs = 2;
  r->attrs = cairn_arena_alloc(a, 2 * sizeof(*r->attrs));
  for (size_t k = 0; k < 2; k++) {
    Cairn__Attr *at = cairn_arena_alloc(a, sizeof(*at));
    cairn__attr__init(at);
    at->key = k ? "syscall" : "uid";
    at->value.data = (uint8_t *)(k ? "execve" : "0\0x");
    at->value.len = k ? 6 : 3;
    r->attrs[k] = at;
  }
}

/* Compress src with the given zstd parameters; caller frees *out. */
static size_t compress_with(const void *src, size_t len, int level, int wlog, bool stream,
                            size_t repeat, uint8_t **out) {
  ZSTD_CCtx *cc = ZSTD_createCCtx();
  assert_non_null(cc);
  ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
  if (wlog) ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, wlog);
  size_t cap = ZSTD_compressBound(len * repeat) + 1024;
  if (stream) cap = ZSTD_compressBound(len) * repeat / 64 + 65536;
  *out = malloc(cap);
  assert_non_null(*out);
  ZSTD_outBuffer ob = {*out, cap, 0};
  for (size_t i = 0; i < repeat; i++) {
    ZSTD_inBuffer ib = {src, len, 0};
    ZSTD_EndDirective end = i + 1 == repeat ? ZSTD_e_end : ZSTD_e_continue;
    size_t r;
    do {
      r = ZSTD_compressStream2(cc, &ob, &ib, end);
      assert_false(ZSTD_isError(r));
    } while (ib.pos < ib.size || (end == ZSTD_e_end && r != 0));
  }
  ZSTD_freeCCtx(cc);
  return ob.pos;
}

static void batch_round_trip_keeps_binary_messages_and_attrs(void **state) {
  (void)state;
  cairn_arena a;
  cairn_arena_init(&a, 0);
  Cairn__Record recs[3];
  Cairn__Record *ptrs[3];
  for (int i = 0; i < 3; i++) {
    make_record(&a, &recs[i], i);
    ptrs[i] = &recs[i];
  }
  pb_codec *c = pb_codec_new(3);
  assert_non_null(c);
  cairn_buf out = {0};
  assert_int_equal(cairn_buf_append(&out, "PFX", 3), CAIRN_OK);
  uint64_t raw = 0;
  assert_int_equal(pb_batch_encode(c, ptrs, 3, &out, &raw), CAIRN_OK);
  assert_true(raw > 0);
  assert_memory_equal(out.ptr, "PFX", 3); /* appended, not overwritten */

  cairn_arena da;
  cairn_arena_init(&da, 0);
  pb_limits lim;
  pb_limits_default(&lim);
  Cairn__RecordBatch *b = NULL;
  assert_int_equal(pb_batch_decode(c, out.ptr + 3, out.len - 3, &lim, &da, &b), CAIRN_OK);
  assert_string_equal(pb_codec_last_error(c), "");
  assert_int_equal(b->n_records, 3);
  for (int i = 0; i < 3; i++) {
    Cairn__Record *r = b->records[i];
    assert_int_equal(r->time_ns, 1700000000000000000LL + i);
    assert_int_equal(r->stream, CAIRN__LOG_STREAM__LOG_STREAM_STDERR);
    assert_int_equal(r->message.len, sizeof(bin_msg));
    assert_memory_equal(r->message.data, bin_msg, sizeof(bin_msg));
    assert_string_equal(r->pod, "coredns-1");
    assert_int_equal(r->end_offset, 1000u + (uint64_t)i);
    assert_int_equal(r->n_attrs, 2);
    assert_string_equal(r->attrs[0]->key, "uid");
    assert_int_equal(r->attrs[0]->value.len, 3);
    assert_memory_equal(r->attrs[0]->value.data, "0\0x", 3);
    assert_string_equal(r->attrs[1]->key, "syscall");
  }
  /* records were unpacked into the arena */
  assert_true(da.used > 3 * sizeof(Cairn__Record));
  cairn_arena_fini(&da);
  cairn_buf_fini(&out);
  pb_codec_free(c);
  cairn_arena_fini(&a);
}

static void batch_round_trip_of_zero_records(void **state) {
  (void)state;
  pb_codec *c = pb_codec_new(0);
  cairn_buf out = {0};
  uint64_t raw = 99;
  assert_int_equal(pb_batch_encode(c, NULL, 0, &out, &raw), CAIRN_OK);
  assert_int_equal(raw, 0);
  cairn_arena a;
  cairn_arena_init(&a, 0);
  pb_limits lim;
  pb_limits_default(&lim);
  Cairn__RecordBatch *b = NULL;
  assert_int_equal(pb_batch_decode(c, out.ptr, out.len, &lim, &a, &b), CAIRN_OK);
  assert_int_equal(b->n_records, 0);
  cairn_arena_fini(&a);
  cairn_buf_fini(&out);
  pb_codec_free(c);
}

/* Decode payload with max_raw 1 MiB and expect err; the scratch buffer must
 * never have grown past the cap. */
static void expect_decode_error_text(const uint8_t *p, size_t len, uint64_t max_raw,
                                     uint32_t max_recs, cairn_err want, const char *text) {
  pb_codec *c = pb_codec_new(1);
  cairn_arena a;
  cairn_arena_init(&a, 0);
  pb_limits lim = {.max_frame = PB_DEFAULT_MAX_FRAME, .max_raw = max_raw, .max_records = max_recs};
  Cairn__RecordBatch *b = (Cairn__RecordBatch *)&lim; /* must be reset to NULL */
  assert_int_equal(pb_batch_decode(c, p, len, &lim, &a, &b), want);
  assert_null(b);
  assert_true(c->raw.cap <= max_raw);
  assert_true(strlen(pb_codec_last_error(c)) > 0);
  if (text && !strstr(pb_codec_last_error(c), text))
    fail_msg("last error \"%s\" lacks \"%s\"", pb_codec_last_error(c), text);
  cairn_arena_fini(&a);
  pb_codec_free(c);
}

static void expect_decode_error(const uint8_t *p, size_t len, uint64_t max_raw, uint32_t max_recs,
                                cairn_err want) {
  expect_decode_error_text(p, len, max_raw, max_recs, want, NULL);
}

static void decode_rejects_zstd_bomb_with_declared_size(void **state) {
  (void)state;
  size_t big = 100u << 20;
  uint8_t *zeros = calloc(1, big);
  assert_non_null(zeros);
  size_t bound = ZSTD_compressBound(big);
  uint8_t *z = malloc(bound);
  size_t zlen = ZSTD_compress(z, bound, zeros, big, 1);
  assert_false(ZSTD_isError(zlen));
  free(zeros);
  assert_true(zlen < 64u << 10); /* really a bomb */
  expect_decode_error_text(z, zlen, 1u << 20, 1000, CAIRN_E_LIMIT, "declares 104857600");
  free(z);
}

static void decode_rejects_zstd_bomb_without_declared_size(void **state) {
  (void)state;
  /* streamed, no content size in the header, small window: the decoder has to
   * find out by decompressing, and must stop at max_raw */
  static uint8_t zeros[1u << 20];
  uint8_t *z;
  size_t zlen = compress_with(zeros, sizeof(zeros), 1, 17, true, 100, &z);
  assert_int_equal(ZSTD_getFrameContentSize(z, zlen), ZSTD_CONTENTSIZE_UNKNOWN);
  expect_decode_error_text(z, zlen, 1u << 20, 1000, CAIRN_E_LIMIT, "more than max_raw");
  free(z);
}

static void decode_rejects_window_larger_than_max_raw(void **state) {
  (void)state;
  static uint8_t zeros[1u << 20];
  uint8_t *z;
  size_t zlen = compress_with(zeros, sizeof(zeros), 1, 25, true, 40, &z);
  expect_decode_error_text(z, zlen, 1u << 20, 1000, CAIRN_E_LIMIT, "memory");
  free(z);
}

static void decode_rejects_garbage_bytes(void **state) {
  (void)state;
  uint8_t junk[256];
  for (size_t i = 0; i < sizeof(junk); i++) junk[i] = (uint8_t)(i * 37 + 11);
  expect_decode_error(junk, sizeof(junk), 1u << 20, 1000, CAIRN_E_ZSTD);
  expect_decode_error(junk, 0, 1u << 20, 1000, CAIRN_E_ZSTD);
}

/* A valid payload of n small records, compressed by the codec. */
static void encode_n(size_t n, cairn_buf *out) {
  cairn_arena a;
  cairn_arena_init(&a, 0);
  Cairn__Record **ptrs = calloc(n, sizeof(*ptrs));
  for (size_t i = 0; i < n; i++) {
    ptrs[i] = cairn_arena_alloc(&a, sizeof(Cairn__Record));
    make_record(&a, ptrs[i], (int)i);
  }
  pb_codec *c = pb_codec_new(1);
  uint64_t raw;
  assert_int_equal(pb_batch_encode(c, ptrs, n, out, &raw), CAIRN_OK);
  pb_codec_free(c);
  free(ptrs);
  cairn_arena_fini(&a);
}

static void decode_rejects_too_many_records(void **state) {
  (void)state;
  cairn_buf out = {0};
  encode_n(11, &out);
  expect_decode_error_text(out.ptr, out.len, 1u << 20, 10, CAIRN_E_LIMIT, "max_records");
  cairn_buf_fini(&out);
}

static void decode_rejects_truncated_zstd(void **state) {
  (void)state;
  cairn_buf out = {0};
  encode_n(50, &out);
  for (size_t cut = 1; cut < out.len; cut += out.len / 7 + 1)
    expect_decode_error(out.ptr, out.len - cut, 1u << 20, 1000, CAIRN_E_ZSTD);
  cairn_buf_fini(&out);
}

static void decode_rejects_trailing_bytes_and_second_frame(void **state) {
  (void)state;
  cairn_buf out = {0};
  encode_n(2, &out);
  size_t one = out.len;
  assert_int_equal(cairn_buf_append(&out, "xy", 2), CAIRN_OK);
  expect_decode_error_text(out.ptr, out.len, 1u << 20, 1000, CAIRN_E_ZSTD, "trailing");
  out.len = one;
  uint8_t *copy = malloc(one);
  memcpy(copy, out.ptr, one);
  assert_int_equal(cairn_buf_append(&out, copy, one), CAIRN_OK);
  free(copy);
  expect_decode_error(out.ptr, out.len, 1u << 20, 1000, CAIRN_E_ZSTD);
  cairn_buf_fini(&out);
}

static void decode_rejects_zstd_of_non_protobuf(void **state) {
  (void)state;
  uint8_t junk[64];
  memset(junk, 0xff, sizeof(junk)); /* bad varints */
  uint8_t z[256];
  size_t zlen = ZSTD_compress(z, sizeof(z), junk, sizeof(junk), 1);
  expect_decode_error(z, zlen, 1u << 20, 1000, CAIRN_E_PROTO);
}

static void decode_rejects_flood_of_empty_attrs(void **state) {
  (void)state;
  /* one Record holding 100,000 empty Attr entries: 3 raw bytes each but a
   * ~56-byte struct each once unpacked */
  size_t n = 100000;
  cairn_buf rec = {0}, raw = {0};
  for (size_t i = 0; i < n; i++) assert_int_equal(cairn_buf_append(&rec, "\x8a\x01\x00", 3), 0);
  uint8_t hdr[8] = {0x0a};
  size_t hl = 1, v = rec.len;
  while (v >= 0x80) {
    hdr[hl++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  hdr[hl++] = (uint8_t)v;
  assert_int_equal(cairn_buf_append(&raw, hdr, hl), 0);
  assert_int_equal(cairn_buf_append(&raw, rec.ptr, rec.len), 0);
  size_t bound = ZSTD_compressBound(raw.len);
  uint8_t *z = malloc(bound);
  size_t zlen = ZSTD_compress(z, bound, raw.ptr, raw.len, 1);
  expect_decode_error_text(z, zlen, 1u << 20, 1000, CAIRN_E_LIMIT, "expands");
  free(z);
  cairn_buf_fini(&rec);
  cairn_buf_fini(&raw);
}

static void record_pack_unpack_round_trip(void **state) {
  (void)state;
  cairn_arena a;
  cairn_arena_init(&a, 0);
  Cairn__Record r;
  make_record(&a, &r, 5);
  r.seq = 42;
  cairn_buf out = {0};
  assert_int_equal(pb_record_pack(&r, &out), CAIRN_OK);
  Cairn__Record *u = NULL;
  assert_int_equal(pb_record_unpack(out.ptr, out.len, &a, &u), CAIRN_OK);
  assert_int_equal(u->seq, 42);
  assert_memory_equal(u->message.data, bin_msg, sizeof(bin_msg));
  assert_string_equal(u->attrs[1]->key, "syscall");
  assert_int_equal(pb_record_unpack((const uint8_t *)"\xff\xff\xff", 3, &a, &u), CAIRN_E_PROTO);
  assert_null(u);
  cairn_buf_fini(&out);
  cairn_arena_fini(&a);
}

static void enum_names_round_trip(void **state) {
  (void)state;
  Cairn__Source s;
  Cairn__Format f;
  assert_string_equal(pb_source_name(CAIRN__SOURCE__SOURCE_K8S_AUDIT), "k8s-audit");
  assert_string_equal(pb_source_name(CAIRN__SOURCE__SOURCE_UNKNOWN), "");
  assert_string_equal(pb_stream_name(CAIRN__LOG_STREAM__LOG_STREAM_STDOUT), "stdout");
  assert_string_equal(pb_format_name(CAIRN__FORMAT__FORMAT_AUDITD), "auditd");
  assert_int_equal(pb_source_parse("audit", &s), CAIRN_OK);
  assert_int_equal(s, CAIRN__SOURCE__SOURCE_AUDIT);
  assert_int_equal(pb_format_parse("docker", &f), CAIRN_OK);
  assert_int_equal(f, CAIRN__FORMAT__FORMAT_DOCKER);
  assert_int_equal(pb_format_parse("Docker", &f), CAIRN_E_PARSE);
  assert_int_equal(pb_source_parse("", &s), CAIRN_E_PARSE);
}

/* Regression (fuzz finding): protobuf-c keeps unknown fields, and accepts field
 * number 0 in a padded two-byte key (80 00); re-packing writes it as 00, which
 * unpack then refuses, so one crafted record made every later search fail with
 * CAIRN_E_CORRUPT. Decoded records must re-pack into something unpackable. */
static void decoded_record_with_unknown_tag0_repacks_cleanly(void **state) {
  (void)state;
  /* RecordBatch{records: [Record{<unknown field 0 as 80 00>: varint 0, message(5): "hi"}]} */
  static const uint8_t raw[] = {0x0A, 0x07, 0x80, 0x00, 0x00, 0x2A, 0x02, 'h', 'i'};
  uint8_t *z = NULL;
  size_t zlen = compress_with(raw, sizeof(raw), 1, 0, false, 1, &z);
  pb_codec *c = pb_codec_new(1);
  pb_limits lim;
  pb_limits_default(&lim);
  cairn_arena a;
  cairn_arena_init(&a, 0);
  Cairn__RecordBatch *b = NULL;
  assert_int_equal(pb_batch_decode(c, z, zlen, &lim, &a, &b), CAIRN_OK);
  assert_int_equal(b->n_records, 1);
  cairn_buf packed = {0};
  assert_int_equal(pb_record_pack(b->records[0], &packed), CAIRN_OK);
  Cairn__Record *r = NULL;
  assert_int_equal(pb_record_unpack(packed.ptr, packed.len, &a, &r), CAIRN_OK);
  assert_int_equal(r->message.len, 2);
  assert_memory_equal(r->message.data, "hi", 2);
  cairn_buf_fini(&packed);
  cairn_arena_fini(&a);
  pb_codec_free(c);
  free(z);
}

/* Regression (fuzz finding): a record with every field at its default packs to
 * 0 bytes; packing it into an empty buffer must not do NULL + 0 arithmetic. */
static void empty_record_packs_to_nothing(void **state) {
  (void)state;
  Cairn__Record r = CAIRN__RECORD__INIT;
  cairn_buf out = {0};
  assert_int_equal(pb_record_pack(&r, &out), CAIRN_OK);
  assert_int_equal(out.len, 0);
  cairn_buf_fini(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(batch_round_trip_keeps_binary_messages_and_attrs),
      cmocka_unit_test(batch_round_trip_of_zero_records),
      cmocka_unit_test(decode_rejects_zstd_bomb_with_declared_size),
      cmocka_unit_test(decode_rejects_zstd_bomb_without_declared_size),
      cmocka_unit_test(decode_rejects_window_larger_than_max_raw),
      cmocka_unit_test(decode_rejects_garbage_bytes),
      cmocka_unit_test(decode_rejects_too_many_records),
      cmocka_unit_test(decode_rejects_truncated_zstd),
      cmocka_unit_test(decode_rejects_trailing_bytes_and_second_frame),
      cmocka_unit_test(decode_rejects_zstd_of_non_protobuf),
      cmocka_unit_test(decode_rejects_flood_of_empty_attrs),
      cmocka_unit_test(record_pack_unpack_round_trip),
      cmocka_unit_test(enum_names_round_trip),
      cmocka_unit_test(decoded_record_with_unknown_tag0_repacks_cleanly),
      cmocka_unit_test(empty_record_packs_to_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
