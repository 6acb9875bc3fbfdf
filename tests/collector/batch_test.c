/* tests/collector/batch_test.c: building batches from parser records: field
 * mapping, byte copies, limits, per-file checkpoint offsets and refs, and an
 * encode -> decode round trip through the real protobuf + zstd codec.
 * col__file_ref/unref are defined here (the runtime's versions free files). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/internal.h"

void col__file_ref(col_file *f) { f->refs++; }
void col__file_unref(col_file *f) { f->refs--; }

static col_meta test_meta(void) {
  col_meta m;
  memset(&m, 0, sizeof(m));
  m.kind = COL_PATH_CONTAINERS;
  snprintf(m.kube_namespace, sizeof(m.kube_namespace), "payments");
  snprintf(m.pod, sizeof(m.pod), "api-5f9c");
  snprintf(m.container, sizeof(m.container), "api");
  snprintf(m.container_id, sizeof(m.container_id), "e4b1");
  return m;
}

static col_rec rec_of(const char *msg, uint64_t end, const char *attrs) {
  col_rec r = {.time_ns = 1705314225000000000LL,
               .stream = CAIRN__LOG_STREAM__LOG_STREAM_STDERR,
               .flags = 0,
               .msg = (const uint8_t *)msg,
               .msg_len = strlen(msg),
               .fragments = 1,
               .first_line = 1,
               .last_line = 1,
               .end_offset = end,
               .attrs_json = attrs};
  r.full_len = r.msg_len;
  return r;
}

static void batch_add_copies_message_and_maps_fields(void **state) {
  (void)state;
  col_meta m = test_meta();
  col_rec_src src = {"node-1", "/var/log/containers/x.log", &m, CAIRN__FORMAT__FORMAT_DOCKER, 42};
  col_batch *b = col__batch_new(7);
  assert_non_null(b);
  char msg[] = "hello world";
  col_rec r = rec_of(msg, 120, "{\"tag\":\"v1\"}");
  assert_int_equal(col__batch_add(b, &src, &r), CAIRN_OK);
  memset(msg, 'X', sizeof(msg) - 1); /* the parser's buffer is reused after the callback */
  assert_int_equal(b->n, 1);
  const Cairn__Record *out = b->recs[0];
  assert_int_equal(out->message.len, 11);
  assert_memory_equal(out->message.data, "hello world", 11);
  assert_int_equal(out->source, CAIRN__SOURCE__SOURCE_CONTAINER);
  assert_int_equal(out->format, CAIRN__FORMAT__FORMAT_DOCKER);
  assert_int_equal(out->stream, CAIRN__LOG_STREAM__LOG_STREAM_STDERR);
  assert_int_equal(out->time_ns, 1705314225000000000LL);
  assert_string_equal(out->kube_namespace, "payments");
  assert_string_equal(out->pod, "api-5f9c");
  assert_string_equal(out->container, "api");
  assert_string_equal(out->container_id, "e4b1");
  assert_string_equal(out->pod_uid, "");
  assert_string_equal(out->node, "node-1");
  assert_string_equal(out->path, "/var/log/containers/x.log");
  assert_int_equal(out->file_stream, 42);
  assert_int_equal(out->end_offset, 120);
  assert_int_equal(out->fragments, 1);
  assert_int_equal(out->n_attrs, 1);
  assert_string_equal(out->attrs[0]->key, "attrs");
  assert_memory_equal(out->attrs[0]->value.data, "{\"tag\":\"v1\"}", 12);
  assert_int_equal(b->raw_bytes, 11 + 12);
  col__batch_free(b);
}

static void batch_add_maps_typed_attrs_and_source(void **state) {
  (void)state;
  col_meta m;
  memset(&m, 0, sizeof(m));
  col_rec_src src = {"node-1", "/var/log/audit/audit.log", &m, CAIRN__FORMAT__FORMAT_AUDITD, 9};
  col_batch *b = col__batch_new(1);
  char key[] = "key";
  col_attr attrs[] = {{"syscall", (const uint8_t *)"59", 2}, {key, (const uint8_t *)"a\0b", 3}};
  col_rec r = rec_of("type=SYSCALL msg=audit(1.0:1): syscall=59", 300, NULL);
  r.source = CAIRN__SOURCE__SOURCE_AUDIT;
  r.attrs = attrs;
  r.n_attrs = 2;
  assert_int_equal(col__batch_add(b, &src, &r), CAIRN_OK);
  key[0] = 'X'; /* keys may be parser-owned: copied */
  const Cairn__Record *out = b->recs[0];
  assert_int_equal(out->source, CAIRN__SOURCE__SOURCE_AUDIT);
  assert_int_equal(out->format, CAIRN__FORMAT__FORMAT_AUDITD);
  assert_int_equal(out->n_attrs, 2);
  assert_string_equal(out->attrs[0]->key, "syscall");
  assert_memory_equal(out->attrs[0]->value.data, "59", 2);
  assert_string_equal(out->attrs[1]->key, "key");
  assert_int_equal(out->attrs[1]->value.len, 3);
  col__batch_free(b);
}

static void batch_full_at_record_and_byte_limits(void **state) {
  (void)state;
  col_meta m = test_meta();
  col_rec_src src = {"n", "/p", &m, CAIRN__FORMAT__FORMAT_CRI, 1};
  col_batch *b = col__batch_new(1);
  col_rec r = rec_of("0123456789", 11, NULL);
  for (int i = 0; i < 2; i++) assert_int_equal(col__batch_add(b, &src, &r), CAIRN_OK);
  assert_false(col__batch_full(b, 3, 1000));
  assert_true(col__batch_full(b, 2, 1000)); /* max records */
  assert_false(col__batch_full(b, 100, 21));
  assert_true(col__batch_full(b, 100, 20)); /* max raw bytes */
  col_rec empty = rec_of("", 12, NULL);
  assert_int_equal(col__batch_add(b, &src, &empty), CAIRN_OK); /* empty messages are records too */
  assert_int_equal(b->n, 3);
  assert_int_equal(b->raw_bytes, 20);
  col__batch_free(b);
}

static void batch_note_file_refs_once_and_keeps_latest_offset(void **state) {
  (void)state;
  col_file f1, f2;
  memset(&f1, 0, sizeof(f1));
  memset(&f2, 0, sizeof(f2));
  f1.refs = f2.refs = 1;
  col_batch *b = col__batch_new(1);
  assert_int_equal(col__batch_note_file(b, &f1, 5, 100), CAIRN_OK);
  assert_int_equal(col__batch_note_file(b, &f2, 6, 10), CAIRN_OK);
  assert_int_equal(col__batch_note_file(b, &f1, 5, 250), CAIRN_OK);
  assert_int_equal(col__batch_note_file(b, &f1, 9, 3), CAIRN_OK); /* truncated: new stream */
  assert_int_equal(b->n_files, 2);
  assert_int_equal(f1.refs, 2);
  assert_int_equal(f2.refs, 2);
  assert_ptr_equal(b->files[0].f, &f1);
  assert_int_equal(b->files[0].file_stream, 9);
  assert_int_equal(b->files[0].safe_offset, 3);
  assert_int_equal(b->files[1].safe_offset, 10);
  col__batch_free(b);
  assert_int_equal(f1.refs, 1);
  assert_int_equal(f2.refs, 1);
}

static void batch_encode_round_trips_through_the_codec(void **state) {
  (void)state;
  col_meta m = test_meta();
  col_rec_src src = {"node-1", "/var/log/containers/x.log", &m, CAIRN__FORMAT__FORMAT_CRI, 77};
  col_batch *b = col__batch_new(1);
  char msg[64];
  for (int i = 0; i < 500; i++) {
    snprintf(msg, sizeof(msg), "line %d of the batch", i);
    col_rec r = rec_of(msg, (uint64_t)(i + 1) * 50, NULL);
    assert_int_equal(col__batch_add(b, &src, &r), CAIRN_OK);
  }
  pb_codec *codec = pb_codec_new(1);
  assert_non_null(codec);
  assert_int_equal(col__batch_encode(b, codec), CAIRN_OK);
  assert_int_equal(b->n, 500);
  assert_null(b->recs); /* record memory was released */
  assert_true(b->payload.len > 0);
  assert_true(b->raw_size > b->payload.len);

  cairn_arena a;
  cairn_arena_init(&a, 0);
  pb_limits lim;
  pb_limits_default(&lim);
  Cairn__RecordBatch *rb = NULL;
  assert_int_equal(pb_batch_decode(codec, b->payload.ptr, b->payload.len, &lim, &a, &rb), CAIRN_OK);
  assert_int_equal(rb->n_records, 500);
  assert_int_equal(rb->records[499]->end_offset, 500 * 50);
  assert_int_equal(rb->records[499]->file_stream, 77);
  assert_string_equal(rb->records[0]->node, "node-1");
  assert_int_equal(rb->records[3]->message.len, strlen("line 3 of the batch"));
  assert_memory_equal(rb->records[3]->message.data, "line 3 of the batch", 19);
  cairn_arena_fini(&a);
  pb_codec_free(codec);
  col__batch_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(batch_add_copies_message_and_maps_fields),
      cmocka_unit_test(batch_add_maps_typed_attrs_and_source),
      cmocka_unit_test(batch_full_at_record_and_byte_limits),
      cmocka_unit_test(batch_note_file_refs_once_and_keeps_latest_offset),
      cmocka_unit_test(batch_encode_round_trips_through_the_codec),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
