/* proto/recview.c: pb_view_parse, a packed cairn.Record read in place.
 * The parser is deliberately stricter than protobuf-c (canonical one- or
 * two-byte keys, no unknown fields, no NUL in strings): whatever it is not
 * certain to read exactly as protobuf_c_message_unpack would, it refuses,
 * and the caller takes the protobuf-c path. It also counts an upper bound of
 * what protobuf-c would allocate for the record (pb__view_parse_bound), so the
 * batch codec can apply its unpack budget without unpacking.
 * pb_view_key_fields is the same walk for the Kafka forwarder's four fields,
 * skipping everything else by length.
 */
#include <string.h>

#include "proto/internal.h"
#include "proto/recview.h"

/* Record field numbers (proto/cairn.proto). */
enum {
  F_TIME_NS = 1,
  F_SOURCE,
  F_STREAM,
  F_FLAGS,
  F_MESSAGE,
  F_NAMESPACE,
  F_POD,
  F_CONTAINER,
  F_CONTAINER_ID,
  F_POD_UID,
  F_NODE,
  F_PATH,
  F_FILE_STREAM,
  F_END_OFFSET,
  F_FRAGMENTS,
  F_FORMAT,
  F_ATTRS,
  F_IDENTITY,
  F_INSTANCE_ID,
  F_INGEST_NS,
  F_SEQ,
  F_MAX_ = F_SEQ
};

/* 16-aligned size, as the arena (and the codec's budget) counts it. */
static inline size_t al16(size_t n) { return (n + 15) & ~(size_t)15; }

/* protobuf-c's scanned-member slabs: the first 16 field occurrences of a
 * message are tracked on the stack, more take doubling slabs of 32-byte
 * entries from the allocator; their sum stays under 64 bytes per occurrence. */
static inline size_t slab_bound(size_t occurrences) {
  return occurrences > 16 ? 64 * occurrences : 0;
}

/* A canonical field key of at most two bytes (every Record and Attr field
 * number is below 2^11). false for anything longer or padded. */
static inline bool read_key(const uint8_t **pp, const uint8_t *end, uint32_t *key) {
  const uint8_t *p = *pp;
  if (p >= end) return false;
  uint32_t b0 = p[0];
  if (b0 < 0x80) {
    *key = b0;
    *pp = p + 1;
    return true;
  }
  if (end - p < 2 || p[1] == 0 || p[1] >= 0x80) return false;
  *key = (b0 & 0x7f) | (uint32_t)p[1] << 7;
  *pp = p + 2;
  return true;
}

/* A varint value of at most 10 bytes; bits past 64 are dropped, as
 * protobuf-c's parse_uint64 does. */
static inline bool read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v) {
  const uint8_t *p = *pp;
  uint64_t r = 0;
  for (unsigned i = 0; i < 10 && p < end; i++) {
    uint8_t b = *p++;
    r |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *v = r;
      *pp = p;
      return true;
    }
  }
  return false;
}

/* A length prefix (at most 5 bytes and INT_MAX, as protobuf-c reads them)
 * and the bytes it announces, which must lie before end. */
static inline bool read_len(const uint8_t **pp, const uint8_t *end, pb_str *s) {
  const uint8_t *p = *pp;
  uint64_t n = 0;
  if (p < end && p[0] < 0x80) { /* most lengths: one byte */
    n = *p++;
  } else {
    for (unsigned i = 0;; i++) {
      if (i == 5 || p >= end) return false;
      uint8_t b = *p++;
      n |= (uint64_t)(b & 0x7f) << (7 * i);
      if (!(b & 0x80)) break;
    }
  }
  if (n > 0x7fffffffu || n > (uint64_t)(end - p)) return false;
  s->p = p;
  s->n = (size_t)n;
  *pp = p + n;
  return true;
}

static inline bool has_nul(const pb_str *s) { return s->n && memchr(s->p, 0, s->n) != NULL; }

/* One Attr sub-message: key (1, string without NUL) and value (2, bytes),
 * last occurrence wins. Adds protobuf-c's allocations for it to *bound. */
static bool parse_attr(const uint8_t *p, const uint8_t *end, pb_attr_view *a, size_t *bound) {
  a->key = (pb_str){NULL, 0};
  a->value = (pb_str){NULL, 0};
  size_t occ = 0;
  *bound += al16(sizeof(Cairn__Attr));
  while (p < end) {
    uint32_t key;
    pb_str s;
    if (!read_key(&p, end, &key)) return false;
    if ((key & 7) != 2 || !read_len(&p, end, &s)) return false;
    if (key >> 3 == 1) {
      if (has_nul(&s)) return false;
      a->key = s;
    } else if (key >> 3 == 2) {
      a->value = s;
    } else {
      return false;
    }
    occ++;
    *bound += al16(s.n + 1);
  }
  *bound += slab_bound(occ);
  return true;
}

bool pb__view_parse_bound(const uint8_t *p, size_t n, pb_rec_view *v, size_t *bound) {
  const uint8_t *end = p + n;
  size_t occ = 0, b = al16(sizeof(Cairn__Record));
  v->time_ns = 0;
  v->source = v->stream = v->flags = 0;
  v->message = v->kube_namespace = v->pod = v->container = v->container_id = v->pod_uid =
      v->node = v->path = v->identity = v->instance_id = (pb_str){NULL, 0};
  v->file_stream = v->end_offset = 0;
  v->fragments = v->format = 0;
  v->n_attrs = 0;
  v->ingest_ns = 0;
  v->seq = 0;
  while (p < end) {
    uint32_t key;
    if (!read_key(&p, end, &key)) return false;
    uint32_t f = key >> 3;
    if (f == 0 || f > F_MAX_) return false;
    occ++;
    if ((key & 7) == 0) {
      uint64_t x;
      if (!read_varint(&p, end, &x)) return false;
      switch (f) {
      case F_TIME_NS: v->time_ns = (int64_t)x; break;
      case F_SOURCE: v->source = (uint32_t)x; break;
      case F_STREAM: v->stream = (uint32_t)x; break;
      case F_FLAGS: v->flags = (uint32_t)x; break;
      case F_FILE_STREAM: v->file_stream = x; break;
      case F_END_OFFSET: v->end_offset = x; break;
      case F_FRAGMENTS: v->fragments = (uint32_t)x; break;
      case F_FORMAT: v->format = (uint32_t)x; break;
      case F_INGEST_NS: v->ingest_ns = (int64_t)x; break;
      case F_SEQ: v->seq = x; break;
      default: return false; /* a length-delimited field sent as a varint */
      }
      continue;
    }
    if ((key & 7) != 2) return false;
    pb_str s;
    if (!read_len(&p, end, &s)) return false;
    pb_str *dst;
    switch (f) {
    case F_MESSAGE: v->message = s; b += al16(s.n + 1); continue; /* bytes: NUL is fine */
    case F_NAMESPACE: dst = &v->kube_namespace; break;
    case F_POD: dst = &v->pod; break;
    case F_CONTAINER: dst = &v->container; break;
    case F_CONTAINER_ID: dst = &v->container_id; break;
    case F_POD_UID: dst = &v->pod_uid; break;
    case F_NODE: dst = &v->node; break;
    case F_PATH: dst = &v->path; break;
    case F_IDENTITY: dst = &v->identity; break;
    case F_INSTANCE_ID: dst = &v->instance_id; break;
    case F_ATTRS:
      if (v->n_attrs == PB_VIEW_ATTRS_MAX) return false;
      if (!parse_attr(s.p, s.p + s.n, &v->attrs[v->n_attrs], &b)) return false;
      v->n_attrs++;
      continue;
    default: return false; /* a varint field sent length-delimited */
    }
    if (has_nul(&s)) return false;
    *dst = s;
    b += al16(s.n + 1);
  }
  b += slab_bound(occ) + al16(v->n_attrs * sizeof(Cairn__Attr *));
  if (bound) *bound = b;
  return true;
}

bool pb_view_parse(const uint8_t *p, size_t n, pb_rec_view *v) {
  return pb__view_parse_bound(p, n, v, NULL);
}

/* Record fields sent as varints (the others are length-delimited). */
#define VARINT_FIELDS                                                                            \
  ((1u << F_TIME_NS) | (1u << F_SOURCE) | (1u << F_STREAM) | (1u << F_FLAGS) |                   \
   (1u << F_FILE_STREAM) | (1u << F_END_OFFSET) | (1u << F_FRAGMENTS) | (1u << F_FORMAT) |       \
   (1u << F_INGEST_NS) | (1u << F_SEQ))

/* Skip what read_varint would read (the same bytes, the same failures),
 * without computing the value: with 8 bytes left, the first byte without a
 * continuation bit is found in one 64-bit word. */
static inline bool skip_varint(const uint8_t **pp, const uint8_t *end) {
  const uint8_t *p = *pp;
  if (end - p >= 8) {
    /* little-endian assembly whatever the host order (compilers merge it
     * into one load on little-endian hosts) */
    uint64_t w = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
                 (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
                 (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
    uint64_t last = ~w & 0x8080808080808080ull;
    if (last) {
      *pp = p + ((unsigned)__builtin_ctzll(last) >> 3) + 1;
      return true;
    }
    p += 8;
  }
  for (const uint8_t *lim = *pp + 10; p < end && p < lim;) {
    if (!(*p++ & 0x80)) {
      *pp = p;
      return true;
    }
  }
  return false;
}

/* The wire structure parse_attr accepts, without its NUL check, values or
 * bound: protobuf-c decodes every Attr that passes. */
static bool attr_wire_ok(const uint8_t *p, const uint8_t *end) {
  while (p < end) {
    uint32_t key;
    pb_str s;
    if (!read_key(&p, end, &key)) return false;
    if ((key != (1u << 3 | 2) && key != (2u << 3 | 2)) || !read_len(&p, end, &s)) return false;
  }
  return true;
}

bool pb_view_key_fields(const uint8_t *p, size_t n, pb_key_fields *out) {
  const uint8_t *end = p + n;
  pb_key_fields k = {0, 0, 0, {NULL, 0}};
  while (p < end) {
    uint32_t key;
    if (!read_key(&p, end, &key)) return false;
    uint32_t f = key >> 3;
    if (f == 0 || f > F_MAX_) return false;
    bool varint_field = (VARINT_FIELDS >> f) & 1u;
    if ((key & 7) == 0) {
      if (!varint_field) return false;
      if (f != F_SEQ && f != F_SOURCE && f != F_FILE_STREAM) {
        if (!skip_varint(&p, end)) return false;
        continue;
      }
      uint64_t x;
      if (!read_varint(&p, end, &x)) return false;
      if (f == F_SEQ) k.seq = x;
      else if (f == F_SOURCE) k.source = (uint32_t)x;
      else k.file_stream = x;
      continue;
    }
    pb_str s;
    if ((key & 7) != 2 || varint_field || !read_len(&p, end, &s)) return false;
    if (f == F_INSTANCE_ID) {
      if (has_nul(&s)) return false;
      k.instance_id = s;
    } else if (f == F_ATTRS && !attr_wire_ok(s.p, s.p + s.n)) {
      return false;
    }
  }
  *out = k;
  return true;
}

static inline pb_str cstr(const char *s) {
  return s ? (pb_str){(const uint8_t *)s, strlen(s)} : (pb_str){NULL, 0};
}

bool pb_view_from_record(const Cairn__Record *r, pb_rec_view *v) {
  v->time_ns = r->time_ns;
  v->source = (uint32_t)r->source;
  v->stream = (uint32_t)r->stream;
  v->flags = r->flags;
  v->message = (pb_str){r->message.data, r->message.len};
  v->kube_namespace = cstr(r->kube_namespace);
  v->pod = cstr(r->pod);
  v->container = cstr(r->container);
  v->container_id = cstr(r->container_id);
  v->pod_uid = cstr(r->pod_uid);
  v->node = cstr(r->node);
  v->path = cstr(r->path);
  v->file_stream = r->file_stream;
  v->end_offset = r->end_offset;
  v->fragments = r->fragments;
  v->format = (uint32_t)r->format;
  v->identity = cstr(r->identity);
  v->instance_id = cstr(r->instance_id);
  v->ingest_ns = r->ingest_ns;
  v->seq = r->seq;
  size_t na = r->n_attrs < PB_VIEW_ATTRS_MAX ? r->n_attrs : PB_VIEW_ATTRS_MAX;
  for (size_t i = 0; i < na; i++) {
    const Cairn__Attr *a = r->attrs[i];
    v->attrs[i].key = a ? cstr(a->key) : (pb_str){NULL, 0};
    v->attrs[i].value = a ? (pb_str){a->value.data, a->value.len} : (pb_str){NULL, 0};
  }
  v->n_attrs = na;
  return r->n_attrs <= PB_VIEW_ATTRS_MAX;
}
