/* tests/fuzz/fuzz_batch.c: fuzz target for pb_batch_decode, the decoder of
 * the zstd-compressed RecordBatch in every Batch frame, with small limits
 * (max_raw 1 MiB, max_records 1000). The first input byte picks the mode:
 * even = the rest is the payload as received; odd = the rest is a raw packed
 * RecordBatch, compressed here first, so mutations reach the protobuf layer
 * and the record-count pre-scan instead of dying in zstd's checksum.
 * A decoded batch is encoded again and must decode to the same record count.
 * The aggregator's writer decodes with pb_batch_decode_items (records read in
 * place): on every input it must give the same error and message as
 * pb_batch_decode_raw, or the same records (compared as their JSON, every
 * field) and, where both keep them, the same received bytes.
 */
#include <stdbool.h>
#include <string.h>
#include <zstd.h>

#include "common/arena.h"
#include "common/buf.h"
#include "proto/json.h"
#include "proto/proto.h"
#include "proto/recview.h"
#include "tests/fuzz/fuzz.h"

#define FUZZ_MAX_RAW (1u << 20)
#define FUZZ_MAX_RECORDS 1000u

/* One codec for the whole run, as one connection reuses it for every batch
 * (state carried between calls is part of what is tested). */
static pb_codec *fuzz_codec(void) {
  static pb_codec *c;
  if (!c) c = pb_codec_new(1);
  FUZZ_CHECK(c != NULL);
  return c;
}

static void touch_record(const Cairn__Record *r) {
  FUZZ_CHECK(r != NULL);
  const char *strs[] = {r->kube_namespace, r->pod,      r->container, r->container_id,
                        r->pod_uid,        r->node,     r->path,      r->identity,
                        r->instance_id};
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
    FUZZ_CHECK(strs[i] != NULL);
    fuzz_touch(strs[i], strlen(strs[i]));
  }
  FUZZ_CHECK(r->message.len == 0 || r->message.data);
  fuzz_touch(r->message.data, r->message.len);
  FUZZ_CHECK(r->n_attrs == 0 || r->attrs);
  for (size_t i = 0; i < r->n_attrs; i++) {
    FUZZ_CHECK(r->attrs[i] && r->attrs[i]->key);
    fuzz_touch(r->attrs[i]->key, strlen(r->attrs[i]->key));
    fuzz_touch(r->attrs[i]->value.data, r->attrs[i]->value.len);
  }
}

/* Known-bug switches for long fuzzing runs only (never set by ctest), so
 * fuzzing goes on past bugs already reported; CAIRN_FUZZ_KNOWN may hold:
 *  tag0       drop unknown fields with tag 0 before the storage round trip
 *             (protobuf-c accepts a tag-0 key written as the non-minimal
 *             varint 80 00, keeps it as an unknown field and packs it back as
 *             00, which pb_record_unpack then refuses: the stored record reads
 *             back as CAIRN_E_CORRUPT; regression seed regress-record-unknown-tag0)
 *  emptypack  give pb_record_pack an allocated buffer for a record that packs
 *             to 0 bytes (it computes NULL + 0 on an empty cairn_buf, which
 *             clang's UBSan reports; regression seed regress-empty-record-pack) */
static bool known_bug(const char *name) {
  const char *k = getenv("CAIRN_FUZZ_KNOWN");
  return k && strstr(k, name);
}

static void strip_tag0(ProtobufCMessage *m) {
  size_t w = 0;
  for (size_t i = 0; i < m->n_unknown_fields; i++)
    if (m->unknown_fields[i].tag != 0) m->unknown_fields[w++] = m->unknown_fields[i];
  m->n_unknown_fields = w;
}

/* What the aggregator does with every decoded record (storage/write.c packs
 * it into LMDB with pb_record_pack) and the query CLI then (storage/query.c
 * unpacks it with pb_record_unpack): the round trip must give the record back. */
static void check_store_roundtrip(Cairn__Record *r, cairn_arena *ar) {
  if (known_bug("tag0")) {
    strip_tag0(&r->base);
    for (size_t i = 0; i < r->n_attrs; i++) strip_tag0(&r->attrs[i]->base);
  }
  cairn_buf a = {0}, b = {0};
  if (known_bug("emptypack") && (cairn_buf_reserve(&a, 1) || cairn_buf_reserve(&b, 1))) goto out;
  cairn_err e = pb_record_pack(r, &a);
  FUZZ_CHECK(e == CAIRN_OK || e == CAIRN_E_NOMEM);
  if (e) goto out;
  Cairn__Record *back = NULL;
  e = pb_record_unpack(a.ptr, a.len, ar, &back);
  FUZZ_CHECK(e == CAIRN_OK || e == CAIRN_E_NOMEM); /* CAIRN_E_PROTO: stored but unreadable */
  if (e) goto out;
  e = pb_record_pack(back, &b);
  FUZZ_CHECK(e == CAIRN_OK || e == CAIRN_E_NOMEM);
  if (e) goto out;
  FUZZ_CHECK(a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0));
out:
  cairn_buf_fini(&a);
  cairn_buf_fini(&b);
}

/* pb_batch_decode_items against pb_batch_decode_raw on the same payload. */
static void check_items_path(pb_codec *c, const uint8_t *payload, size_t len,
                             const pb_limits *lim) {
  static pb_rec_view view; /* large; the fuzzer is single-threaded */
  cairn_arena a1, a2;
  cairn_arena_init(&a1, 0);
  cairn_arena_init(&a2, 0);
  cairn_buf raw = {0}, j1 = {0}, j2 = {0};
  char err_raw[512];
  Cairn__RecordBatch *rb = NULL;
  pb_slice *raws = NULL;
  cairn_err e1 = pb_batch_decode_raw(c, payload, len, lim, &a1, &rb, &raws);
  snprintf(err_raw, sizeof(err_raw), "%s", pb_codec_last_error(c));
  pb_batch_item *items = NULL;
  size_t n = 0;
  cairn_err e2 = pb_batch_decode_items(c, payload, len, lim, &raw, &a2, &items, &n);
  if (e1 == CAIRN_E_NOMEM || e2 == CAIRN_E_NOMEM) goto out;
  FUZZ_CHECK(e1 == e2);
  if (e1 != CAIRN_OK) {
    /* the same message, except for a damaged zstd frame: what zstd reports
     * ("Data corruption detected", "Destination buffer is too small", or the
     * codec's "truncated zstd frame") depends on how large the output buffer
     * already was, which differs between the two paths' buffers (and between
     * two calls of one path); the error code is the same (found by this
     * target) */
    if (e1 != CAIRN_E_ZSTD && strcmp(err_raw, pb_codec_last_error(c)) != 0)
      fprintf(stderr, "decode_raw: %s\ndecode_items: %s\n", err_raw, pb_codec_last_error(c));
    FUZZ_CHECK(e1 == CAIRN_E_ZSTD || strcmp(err_raw, pb_codec_last_error(c)) == 0);
    goto out;
  }
  FUZZ_CHECK(n == rb->n_records);
  for (size_t i = 0; i < n; i++) {
    const pb_batch_item *it = &items[i];
    cairn_buf_reset(&j1);
    cairn_buf_reset(&j2);
    if (pb_record_json(rb->records[i], &j1) != CAIRN_OK) goto out;
    cairn_err je;
    if (it->rec) {
      je = pb_record_json(it->rec, &j2);
    } else {
      FUZZ_CHECK(it->raw.p != NULL && pb_view_parse(it->raw.p, it->raw.len, &view));
      je = pb_view_json(&view, &j2);
    }
    if (je != CAIRN_OK) goto out;
    FUZZ_CHECK(j1.len == j2.len && memcmp(j1.ptr, j2.ptr, j1.len) == 0);
    /* a record stored from its received bytes: the same bytes either way */
    FUZZ_CHECK((it->raw.p == NULL) == (raws[i].p == NULL));
    if (it->raw.p)
      FUZZ_CHECK(it->raw.len == raws[i].len && memcmp(it->raw.p, raws[i].p, raws[i].len) == 0);
  }
out:
  cairn_buf_fini(&raw);
  cairn_buf_fini(&j1);
  cairn_buf_fini(&j2);
  cairn_arena_fini(&a1);
  cairn_arena_fini(&a2);
}

/* Decode payload; on success check the batch and its re-encoding. */
static void decode_and_check(pb_codec *c, const uint8_t *payload, size_t len) {
  pb_limits lim = {.max_frame = PB_DEFAULT_MAX_FRAME,
                   .max_raw = FUZZ_MAX_RAW,
                   .max_records = FUZZ_MAX_RECORDS};
  cairn_arena ar;
  cairn_arena_init(&ar, 0);
  cairn_buf again = {0};
  Cairn__RecordBatch sentinel = CAIRN__RECORD_BATCH__INIT;
  Cairn__RecordBatch *b = &sentinel; /* must be reset to NULL on error */
  check_items_path(c, payload, len, &lim);
  cairn_err e = pb_batch_decode(c, payload, len, &lim, &ar, &b);
  if (e != CAIRN_OK) {
    FUZZ_CHECK(e == CAIRN_E_LIMIT || e == CAIRN_E_ZSTD || e == CAIRN_E_PROTO ||
               e == CAIRN_E_NOMEM);
    FUZZ_CHECK(b == NULL);
    FUZZ_CHECK(pb_codec_last_error(c)[0] != '\0'); /* the Ack reason needs a detail */
    goto out;
  }
  FUZZ_CHECK(b != NULL && pb_codec_last_error(c)[0] == '\0');
  FUZZ_CHECK(b->n_records <= FUZZ_MAX_RECORDS);
  FUZZ_CHECK(b->n_records == 0 || b->records);
  for (size_t i = 0; i < b->n_records; i++) {
    touch_record(b->records[i]);
    check_store_roundtrip(b->records[i], &ar);
  }

  /* re-encode what was decoded: it must come back with the same records */
  uint64_t raw = 0;
  e = pb_batch_encode(c, b->records, b->n_records, &again, &raw);
  FUZZ_CHECK(e == CAIRN_OK || e == CAIRN_E_NOMEM);
  if (e) goto out;
  /* re-packing may grow the raw size (e.g. minimal varints for negative
   * enums), so the second decode gets exactly the size it needs */
  pb_limits lim2 = lim;
  lim2.max_raw = raw;
  Cairn__RecordBatch *b2 = NULL;
  e = pb_batch_decode(c, again.ptr, again.len, &lim2, &ar, &b2);
  FUZZ_CHECK(e == CAIRN_OK || e == CAIRN_E_NOMEM);
  if (e) goto out;
  FUZZ_CHECK(b2->n_records == b->n_records);
  for (size_t i = 0; i < b2->n_records; i++) {
    FUZZ_CHECK(b2->records[i]->message.len == b->records[i]->message.len);
    FUZZ_CHECK(b2->records[i]->time_ns == b->records[i]->time_ns);
  }
out:
  cairn_buf_fini(&again);
  cairn_arena_fini(&ar);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  pb_codec *c = fuzz_codec();
  if ((data[0] & 1) == 0) {
    decode_and_check(c, data + 1, size - 1);
    return 0;
  }
  /* compress the raw RecordBatch bytes first */
  size_t bound = ZSTD_compressBound(size - 1);
  uint8_t *z = malloc(bound);
  FUZZ_CHECK(z != NULL);
  size_t zn = ZSTD_compress(z, bound, data + 1, size - 1, 1);
  FUZZ_CHECK(!ZSTD_isError(zn));
  decode_and_check(c, z, zn);
  free(z);
  return 0;
}
