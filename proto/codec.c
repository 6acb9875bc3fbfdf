/* proto/codec.c: the Batch payload codec: RecordBatch <-> protobuf <-> zstd.
 * Decoding treats the payload as hostile: zstd output is streamed into a
 * buffer that never grows past max_raw (the frame header's content size is a
 * hint, never trusted), the record count is pre-scanned on the raw bytes, and
 * protobuf-c unpacks into the caller's arena under a byte budget.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "proto/internal.h"
#include "proto/proto.h"

/* The scratch buffer is kept between calls up to this size and released
 * after a call that needed more (a collector must stay within its RSS budget). */
#define CODEC_KEEP_SCRATCH (4u << 20)
/* First scratch allocation for a decode when the frame does not say its size. */
#define CODEC_FIRST_CHUNK (64u << 10)
/* Unpacked bytes allowed per raw byte. Legitimate batches stay under ~9x
 * (tiny attrs); floods of empty sub-messages reach ~30x and are refused. */
#define CODEC_EXPANSION 16u
/* zstd's window log bounds (ZSTD_WINDOWLOG_ABSOLUTEMIN and the decoder's
 * default limit; both live behind ZSTD_STATIC_LINKING_ONLY). */
#define CODEC_WLOG_MIN 10
#define CODEC_WLOG_MAX 27

struct pb_codec {
  ZSTD_CCtx *cctx; /* owned, reused for every encode */
  ZSTD_DCtx *dctx; /* owned, reused for every decode */
  cairn_buf raw;   /* owned scratch: packed RecordBatch (encode) or zstd output (decode) */
  char err[160];   /* detail of the last failure, "" after success */
  pb_rec_view view; /* scratch of pb_batch_decode_items (~4.5 KiB, hence not on the stack) */
};

pb_codec *pb_codec_new(int level) {
  pb_codec *c = calloc(1, sizeof(*c));
  if (!c) return NULL;
  if (level == 0) level = 1;
  if (level < 1) level = 1;
  if (level > 19) level = 19;
  c->cctx = ZSTD_createCCtx();
  if (!c->cctx) goto out_free;
  c->dctx = ZSTD_createDCtx();
  if (!c->dctx) goto out_free;
  if (ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, level)))
    goto out_free;
  cairn_buf_init(&c->raw);
  return c;
out_free:
  pb_codec_free(c);
  return NULL;
}

void pb_codec_free(pb_codec *c) {
  if (!c) return;
  ZSTD_freeCCtx(c->cctx);
  ZSTD_freeDCtx(c->dctx);
  cairn_buf_fini(&c->raw);
  free(c);
}

const char *pb_codec_last_error(const pb_codec *c) { return c->err; }

/* Record the detail of a failure for pb_codec_last_error and return e. */
static cairn_err codec_fail(pb_codec *c, cairn_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static cairn_err codec_fail(pb_codec *c, cairn_err e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof(c->err), fmt, ap);
  va_end(ap);
  return e;
}

/* Translate a zstd error code into a cairn_err, keeping zstd's text. */
static cairn_err codec_zstd_fail(pb_codec *c, size_t code, const char *what) {
  cairn_err e = CAIRN_E_ZSTD;
  switch (ZSTD_getErrorCode(code)) {
  case ZSTD_error_memory_allocation:
    e = CAIRN_E_NOMEM;
    break;
  case ZSTD_error_frameParameter_windowTooLarge:
    e = CAIRN_E_LIMIT;
    break;
  default:
    break;
  }
  return codec_fail(c, e, "%s: %s", what, ZSTD_getErrorName(code));
}

/* Drop a scratch buffer that a large batch blew up, keep a normal one. */
static void codec_trim(pb_codec *c) {
  if (c->raw.cap > CODEC_KEEP_SCRATCH) cairn_buf_fini(&c->raw);
  cairn_buf_reset(&c->raw);
}

cairn_err pb_batch_encode(pb_codec *c, Cairn__Record *const *recs, size_t n, cairn_buf *out,
                          uint64_t *raw_size) {
  c->err[0] = '\0';
  /* The batch borrows the caller's record pointers: nothing is copied. */
  Cairn__RecordBatch batch = CAIRN__RECORD_BATCH__INIT;
  batch.n_records = n;
  batch.records = (Cairn__Record **)recs;

  cairn_err e = CAIRN_OK;
  size_t rawlen = cairn__record_batch__get_packed_size(&batch);
  cairn_buf_reset(&c->raw);
  if (cairn_buf_reserve(&c->raw, rawlen ? rawlen : 1)) {
    e = codec_fail(c, CAIRN_E_NOMEM, "no memory for a %zu-byte batch", rawlen);
    goto out_trim;
  }
  c->raw.len = cairn__record_batch__pack(&batch, c->raw.ptr);

  size_t bound = ZSTD_compressBound(c->raw.len);
  if (cairn_buf_reserve(out, bound)) {
    e = codec_fail(c, CAIRN_E_NOMEM, "no memory for %zu compressed bytes", bound);
    goto out_trim;
  }
  size_t z = ZSTD_compress2(c->cctx, out->ptr + out->len, bound, c->raw.ptr, c->raw.len);
  if (ZSTD_isError(z)) {
    e = codec_zstd_fail(c, z, "zstd compression");
    goto out_trim;
  }
  out->len += z;
  *raw_size = c->raw.len;
out_trim:
  codec_trim(c);
  return e;
}

/* Read a base-128 varint at *p (< end). false if truncated or over 10 bytes. */
static bool scan_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t r = 0;
  for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    r |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return true;
    }
  }
  return false;
}

/* Walk the top level of a packed RecordBatch and count field-1 entries
 * (records) without allocating, so a flood of empty records is refused
 * before protobuf-c builds a struct for each. Unknown fields are skipped. */
static cairn_err scan_record_count(pb_codec *c, const uint8_t *p, size_t len, uint32_t max,
                                   size_t *count) {
  const uint8_t *end = p + len;
  size_t n = 0;
  while (p < end) {
    uint64_t key, v;
    if (!scan_varint(&p, end, &key))
      return codec_fail(c, CAIRN_E_PROTO, "RecordBatch: truncated field key");
    switch (key & 7) {
    case 0: /* varint */
      if (!scan_varint(&p, end, &v))
        return codec_fail(c, CAIRN_E_PROTO, "RecordBatch: truncated varint");
      break;
    case 1: /* 64-bit */
      if ((size_t)(end - p) < 8) return codec_fail(c, CAIRN_E_PROTO, "RecordBatch: truncated");
      p += 8;
      break;
    case 5: /* 32-bit */
      if ((size_t)(end - p) < 4) return codec_fail(c, CAIRN_E_PROTO, "RecordBatch: truncated");
      p += 4;
      break;
    case 2: /* length-delimited */
      if (!scan_varint(&p, end, &v) || v > (uint64_t)(end - p))
        return codec_fail(c, CAIRN_E_PROTO, "RecordBatch: length runs past the end");
      p += v;
      if (key >> 3 == 1 && ++n > max)
        return codec_fail(c, CAIRN_E_LIMIT, "batch has more than %u records (max_records)", max);
      break;
    default:
      return codec_fail(c, CAIRN_E_PROTO, "RecordBatch: bad wire type %u", (unsigned)(key & 7));
    }
  }
  *count = n;
  return CAIRN_OK;
}

/* Grow the decode output dst to at most cap bytes in total. */
static cairn_err scratch_grow(pb_codec *c, cairn_buf *dst, size_t cap) {
  if (cap <= dst->cap) return CAIRN_OK;
  uint8_t *p = realloc(dst->ptr, cap);
  if (!p) return codec_fail(c, CAIRN_E_NOMEM, "no memory for %zu decompressed bytes", cap);
  dst->ptr = p;
  dst->cap = cap;
  return CAIRN_OK;
}

/* Stream-decompress exactly one zstd frame from payload into dst (c->raw or
 * the caller's buffer), never holding more than max_raw output bytes. When
 * the frame states its size, the first allocation has room for all of it and
 * zstd decodes it in one pass straight into dst (its single-pass shortcut). */
static cairn_err codec_inflate(pb_codec *c, cairn_buf *dst, const uint8_t *payload, size_t len,
                               uint64_t max_raw) {
  size_t cap_max = max_raw > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)max_raw;
  cairn_err e;

  /* Window memory inside the DCtx is bounded too: no legitimate frame of at
   * most max_raw bytes needs a window larger than max_raw. */
  int wlog = CODEC_WLOG_MIN;
  while (wlog < CODEC_WLOG_MAX && ((uint64_t)1 << wlog) < max_raw) wlog++;
  ZSTD_DCtx_reset(c->dctx, ZSTD_reset_session_only);
  size_t r = ZSTD_DCtx_setParameter(c->dctx, ZSTD_d_windowLogMax, wlog);
  if (ZSTD_isError(r)) return codec_zstd_fail(c, r, "zstd setup");

  unsigned long long fcs = ZSTD_getFrameContentSize(payload, len);
  if (fcs == ZSTD_CONTENTSIZE_ERROR)
    return codec_fail(c, CAIRN_E_ZSTD, "payload is not a zstd frame");
  if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs > max_raw)
    return codec_fail(c, CAIRN_E_LIMIT,
                      "payload declares %llu decompressed bytes, over max_raw %llu", fcs,
                      (unsigned long long)max_raw);
  /* The declared size only sizes the first allocation (still capped). */
  size_t first = CODEC_FIRST_CHUNK;
  if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs > 0) first = (size_t)fcs;
  if (first > cap_max) first = cap_max;
  if (first == 0) first = 1;
  cairn_buf_reset(dst);
  e = scratch_grow(c, dst, first);
  if (e) return e;

  ZSTD_inBuffer in = {payload, len, 0};
  ZSTD_outBuffer out = {dst->ptr, dst->cap > cap_max ? cap_max : dst->cap, 0};
  for (;;) {
    if (out.pos == out.size && out.size < cap_max) {
      size_t ncap = out.size > cap_max / 2 ? cap_max : out.size * 2;
      e = scratch_grow(c, dst, ncap);
      if (e) return e;
      out.dst = dst->ptr;
      out.size = dst->cap > cap_max ? cap_max : dst->cap;
    }
    if (out.pos == out.size) {
      /* At the cap: the frame must end without producing one more byte. */
      uint8_t probe;
      ZSTD_outBuffer po = {&probe, 1, 0};
      size_t in_before = in.pos;
      r = ZSTD_decompressStream(c->dctx, &po, &in);
      if (ZSTD_isError(r)) return codec_zstd_fail(c, r, "zstd decompression");
      if (po.pos > 0)
        return codec_fail(c, CAIRN_E_LIMIT, "payload decompresses to more than max_raw %llu bytes",
                          (unsigned long long)max_raw);
      if (r == 0) break;
      if (in.pos == in_before)
        return codec_fail(c, CAIRN_E_ZSTD, "truncated zstd frame (%zu bytes)", len);
      continue;
    }
    size_t in_before = in.pos, out_before = out.pos;
    r = ZSTD_decompressStream(c->dctx, &out, &in);
    if (ZSTD_isError(r)) return codec_zstd_fail(c, r, "zstd decompression");
    if (r == 0) break;
    if (in.pos == in.size && out.pos < out.size && in.pos == in_before && out.pos == out_before)
      return codec_fail(c, CAIRN_E_ZSTD, "truncated zstd frame (%zu bytes)", len);
  }
  if (in.pos != in.size)
    return codec_fail(c, CAIRN_E_ZSTD, "%zu bytes of trailing data after the zstd frame",
                      in.size - in.pos);
  dst->len = out.pos;
  return CAIRN_OK;
}

/* Forget the unknown fields protobuf-c kept (they live in the arena, nothing to
 * free). Records are re-packed for storage, and protobuf-c re-packs some
 * unknown keys it accepted (field 0 in a padded varint) into bytes its own
 * unpack refuses: one crafted record would then poison every later read.
 * For the same reason a record that had any is never stored from its
 * received bytes: raws[i].p is cleared (raws may be NULL). */
static void drop_unknown_fields(Cairn__RecordBatch *b, pb_slice *raws) {
  b->base.n_unknown_fields = 0;
  b->base.unknown_fields = NULL;
  for (size_t i = 0; i < b->n_records; i++) {
    Cairn__Record *r = b->records[i];
    bool unknown = r->base.n_unknown_fields != 0;
    r->base.n_unknown_fields = 0;
    r->base.unknown_fields = NULL;
    for (size_t k = 0; k < r->n_attrs; k++) {
      unknown |= r->attrs[k]->base.n_unknown_fields != 0;
      r->attrs[k]->base.n_unknown_fields = 0;
      r->attrs[k]->base.unknown_fields = NULL;
    }
    if (unknown && raws) raws[i].p = NULL;
  }
}

/* The bytes of every field-1 entry (record) of a RecordBatch that
 * scan_record_count accepted, in order, into raws[0..count). */
static void slice_records(const uint8_t *p, size_t len, pb_slice *raws, size_t count) {
  const uint8_t *end = p + len;
  size_t n = 0;
  while (p < end && n < count) {
    uint64_t key, v = 0;
    if (!scan_varint(&p, end, &key)) return;
    switch (key & 7) {
    case 0:
      if (!scan_varint(&p, end, &v)) return;
      break;
    case 1:
      p += 8;
      break;
    case 5:
      p += 4;
      break;
    default: /* 2, checked by scan_record_count */
      if (!scan_varint(&p, end, &v)) return;
      if (key >> 3 == 1) raws[n++] = (pb_slice){p, (size_t)v};
      p += v;
      break;
    }
  }
}

/* What protobuf-c may take from the arena to unpack a RecordBatch of len
 * raw bytes holding count records. */
static size_t batch_budget(size_t len, size_t count) {
  return CODEC_EXPANSION * len + count * (sizeof(Cairn__Record) + 32) + 4096;
}

/* protobuf-c's unpack of the decompressed RecordBatch raw[0..len), whose
 * count records scan_record_count accepted, into arena a under the budget. */
static cairn_err batch_unpack(pb_codec *c, const uint8_t *raw, size_t len, size_t count,
                              const pb_limits *lim, cairn_arena *a, Cairn__RecordBatch **out) {
  size_t budget = batch_budget(len, count);
  pb__budget_alloc ba;
  ProtobufCAllocator al = pb__budget_allocator(&ba, a, budget);
  Cairn__RecordBatch *b = cairn__record_batch__unpack(&al, len, raw);
  if (!b) {
    if (ba.oom) return codec_fail(c, CAIRN_E_NOMEM, "no memory to unpack %zu records", count);
    if (ba.exceeded)
      return codec_fail(c, CAIRN_E_LIMIT,
                        "batch of %zu bytes expands past %zu bytes when unpacked", len, budget);
    return codec_fail(c, CAIRN_E_PROTO, "payload is not a valid RecordBatch");
  }
  if (b->n_records > lim->max_records)
    return codec_fail(c, CAIRN_E_LIMIT, "batch has %zu records, over max_records %u",
                      b->n_records, lim->max_records);
  *out = b;
  return CAIRN_OK;
}

static cairn_err batch_decode(pb_codec *c, const uint8_t *payload, size_t len,
                              const pb_limits *lim, cairn_arena *a, Cairn__RecordBatch **out,
                              pb_slice **raws_out) {
  *out = NULL;
  if (raws_out) *raws_out = NULL;
  c->err[0] = '\0';
  cairn_err e = codec_inflate(c, &c->raw, payload, len, lim->max_raw);
  if (e) goto out_trim;

  size_t count = 0;
  e = scan_record_count(c, c->raw.ptr, c->raw.len, lim->max_records, &count);
  if (e) goto out_trim;

  Cairn__RecordBatch *b = NULL;
  e = batch_unpack(c, c->raw.ptr, c->raw.len, count, lim, a, &b);
  if (e) goto out_trim;
  pb_slice *raws = NULL;
  if (raws_out) {
    /* the scratch is reused by the next decode: keep a copy in the arena */
    uint8_t *copy = cairn_arena_alloc(a, c->raw.len ? c->raw.len : 1);
    raws = cairn_arena_alloc(a, (b->n_records ? b->n_records : 1) * sizeof(*raws));
    if (!copy || !raws) {
      e = codec_fail(c, CAIRN_E_NOMEM, "no memory to keep %zu record bytes", c->raw.len);
      goto out_trim;
    }
    memcpy(copy, c->raw.ptr, c->raw.len);
    for (size_t i = 0; i < b->n_records; i++) raws[i] = (pb_slice){NULL, 0};
    if (count == b->n_records) slice_records(copy, c->raw.len, raws, count);
  }
  drop_unknown_fields(b, raws);
  *out = b;
  if (raws_out) *raws_out = raws;
out_trim:
  codec_trim(c);
  return e;
}

/* The fast path of pb_batch_decode_items: true when the RecordBatch
 * raw[0..len) is nothing but count field-1 entries with canonical keys and
 * length prefixes as protobuf-c reads them, each a record pb_view_parse
 * takes, and protobuf-c's unpack of all of it would stay within the codec's
 * budget; it[] then holds the records' bytes. false: the batch needs
 * protobuf-c (which then also decides on errors and limits). */
static bool items_from_views(pb_codec *c, const uint8_t *raw, size_t len, size_t count,
                             pb_batch_item *it) {
  const uint8_t *p = raw, *end = raw + len;
  size_t i = 0;
  /* the batch struct, its record pointer array, the scan slabs (recview.c) */
  size_t bound = ((sizeof(Cairn__RecordBatch) + 15) & ~(size_t)15) +
                 ((count * sizeof(Cairn__Record *) + 15) & ~(size_t)15) +
                 (count > 16 ? 64 * count : 0);
  while (p < end) {
    if (*p++ != 0x0a || i == count) return false; /* field 1, length-delimited */
    size_t n = 0;
    unsigned k = 0;
    for (;; k++) { /* the length: at most 5 bytes, as protobuf-c reads it */
      if (k == 5 || p == end) return false;
      n |= (size_t)(*p & 0x7f) << (7 * k);
      if (!(*p++ & 0x80)) break;
    }
    if (n > 0x7fffffffu || n > (size_t)(end - p)) return false;
    size_t rb = 0;
    if (!pb__view_parse_bound(p, n, &c->view, &rb)) return false;
    bound += rb;
    it[i++] = (pb_batch_item){{p, n}, NULL};
    p += n;
  }
  return i == count && bound <= batch_budget(len, count);
}

cairn_err pb_batch_decode_items(pb_codec *c, const uint8_t *payload, size_t len,
                                const pb_limits *lim, cairn_buf *raw, cairn_arena *a,
                                pb_batch_item **items, size_t *n) {
  *items = NULL;
  *n = 0;
  c->err[0] = '\0';
  cairn_err e = codec_inflate(c, raw, payload, len, lim->max_raw);
  if (e) return e;
  size_t count = 0;
  e = scan_record_count(c, raw->ptr, raw->len, lim->max_records, &count);
  if (e) return e;
  pb_batch_item *it = cairn_arena_alloc(a, (count ? count : 1) * sizeof(*it));
  if (!it) return codec_fail(c, CAIRN_E_NOMEM, "no memory for %zu records", count);
  if (!items_from_views(c, raw->ptr, raw->len, count, it)) {
    /* protobuf-c decides, exactly as pb_batch_decode_raw */
    Cairn__RecordBatch *b = NULL;
    e = batch_unpack(c, raw->ptr, raw->len, count, lim, a, &b);
    if (e) return e;
    pb_slice *raws = cairn_arena_alloc(a, (b->n_records ? b->n_records : 1) * sizeof(*raws));
    if (!raws) return codec_fail(c, CAIRN_E_NOMEM, "no memory for %zu records", count);
    for (size_t i = 0; i < b->n_records; i++) raws[i] = (pb_slice){NULL, 0};
    if (count == b->n_records) slice_records(raw->ptr, raw->len, raws, count);
    drop_unknown_fields(b, raws);
    for (size_t i = 0; i < b->n_records; i++) it[i] = (pb_batch_item){raws[i], b->records[i]};
    count = b->n_records;
  }
  *items = it;
  *n = count;
  return CAIRN_OK;
}

cairn_err pb_batch_decode(pb_codec *c, const uint8_t *payload, size_t len, const pb_limits *lim,
                          cairn_arena *a, Cairn__RecordBatch **out) {
  return batch_decode(c, payload, len, lim, a, out, NULL);
}

cairn_err pb_batch_decode_raw(pb_codec *c, const uint8_t *payload, size_t len,
                              const pb_limits *lim, cairn_arena *a, Cairn__RecordBatch **out,
                              pb_slice **raws) {
  return batch_decode(c, payload, len, lim, a, out, raws);
}
