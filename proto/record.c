/* proto/record.c: single-record pack/unpack (the storage format) and the
 * arena-backed protobuf-c allocators every decoder in proto/ uses.
 * Unpacked messages never own heap memory: everything lives in the caller's
 * cairn_arena and goes away with one reset, so free() is a no-op here.
 */
#include <stdint.h>
#include <string.h>

#include "proto/internal.h"
#include "proto/proto.h"

/* protobuf-c alloc hook: plain arena allocation. */
static void *arena_alloc_cb(void *data, size_t size) {
  return cairn_arena_alloc(data, size);
}

/* protobuf-c free hook: arena memory is released by reset/fini only. */
static void arena_free_cb(void *data, void *ptr) {
  (void)data;
  (void)ptr;
}

ProtobufCAllocator pb_arena_allocator(cairn_arena *a) {
  ProtobufCAllocator al = {.alloc = arena_alloc_cb, .free = arena_free_cb, .allocator_data = a};
  return al;
}

/* alloc hook with budget: the cost counted is the 16-aligned size the arena
 * really hands out, so many tiny allocations cannot slip under the cap. */
static void *budget_alloc_cb(void *data, size_t size) {
  pb__budget_alloc *ba = data;
  size_t cost = (size + 15) & ~(size_t)15;
  if (cost < size || cost > ba->left) {
    ba->exceeded = true;
    return NULL;
  }
  void *p = cairn_arena_alloc(ba->arena, size);
  if (p)
    ba->left -= cost;
  else
    ba->oom = true;
  return p;
}

ProtobufCAllocator pb__budget_allocator(pb__budget_alloc *ba, cairn_arena *a, size_t budget) {
  ba->arena = a;
  ba->left = budget;
  ba->exceeded = false;
  ba->oom = false;
  ProtobufCAllocator al = {.alloc = budget_alloc_cb, .free = arena_free_cb, .allocator_data = ba};
  return al;
}

cairn_err pb_record_pack(const Cairn__Record *r, cairn_buf *out) {
  size_t n = cairn__record__get_packed_size(r);
  if (n == 0) return CAIRN_OK; /* all defaults; out->ptr may still be NULL */
  cairn_err e = cairn_buf_reserve(out, n);
  if (e) return e;
  size_t w = cairn__record__pack(r, out->ptr + out->len);
  out->len += w;
  return CAIRN_OK;
}

static uint8_t *put_varint(uint8_t *o, uint64_t v) {
  while (v >= 0x80) {
    *o++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *o++ = (uint8_t)v;
  return o;
}

/* field key (tag, wire type) then a length-delimited string */
static uint8_t *put_str(uint8_t *o, uint32_t field, const char *s, size_t n) {
  o = put_varint(o, (uint64_t)field << 3 | 2);
  o = put_varint(o, n);
  if (n) memcpy(o, s, n);
  return o + n;
}

cairn_err pb_record_pack_fields(const uint8_t *raw, size_t n, const pb_ingest *in,
                                cairn_buf *out) {
  /* field numbers of proto/cairn.proto's Record */
  enum { F_NODE = 11, F_IDENTITY = 18, F_INSTANCE_ID = 19, F_INGEST_NS = 20, F_SEQ = 21 };
  const char *node = in->node;
  const char *id = in->identity ? in->identity : "";
  const char *inst = in->instance_id ? in->instance_id : "";
  size_t ln = node ? strlen(node) : 0, li = strlen(id), lt = strlen(inst);
  /* each string: key (<= 2 bytes) + length varint (<= 10) + bytes; each
   * varint field: key (2) + value (<= 10) */
  size_t need = n + (node ? 12 + ln : 0) + 12 + li + 12 + lt + 12 + 12;
  cairn_err e = cairn_buf_reserve(out, need);
  if (e) return e;
  uint8_t *o = out->ptr + out->len;
  if (n) memcpy(o, raw, n);
  o += n;
  if (node) o = put_str(o, F_NODE, node, ln);
  o = put_str(o, F_IDENTITY, id, li);
  o = put_str(o, F_INSTANCE_ID, inst, lt);
  o = put_varint(o, (uint64_t)F_INGEST_NS << 3);
  o = put_varint(o, (uint64_t)in->ingest_ns); /* int64: two's complement, as protobuf does */
  o = put_varint(o, (uint64_t)F_SEQ << 3);
  o = put_varint(o, in->seq);
  out->len = (size_t)(o - out->ptr);
  return CAIRN_OK;
}

cairn_err pb_record_pack_ingest(const uint8_t *raw, size_t n, const Cairn__Record *r,
                                bool with_node, cairn_buf *out) {
  pb_ingest in = {with_node ? r->node : NULL, r->identity, r->instance_id, r->ingest_ns, r->seq};
  return pb_record_pack_fields(raw, n, &in, out);
}

cairn_err pb_record_unpack(const uint8_t *p, size_t len, cairn_arena *a, Cairn__Record **out) {
  /* protobuf-c reports OOM and bad input the same way (NULL); the budget
   * allocator (with no real budget) remembers which one it was. */
  pb__budget_alloc ba;
  ProtobufCAllocator al = pb__budget_allocator(&ba, a, SIZE_MAX);
  Cairn__Record *r = cairn__record__unpack(&al, len, p);
  if (!r) {
    *out = NULL;
    return ba.oom ? CAIRN_E_NOMEM : CAIRN_E_PROTO;
  }
  *out = r;
  return CAIRN_OK;
}

void pb_query_record_fill(Cairn__Record *rec, Cairn__Attr *attrs, Cairn__Attr **ap,
                          const char *const (*kv)[2], size_t n, int64_t time_ns,
                          const char *node, const uint8_t *msg, size_t len) {
  for (size_t i = 0; i < n; i++) {
    cairn__attr__init(&attrs[i]);
    attrs[i].key = (char *)kv[i][0];
    attrs[i].value.data = (uint8_t *)kv[i][1];
    attrs[i].value.len = strlen(kv[i][1]);
    ap[i] = &attrs[i];
  }
  Cairn__Record init = CAIRN__RECORD__INIT;
  *rec = init;
  rec->time_ns = time_ns;
  rec->source = CAIRN__SOURCE__SOURCE_QUERY;
  rec->node = (char *)node;
  rec->n_attrs = n;
  rec->attrs = ap;
  rec->message.data = (uint8_t *)msg;
  rec->message.len = len;
}
