/* proto/recview.h: a packed cairn.Record read in place, without protobuf-c.
 *
 * The aggregator's hot paths (ingest: dedupe + index; Kafka: JSON) need the
 * fields of every record but not a decoded struct. pb_view_parse walks the
 * protobuf wire format once and fills a pb_rec_view whose strings and bytes
 * point into the packed record: no allocation, no copy.
 *
 * Exactness contract: the fast path is only taken when it is certain to give
 * what protobuf-c would. pb_view_parse returns false (and the caller uses
 * pb_record_unpack + pb_view_from_record instead) for anything it does not
 * treat exactly like protobuf_c_message_unpack followed by the C code that
 * reads NUL-terminated strings:
 *   - malformed wire data (truncated varint/length, length past the end,
 *     group wire types, a known field with the wrong wire type),
 *   - a field number this build does not know (protobuf-c keeps those as
 *     unknown fields; see proto/codec.c for why they are never stored raw),
 *   - a NUL byte inside a string field (protobuf-c's char * would end there),
 *   - more than PB_VIEW_ATTRS_MAX attrs, or an attr with a field other than
 *     key (1, string) and value (2, bytes).
 * Otherwise the view holds exactly the values protobuf-c would decode: the
 * last occurrence of a singular field wins (the aggregator appends its own
 * fields after the collector's), attrs accumulate in wire order, absent
 * fields are zero / empty, enum fields keep their numeric value as sent.
 */
#ifndef CAIRN_PROTO_RECVIEW_H
#define CAIRN_PROTO_RECVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/cairn.pb-c.h"

#define PB_VIEW_ATTRS_MAX 128

/* Bytes borrowed from the packed record (or from a Cairn__Record's strings).
 * Never NUL-terminated; n == 0 means absent or empty (p may then be NULL). */
typedef struct pb_str {
  const uint8_t *p;
  size_t n;
} pb_str;

typedef struct pb_attr_view {
  pb_str key;
  pb_str value;
} pb_attr_view;

/* Field names and numbers as in cairn.proto's Record. */
typedef struct pb_rec_view {
  int64_t time_ns;     /* 1 */
  uint32_t source;     /* 2, Cairn__Source value */
  uint32_t stream;     /* 3, Cairn__LogStream value */
  uint32_t flags;      /* 4 */
  pb_str message;      /* 5 */
  pb_str kube_namespace, pod, container, container_id, pod_uid, node, path; /* 6..12 */
  uint64_t file_stream; /* 13 */
  uint64_t end_offset;  /* 14 */
  uint32_t fragments;   /* 15 */
  uint32_t format;      /* 16, Cairn__Format value */
  size_t n_attrs;       /* 17, attrs[0..n_attrs) in wire order */
  pb_attr_view attrs[PB_VIEW_ATTRS_MAX];
  pb_str identity;      /* 18 */
  pb_str instance_id;   /* 19 */
  int64_t ingest_ns;    /* 20 */
  uint64_t seq;         /* 21 */
} pb_rec_view;

/* Fill *v from the packed Record p[0..n). true on success; false when the
 * bytes need protobuf-c (see the contract above; *v is then unspecified).
 * v is large (~4.5 KiB): keep one per thread, not one per record. */
bool pb_view_parse(const uint8_t *p, size_t n, pb_rec_view *v);

/* The four fields the Kafka forwarder needs of a stored record (key, topic,
 * cursor); instance_id borrowed from the packed bytes. */
typedef struct pb_key_fields {
  uint64_t seq;         /* 21 */
  uint32_t source;      /* 2, Cairn__Source value */
  uint64_t file_stream; /* 13 */
  pb_str instance_id;   /* 19, no NUL inside */
} pb_key_fields;

/* Read only seq, source, file_stream and instance_id from the packed Record
 * p[0..n), in one walk that skips every other field by its length (strings
 * and the message are not looked into; an attr is walked for its wire
 * structure only). Much cheaper than pb_view_parse for a caller that needs
 * nothing else (the forwarder with --kafka-format protobuf).
 * Contract (tested against pb_view_parse and protobuf-c in
 * tests/proto/recview_test.c and tests/fuzz/fuzz_recview.c):
 *   - it refuses (false) what pb_view_parse refuses for its wire rules:
 *     malformed wire data, non-canonical or over-long keys, unknown field
 *     numbers, a known field with the wrong wire type (anywhere in the
 *     record, not only in these four), an attr with a field other than
 *     key (1, length-delimited) or value (2, length-delimited), and a NUL
 *     byte inside instance_id;
 *   - it does NOT refuse a NUL byte inside another string field or attr key,
 *     or more than PB_VIEW_ATTRS_MAX attrs (pb_view_parse does). protobuf-c
 *     decodes such records, so the fields are still exact;
 *   - so whenever pb_view_parse returns true this returns true with the same
 *     four values, and whenever this returns true protobuf-c
 *     (pb_record_unpack) decodes the bytes to the same four values (last
 *     occurrence wins, absent = 0 / empty, source as sent).
 * On false *out is untouched; use pb_view_parse / pb_record_unpack then. */
bool pb_view_key_fields(const uint8_t *p, size_t n, pb_key_fields *out);

/* Fill *v from a decoded record (strings borrowed from r, measured with
 * strlen; attrs beyond PB_VIEW_ATTRS_MAX are not represented: returns
 * false then, true otherwise). */
bool pb_view_from_record(const Cairn__Record *r, pb_rec_view *v);

#endif
