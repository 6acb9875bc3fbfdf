/* proto/pack.c: hand-written RecordBatch encoder (proto/pack.h).
 * Each record is measured once with arithmetic (no descriptor walk, no strlen
 * of the per-file strings), its length prefix written, then its fields in
 * field-number order; the per-file fields 6..12 come from a small cache of
 * pre-encoded blocks keyed on the strings' pointers. Identity with protobuf-c
 * 1.4's pack is checked by tests/collector/pack_test.c.
 */
#include "proto/pack.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

/* As proto/codec.c: keep the scratch between calls up to this size. */
#define PACK_KEEP_SCRATCH (4u << 20)
/* Distinct files whose field 6..12 blocks are cached at once in one call. */
#define PACK_META_SLOTS 8
/* Cached blocks are dropped (and re-encoded on demand) past this many bytes,
 * so a batch cycling through many files cannot grow the cache without bound. */
#define PACK_META_MAX (64u << 10)
/* Wire keys (field number << 3 | wire type); 16..21 take two bytes. */
#define K_TIME 0x08
#define K_SOURCE 0x10
#define K_STREAM 0x18
#define K_FLAGS 0x20
#define K_MESSAGE 0x2a
#define K_FILE_STREAM 0x68
#define K_END_OFFSET 0x70
#define K_FRAGMENTS 0x78
#define K_FORMAT 0x80 /* then 0x01 */
#define K_ATTRS 0x8a  /* then 0x01 */
#define K_IDENTITY 0x92
#define K_INSTANCE 0x9a
#define K_INGEST 0xa0
#define K_SEQ 0xa8
#define K_ATTR_KEY 0x0a
#define K_ATTR_VALUE 0x12
#define K_BATCH_RECORD 0x0a

/* One cached block of fields 6..12: which strings it encodes (by pointer,
 * NULL for an empty slot) and where its bytes are in pb_pack.meta. */
typedef struct meta_slot {
  const char *s[7];
  size_t off, len;
} meta_slot;

struct pb_pack {
  ZSTD_CCtx *cctx;                  /* owned, reused for every call */
  cairn_buf raw;                    /* owned scratch: the packed RecordBatch */
  cairn_buf meta;                   /* owned: cached field 6..12 blocks, reset per call */
  meta_slot slots[PACK_META_SLOTS]; /* valid for one call */
  unsigned last, next;              /* slot of the last hit; next slot to replace */
  char err[160];                    /* detail of the last failure, "" after success */
};

pb_pack *pb_pack_new(int level) {
  pb_pack *pk = calloc(1, sizeof(*pk));
  if (!pk) return NULL;
  if (level < 1) level = 1;
  if (level > 19) level = 19;
  pk->cctx = ZSTD_createCCtx();
  if (!pk->cctx) goto out_free;
  if (ZSTD_isError(ZSTD_CCtx_setParameter(pk->cctx, ZSTD_c_compressionLevel, level))) goto out_free;
  cairn_buf_init(&pk->raw);
  cairn_buf_init(&pk->meta);
  return pk;
out_free:
  pb_pack_free(pk);
  return NULL;
}

void pb_pack_free(pb_pack *pk) {
  if (!pk) return;
  ZSTD_freeCCtx(pk->cctx);
  cairn_buf_fini(&pk->raw);
  cairn_buf_fini(&pk->meta);
  free(pk);
}

const char *pb_pack_last_error(const pb_pack *pk) { return pk->err; }

static cairn_err pack_fail(pb_pack *pk, cairn_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static cairn_err pack_fail(pb_pack *pk, cairn_err e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pk->err, sizeof(pk->err), fmt, ap);
  va_end(ap);
  return e;
}

/* Bytes of v as a base-128 varint (1..10). */
static inline size_t vsize(uint64_t v) {
  unsigned bits = 64u - (unsigned)__builtin_clzll(v | 1);
  return (bits * 9 + 64) / 64;
}

/* An int32 or enum field: protobuf-c sign-extends negatives to 10 bytes. */
static inline uint64_t i32wire(int32_t v) { return (uint64_t)(int64_t)v; }

static inline uint8_t *put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/* protobuf-c omits a proto3 string that is NULL or "". */
static inline size_t slen(const char *s) { return s && *s ? strlen(s) : 0; }

/* Size of a length-delimited field with a one-byte key and n payload bytes. */
static inline size_t ld_size(size_t n) { return 1 + vsize(n) + n; }

static inline uint8_t *put_ld(uint8_t *p, uint8_t key, const void *d, size_t n) {
  *p++ = key;
  p = put_varint(p, n);
  memcpy(p, d, n);
  return p + n;
}

/* The seven per-file strings of r, in field order 6..12. */
static inline void meta_key(const Cairn__Record *r, const char *k[7]) {
  k[0] = r->kube_namespace;
  k[1] = r->pod;
  k[2] = r->container;
  k[3] = r->container_id;
  k[4] = r->pod_uid;
  k[5] = r->node;
  k[6] = r->path;
}

static inline bool meta_eq(const meta_slot *s, const char *const k[7]) {
  return s->s[0] == k[0] && s->s[1] == k[1] && s->s[2] == k[2] && s->s[3] == k[3] &&
         s->s[4] == k[4] && s->s[5] == k[5] && s->s[6] == k[6];
}

static void meta_clear(pb_pack *pk) {
  memset(pk->slots, 0, sizeof(pk->slots));
  pk->last = pk->next = 0;
  cairn_buf_reset(&pk->meta);
}

/* The encoded fields 6..12 of r (a block in pk->meta; valid until the next
 * meta_get). An unused slot (all pointers NULL, empty block) matches a record
 * whose seven strings are all NULL, which is right: its block is empty. */
static cairn_err meta_get(pb_pack *pk, const Cairn__Record *r, const uint8_t **blk, size_t *len) {
  const char *k[7];
  meta_key(r, k);
  meta_slot *s = &pk->slots[pk->last];
  if (!meta_eq(s, k)) {
    unsigned i = 0;
    while (i < PACK_META_SLOTS && !meta_eq(&pk->slots[i], k)) i++;
    if (i < PACK_META_SLOTS) {
      pk->last = i;
      s = &pk->slots[i];
    } else {
      size_t l[7], total = 0;
      for (int f = 0; f < 7; f++) {
        l[f] = slen(k[f]);
        if (l[f]) total += ld_size(l[f]);
      }
      if (pk->meta.len + total > PACK_META_MAX) meta_clear(pk);
      if (cairn_buf_reserve(&pk->meta, total ? total : 1))
        return pack_fail(pk, CAIRN_E_NOMEM, "no memory for %zu bytes of file fields", total);
      uint8_t *p = pk->meta.ptr + pk->meta.len;
      for (int f = 0; f < 7; f++)
        if (l[f]) p = put_ld(p, (uint8_t)((6 + f) << 3 | 2), k[f], l[f]);
      s = &pk->slots[pk->next];
      memcpy(s->s, k, sizeof(s->s));
      s->off = pk->meta.len;
      s->len = total;
      pk->meta.len += total;
      pk->last = pk->next;
      pk->next = (pk->next + 1) % PACK_META_SLOTS;
    }
  }
  /* an empty block may be the unused slot of a packer whose meta buffer was
   * never allocated: no offset on its NULL pointer (UB, even + 0) */
  *blk = s->len ? pk->meta.ptr + s->off : NULL;
  *len = s->len;
  return CAIRN_OK;
}

/* Payload bytes of one Attr. */
static inline size_t attr_size(const Cairn__Attr *a) {
  size_t kl = slen(a->key), n = 0;
  if (kl) n += ld_size(kl);
  if (a->value.len) n += ld_size(a->value.len);
  return n;
}

/* Payload bytes of r with its field 6..12 block of meta_len bytes. */
static size_t rec_size(const Cairn__Record *r, size_t meta_len) {
  size_t n = meta_len;
  if (r->time_ns) n += 1 + vsize((uint64_t)r->time_ns);
  if (r->source) n += 1 + vsize(i32wire((int32_t)r->source));
  if (r->stream) n += 1 + vsize(i32wire((int32_t)r->stream));
  if (r->flags) n += 1 + vsize(r->flags);
  if (r->message.len) n += ld_size(r->message.len);
  if (r->file_stream) n += 1 + vsize(r->file_stream);
  if (r->end_offset) n += 1 + vsize(r->end_offset);
  if (r->fragments) n += 1 + vsize(r->fragments);
  if (r->format) n += 2 + vsize(i32wire((int32_t)r->format));
  for (size_t i = 0; i < r->n_attrs; i++) {
    size_t as = attr_size(r->attrs[i]);
    n += 2 + vsize(as) + as;
  }
  size_t l = slen(r->identity);
  if (l) n += 1 + ld_size(l);
  l = slen(r->instance_id);
  if (l) n += 1 + ld_size(l);
  if (r->ingest_ns) n += 2 + vsize((uint64_t)r->ingest_ns);
  if (r->seq) n += 2 + vsize(r->seq);
  return n;
}

/* Write r's payload at p (rec_size bytes reserved); return the end. */
static uint8_t *rec_write(uint8_t *p, const Cairn__Record *r, const uint8_t *meta,
                          size_t meta_len) {
  if (r->time_ns) {
    *p++ = K_TIME;
    p = put_varint(p, (uint64_t)r->time_ns);
  }
  if (r->source) {
    *p++ = K_SOURCE;
    p = put_varint(p, i32wire((int32_t)r->source));
  }
  if (r->stream) {
    *p++ = K_STREAM;
    p = put_varint(p, i32wire((int32_t)r->stream));
  }
  if (r->flags) {
    *p++ = K_FLAGS;
    p = put_varint(p, r->flags);
  }
  if (r->message.len) p = put_ld(p, K_MESSAGE, r->message.data, r->message.len);
  if (meta_len) {
    memcpy(p, meta, meta_len);
    p += meta_len;
  }
  if (r->file_stream) {
    *p++ = K_FILE_STREAM;
    p = put_varint(p, r->file_stream);
  }
  if (r->end_offset) {
    *p++ = K_END_OFFSET;
    p = put_varint(p, r->end_offset);
  }
  if (r->fragments) {
    *p++ = K_FRAGMENTS;
    p = put_varint(p, r->fragments);
  }
  if (r->format) {
    *p++ = K_FORMAT;
    *p++ = 0x01;
    p = put_varint(p, i32wire((int32_t)r->format));
  }
  for (size_t i = 0; i < r->n_attrs; i++) {
    const Cairn__Attr *a = r->attrs[i];
    *p++ = K_ATTRS;
    *p++ = 0x01;
    p = put_varint(p, attr_size(a));
    size_t kl = slen(a->key);
    if (kl) p = put_ld(p, K_ATTR_KEY, a->key, kl);
    if (a->value.len) p = put_ld(p, K_ATTR_VALUE, a->value.data, a->value.len);
  }
  size_t l = slen(r->identity);
  if (l) {
    *p++ = K_IDENTITY;
    p = put_ld(p, 0x01, r->identity, l);
  }
  l = slen(r->instance_id);
  if (l) {
    *p++ = K_INSTANCE;
    p = put_ld(p, 0x01, r->instance_id, l);
  }
  if (r->ingest_ns) {
    *p++ = K_INGEST;
    *p++ = 0x01;
    p = put_varint(p, (uint64_t)r->ingest_ns);
  }
  if (r->seq) {
    *p++ = K_SEQ;
    *p++ = 0x01;
    p = put_varint(p, r->seq);
  }
  return p;
}

/* Records protobuf-c must pack itself: it keeps unknown fields and packs
 * them after the known ones. */
static bool has_unknown(const Cairn__Record *r) {
  if (r->base.n_unknown_fields) return true;
  for (size_t i = 0; i < r->n_attrs; i++)
    if (r->attrs[i]->base.n_unknown_fields) return true;
  return false;
}

cairn_err pb_pack_batch(pb_pack *pk, Cairn__Record *const *recs, size_t n, cairn_buf *out) {
  pk->err[0] = '\0';
  meta_clear(pk);
  size_t start = out->len;
  for (size_t i = 0; i < n; i++) {
    const Cairn__Record *r = recs[i];
    const uint8_t *meta = NULL;
    size_t meta_len = 0, size;
    bool slow = has_unknown(r);
    if (slow) {
      size = cairn__record__get_packed_size(r);
    } else {
      if (meta_get(pk, r, &meta, &meta_len) != CAIRN_OK) goto out_fail;
      size = rec_size(r, meta_len);
    }
    if (cairn_buf_reserve(out, 1 + vsize(size) + size)) {
      pack_fail(pk, CAIRN_E_NOMEM, "no memory for a %zu-byte record (record %zu of %zu)", size,
                i + 1, n);
      goto out_fail;
    }
    uint8_t *p = out->ptr + out->len;
    *p++ = K_BATCH_RECORD;
    p = put_varint(p, size);
    if (slow) {
      p += cairn__record__pack(r, p);
    } else {
      p = rec_write(p, r, meta, meta_len);
    }
    out->len = (size_t)(p - out->ptr);
  }
  return CAIRN_OK;
out_fail:
  out->len = start;
  return CAIRN_E_NOMEM;
}

cairn_err pb_pack_compress(pb_pack *pk, const uint8_t *raw, size_t len, cairn_buf *out) {
  pk->err[0] = '\0';
  size_t bound = ZSTD_compressBound(len);
  if (cairn_buf_reserve(out, bound))
    return pack_fail(pk, CAIRN_E_NOMEM, "no memory for %zu compressed bytes", bound);
  size_t z = ZSTD_compress2(pk->cctx, out->ptr + out->len, bound, raw, len);
  if (ZSTD_isError(z)) {
    cairn_err e =
        ZSTD_getErrorCode(z) == ZSTD_error_memory_allocation ? CAIRN_E_NOMEM : CAIRN_E_ZSTD;
    return pack_fail(pk, e, "zstd compression: %s", ZSTD_getErrorName(z));
  }
  out->len += z;
  return CAIRN_OK;
}

cairn_err pb_pack_encode(pb_pack *pk, Cairn__Record *const *recs, size_t n, cairn_buf *out,
                         uint64_t *raw_size) {
  cairn_buf_reset(&pk->raw);
  cairn_err e = pb_pack_batch(pk, recs, n, &pk->raw);
  if (e == CAIRN_OK) e = pb_pack_compress(pk, pk->raw.ptr, pk->raw.len, out);
  if (e == CAIRN_OK) *raw_size = pk->raw.len;
  if (pk->raw.cap > PACK_KEEP_SCRATCH) cairn_buf_fini(&pk->raw);
  cairn_buf_reset(&pk->raw);
  return e;
}
