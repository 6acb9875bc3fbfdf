/* tests/fuzz/fuzz_pack.c: differential fuzz target for pb_pack (proto/pack.h),
 * the collector's hand-written RecordBatch encoder, against protobuf-c.
 * The input is read as a little program that builds up to 64 Cairn__Records:
 * every field set or unset at edge or arbitrary values, the seven per-file
 * strings drawn from 12 "files" (more than pb_pack's 8 cache slots) either
 * shared by pointer or as fresh copies, long strings that overflow the cache's
 * byte budget, attrs, and protobuf-c unknown fields (the slow path). Aborts
 * when pb_pack_batch and cairn__record_batch__pack give different bytes, when
 * pb_pack_encode and pb_batch_encode give different zstd payloads or raw sizes,
 * or when the aggregator's pb_batch_decode rejects the payload, counts other
 * records, or decodes records that do not pack back to the same bytes.
 */
#include <stdbool.h>
#include <string.h>

#include "common/arena.h"
#include "common/buf.h"
#include "proto/pack.h"
#include "proto/proto.h"
#include "tests/fuzz/fuzz.h"

#define FUZZ_FILES 12 /* more than pack.c's PACK_META_SLOTS */
#define FUZZ_MAX_RECS 64
#define FUZZ_MAX_BIG (5u << 19) /* bytes of long strings/messages per input */

/* The input, consumed front to back; reads past the end give zeros. */
typedef struct rd {
  const uint8_t *p;
  size_t n;
  size_t big; /* long-field bytes made so far (bounded by FUZZ_MAX_BIG) */
  cairn_arena *a;
} rd;

static uint8_t rd_u8(rd *r) {
  if (!r->n) return 0;
  r->n--;
  return *r->p++;
}

/* A varint-worthy value: edge values, small ones, or 1..8 raw bytes. */
static uint64_t rd_u64(rd *r) {
  static const uint64_t edge[] = {0,
                                  1,
                                  127,
                                  128,
                                  16383,
                                  16384,
                                  UINT32_MAX,
                                  (uint64_t)UINT32_MAX + 1,
                                  INT64_MAX,
                                  (uint64_t)INT64_MIN,
                                  UINT64_MAX - 1,
                                  UINT64_MAX};
  uint8_t s = rd_u8(r);
  if (s < 0x40) return edge[s % (sizeof(edge) / sizeof(edge[0]))];
  if (s < 0x80) return s - 0x40u;
  uint64_t v = 0;
  for (unsigned i = 0; i <= (s & 7u); i++) v |= (uint64_t)rd_u8(r) << (8 * i);
  return v;
}

/* Length of a "long" field for selector l >= 0xf0: (l - 0xef) units of
 * unit bytes, minus one input byte (to land around varint boundaries);
 * 0 once the per-input budget is spent. */
static size_t rd_long_len(rd *r, uint8_t l, size_t unit) {
  size_t len = (size_t)(l - 0xef) * unit;
  size_t minus = rd_u8(r);
  len = len > minus ? len - minus : 1;
  if (r->big + len > FUZZ_MAX_BIG) return 0;
  r->big += len;
  return len;
}

/* A string field: NULL, up to 239 input bytes (cut at a NUL, so maybe ""),
 * or a long run of one byte (up to 64 KiB). NULL also when out of memory. */
static char *rd_str(rd *r) {
  uint8_t l = rd_u8(r);
  if (l == 0) return NULL;
  if (l >= 0xf0) {
    size_t len = rd_long_len(r, l, 4096);
    char fill = (char)(rd_u8(r) | 1); /* never NUL */
    char *s = cairn_arena_alloc(r->a, len + 1);
    if (!s) return NULL;
    memset(s, fill, len);
    s[len] = '\0';
    return s;
  }
  size_t take = l < r->n ? l : r->n;
  const char *src = (const char *)r->p;
  r->p += take;
  r->n -= take;
  return cairn_arena_strndup(r->a, src, strnlen(src, take));
}

/* A bytes field: unset, empty with a pointer, input bytes, or a long run
 * (around 2 MiB: the 4-byte varint length of a record). */
static void rd_bytes(rd *r, ProtobufCBinaryData *d) {
  uint8_t l = rd_u8(r);
  d->len = 0;
  d->data = NULL;
  if (l == 0) return;
  if (l == 1) {
    d->data = (uint8_t *)"";
    return;
  }
  if (l >= 0xf0) { /* 0xff: about 2 MiB; else up to 240 KiB (cheap to fuzz) */
    size_t len = l == 0xff ? rd_long_len(r, 0xf0, 2u << 20) : rd_long_len(r, l, 16u << 10);
    uint8_t *b = cairn_arena_alloc(r->a, len ? len : 1);
    if (!b) return;
    uint8_t fill = rd_u8(r);
    for (size_t i = 0; i < len; i++) b[i] = (uint8_t)(fill + (i >> 12));
    d->data = b;
    d->len = len;
    return;
  }
  size_t take = l - 1u < r->n ? l - 1u : r->n;
  d->data = (uint8_t *)r->p; /* borrowed from the input */
  d->len = take;
  r->p += take;
  r->n -= take;
}

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

/* One well-formed unknown field (tag 30..285, never a known field number) in
 * m's unknown_fields: protobuf-c packs it after the known fields, pb_pack
 * hands such records to protobuf-c, and the decoder must still accept them. */
static void rd_unknown(rd *r, ProtobufCMessage *m) {
  ProtobufCMessageUnknownField *u = cairn_arena_alloc(r->a, sizeof(*u));
  uint8_t *d = cairn_arena_alloc(r->a, 16 + 255);
  if (!u || !d) return;
  u->tag = 30u + rd_u8(r);
  switch (rd_u8(r) % 4) {
    case 0:
      u->wire_type = PROTOBUF_C_WIRE_TYPE_VARINT;
      u->len = put_varint(d, rd_u64(r));
      break;
    case 1:
      u->wire_type = PROTOBUF_C_WIRE_TYPE_64BIT;
      for (int i = 0; i < 8; i++) d[i] = rd_u8(r);
      u->len = 8;
      break;
    case 2:
      u->wire_type = PROTOBUF_C_WIRE_TYPE_32BIT;
      for (int i = 0; i < 4; i++) d[i] = rd_u8(r);
      u->len = 4;
      break;
    default: { /* the length prefix is part of the stored bytes */
      u->wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
      uint8_t l = rd_u8(r);
      size_t h = put_varint(d, l);
      for (unsigned i = 0; i < l; i++) d[h + i] = rd_u8(r);
      u->len = h + l;
      break;
    }
  }
  u->data = d;
  m->n_unknown_fields = 1;
  m->unknown_fields = u;
}

typedef struct fuzz_file {
  bool made;
  char *s[7]; /* namespace, pod, container, container_id, pod_uid, node, path */
} fuzz_file;

static char **rec_file_field(Cairn__Record *rec, int k) {
  char **f[7] = {&rec->kube_namespace, &rec->pod,  &rec->container, &rec->container_id,
                 &rec->pod_uid,        &rec->node, &rec->path};
  return f[k];
}

/* Build the next record from the input; *unknown is set when it (or one of
 * its attrs) carries unknown fields. false when out of memory. */
static bool rd_record(rd *r, fuzz_file *files, Cairn__Record *rec, bool *unknown) {
  cairn__record__init(rec);
  uint8_t c = rd_u8(r);
  if (c & 0x01) rec->time_ns = (int64_t)rd_u64(r);
  if (c & 0x02) {
    rec->source = (Cairn__Source)(int32_t)rd_u64(r);
    rec->stream = (Cairn__LogStream)(int32_t)rd_u64(r);
    rec->format = (Cairn__Format)(int32_t)rd_u64(r);
  }
  if (c & 0x04) {
    rec->flags = (uint32_t)rd_u64(r);
    rec->fragments = (uint32_t)rd_u64(r);
  }
  if (c & 0x08) rd_bytes(r, &rec->message);
  if (c & 0x10) {
    rec->file_stream = rd_u64(r);
    rec->end_offset = rd_u64(r);
  }

  /* the per-file strings: a file's pointers (what the cache keys on), or
   * copies of its text at new addresses, with one field maybe replaced */
  uint8_t f = rd_u8(r);
  fuzz_file *ff = &files[f % FUZZ_FILES];
  if (!ff->made) {
    for (int k = 0; k < 7; k++) ff->s[k] = rd_str(r);
    ff->made = true;
  }
  for (int k = 0; k < 7; k++) {
    char *s = ff->s[k];
    if ((f & 0x80) && s) {
      s = cairn_arena_strndup(r->a, s, strlen(s));
      if (!s) return false;
    }
    *rec_file_field(rec, k) = s;
  }
  if (f & 0x40) *rec_file_field(rec, rd_u8(r) % 7) = rd_str(r);

  if (c & 0x20) {
    uint8_t na = rd_u8(r);
    size_t n = na >= 0xf0 ? 40u + (na & 0x0fu) * 8u : na % 6u;
    rec->attrs = cairn_arena_alloc(r->a, (n ? n : 1) * sizeof(*rec->attrs));
    if (!rec->attrs) return false;
    rec->n_attrs = n;
    for (size_t i = 0; i < n; i++) {
      Cairn__Attr *at = cairn_arena_alloc(r->a, sizeof(*at));
      if (!at) return false;
      cairn__attr__init(at);
      uint8_t ac = rd_u8(r);
      if (ac & 1) at->key = rd_str(r);
      if (ac & 2) rd_bytes(r, &at->value);
      if (ac & 4) {
        rd_unknown(r, &at->base);
        *unknown = true;
      }
      rec->attrs[i] = at;
    }
  }
  if (c & 0x40) {
    rec->identity = rd_str(r);
    rec->instance_id = rd_str(r);
    rec->ingest_ns = (int64_t)rd_u64(r);
    rec->seq = rd_u64(r);
  }
  if (c & 0x80) {
    rd_unknown(r, &rec->base);
    *unknown = true;
  }
  return true;
}

/* protobuf-c's bytes for RecordBatch{recs[0..n)} into out (reset first). */
static void pbc_pack(Cairn__Record *const *recs, size_t n, cairn_buf *out) {
  Cairn__RecordBatch b = CAIRN__RECORD_BATCH__INIT;
  b.records = (Cairn__Record **)recs;
  b.n_records = n;
  size_t len = cairn__record_batch__get_packed_size(&b);
  cairn_buf_reset(out);
  FUZZ_CHECK(cairn_buf_reserve(out, len + 1) == CAIRN_OK);
  out->len = cairn__record_batch__pack(&b, out->ptr);
  FUZZ_CHECK(out->len == len);
}

/* Does a hold exactly the bytes of b from offset off on? (No pointer
 * arithmetic on an empty buffer's NULL.) */
static bool same_bytes(const cairn_buf *a, const cairn_buf *b, size_t off) {
  if (b->len < off || a->len != b->len - off) return false;
  return a->len == 0 || memcmp(a->ptr, b->ptr + off, a->len) == 0;
}

/* One packer and one codec for the whole run, as the collector keeps them
 * per thread (state left between calls, e.g. the scratch, is under test). */
static pb_pack *fuzz_pack(void) {
  static pb_pack *pk;
  if (!pk) pk = pb_pack_new(1);
  FUZZ_CHECK(pk != NULL);
  return pk;
}

static pb_codec *fuzz_codec(void) {
  static pb_codec *c;
  if (!c) c = pb_codec_new(1);
  FUZZ_CHECK(c != NULL);
  return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  pb_pack *pk = fuzz_pack();
  pb_codec *codec = fuzz_codec();
  cairn_arena ar;
  cairn_arena_init(&ar, 0);
  rd r = {data + 1, size - 1, 0, &ar};
  /* data[0]: how many bytes pb_pack_batch's output already holds (it appends)
   */
  size_t prefix = data[0] % 8u;

  fuzz_file files[FUZZ_FILES];
  memset(files, 0, sizeof(files));
  Cairn__Record recs[FUZZ_MAX_RECS], *rp[FUZZ_MAX_RECS];
  size_t n = 0;
  bool unknown = false;
  while (r.n && n < FUZZ_MAX_RECS) {
    if (!rd_record(&r, files, &recs[n], &unknown)) goto out_arena; /* out of memory */
    rp[n] = &recs[n];
    n++;
  }

  cairn_buf want = {0}, got = {0}, zwant = {0}, zgot = {0}, again = {0};
  pbc_pack(rp, n, &want);

  /* 1. the packed RecordBatch, appended after prefix bytes */
  FUZZ_CHECK(cairn_buf_append(&got, "\xa5\xa5\xa5\xa5\xa5\xa5\xa5\xa5", prefix) == CAIRN_OK);
  cairn_err e = pb_pack_batch(pk, rp, n, &got);
  FUZZ_CHECK(e == CAIRN_OK || e == CAIRN_E_NOMEM);
  if (e) {
    FUZZ_CHECK(got.len == prefix && pb_pack_last_error(pk)[0] != '\0');
    goto out;
  }
  FUZZ_CHECK(pb_pack_last_error(pk)[0] == '\0');
  FUZZ_CHECK(got.len >= prefix);
  FUZZ_CHECK(prefix == 0 || memcmp(got.ptr, "\xa5\xa5\xa5\xa5\xa5\xa5\xa5\xa5", prefix) == 0);
  FUZZ_CHECK(same_bytes(&want, &got, prefix));

  /* 2. the zstd payload and raw size */
  uint64_t raw_want = 0, raw_got = 0;
  e = pb_batch_encode(codec, rp, n, &zwant, &raw_want);
  FUZZ_CHECK(e == CAIRN_OK || e == CAIRN_E_NOMEM);
  if (e) goto out;
  e = pb_pack_encode(pk, rp, n, &zgot, &raw_got);
  FUZZ_CHECK(e == CAIRN_OK || e == CAIRN_E_NOMEM);
  if (e) goto out;
  FUZZ_CHECK(raw_got == raw_want && raw_got == want.len);
  FUZZ_CHECK(same_bytes(&zwant, &zgot, 0));

  /* 3. what the aggregator makes of it */
  pb_limits lim;
  pb_limits_default(&lim);
  Cairn__RecordBatch *b = NULL;
  e = pb_batch_decode(codec, zgot.ptr, zgot.len, &lim, &ar, &b);
  if (e == CAIRN_E_NOMEM) goto out;
  /* By design the decoder refuses a batch whose records unpack to over ~16x
   * their wire size (proto/codec.c batch_budget). Empty attrs do (3 wire
   * bytes, ~56 unpacked); the collector never makes them (its attrs have a
   * key), so that refusal is allowed here, and nothing else. */
  if (e == CAIRN_E_LIMIT && strstr(pb_codec_last_error(codec), "expands past")) goto out;
  if (e != CAIRN_OK) fprintf(stderr, "pb_batch_decode: %s\n", pb_codec_last_error(codec));
  FUZZ_CHECK(e == CAIRN_OK);
  FUZZ_CHECK(b->n_records == n);
  /* the decoded records (unknown fields dropped by the decoder) pack the same
   * with both encoders, and give the input's bytes back when nothing was
   * dropped */
  pbc_pack(b->records, b->n_records, &again);
  cairn_buf_reset(&got);
  e = pb_pack_batch(pk, b->records, b->n_records, &got);
  FUZZ_CHECK(e == CAIRN_OK || e == CAIRN_E_NOMEM);
  if (e) goto out;
  FUZZ_CHECK(same_bytes(&again, &got, 0));
  if (!unknown) FUZZ_CHECK(same_bytes(&want, &again, 0));
out:
  cairn_buf_fini(&again);
  cairn_buf_fini(&want);
  cairn_buf_fini(&got);
  cairn_buf_fini(&zwant);
  cairn_buf_fini(&zgot);
out_arena:
  cairn_arena_fini(&ar);
  return 0;
}
