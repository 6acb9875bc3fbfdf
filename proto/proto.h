/* proto/proto.h: the cairn wire format: frames, envelopes, zstd batch codec.
 *
 * Everything here is pure computation (no I/O, no libuv), so the query CLI and
 * the fuzzers link it too. The TLS stream lives in proto/tls.h.
 *
 * Caveats:
 *  - Every decoder checks its limit BEFORE allocating: a frame length over
 *    max_frame, a zstd payload that would grow beyond max_raw (checked while
 *    streaming, the frame header is not trusted), more records than
 *    max_records. They return CAIRN_E_LIMIT; the caller closes the connection.
 *  - Decoded messages live in the cairn_arena passed in; they are valid until
 *    that arena is reset. Never call protobuf_c_message_free_unpacked on them.
 *  - Generated protobuf-c types (Cairn__Record, ...) are reached only through
 *    this header.
 */
#ifndef CAIRN_PROTO_PROTO_H
#define CAIRN_PROTO_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/err.h"
#include "proto/cairn.pb-c.h"

#define PB_PROTOCOL_VERSION 1u
#define PB_FRAME_HEADER 4u                      /* big-endian u32 length */
#define PB_DEFAULT_MAX_FRAME (16u << 20)        /* 16 MiB on the wire */
#define PB_DEFAULT_MAX_RAW (64u << 20)          /* 64 MiB decompressed */
#define PB_DEFAULT_MAX_RECORDS 100000u          /* records per batch */

typedef struct pb_limits {
  uint32_t max_frame;   /* bytes of one frame body (envelope) */
  uint64_t max_raw;     /* bytes of a decompressed RecordBatch */
  uint32_t max_records; /* records in one batch */
} pb_limits;

/* Fill l with the PB_DEFAULT_* values. */
void pb_limits_default(pb_limits *l);

/* ---- frames ---- */

/* Look at the start of a receive buffer. If a whole frame is present, set
 * *body and *body_len to the envelope bytes (borrowed from buf) and *consumed to
 * header+body; return CAIRN_OK. If more bytes are needed, return CAIRN_E_AGAIN.
 * If the announced length exceeds max_frame (or is 0), CAIRN_E_LIMIT: the
 * caller must close the connection (nothing was allocated); *body_len then
 * holds the announced length, for the log line. The length is checked as soon
 * as the 4 header bytes are there, before the body arrived. Never allocates. */
CAIRN_MUST_CHECK cairn_err pb_frame_peek(const uint8_t *buf, size_t len, uint32_t max_frame,
                                         const uint8_t **body, size_t *body_len,
                                         size_t *consumed);

/* Append one frame (header + packed env) to out. CAIRN_E_NOMEM;
 * CAIRN_E_INVAL when env has no message case set (it would pack to an empty
 * frame, which every receiver rejects); CAIRN_E_LIMIT over 4 GiB. */
CAIRN_MUST_CHECK cairn_err pb_frame_append(cairn_buf *out, const Cairn__Envelope *env);

/* Unpack an envelope from body into arena a. CAIRN_E_PROTO when the bytes
 * are not a valid Envelope or no message case is set; CAIRN_E_NOMEM. *out is
 * valid until the arena is reset. */
CAIRN_MUST_CHECK cairn_err pb_envelope_decode(const uint8_t *body, size_t len, cairn_arena *a,
                                              Cairn__Envelope **out);

/* ---- batch codec ---- */

typedef struct pb_codec pb_codec; /* reusable zstd contexts; one per thread */

/* New codec with zstd compression level (1..19; 0 = default 1; values out of
 * range are clamped). The zstd contexts and a scratch buffer are created once
 * and reused by every call; scratch above 4 MiB is released after the call
 * that needed it. Not thread-safe: one codec per thread. NULL on OOM. */
pb_codec *pb_codec_new(int level);
void pb_codec_free(pb_codec *c); /* NULL is fine */

/* Detail of the last failed encode/decode on c (e.g. "payload decompresses to
 * more than max_raw 1048576 bytes", or zstd's own error text), "" after a
 * success. Put it in the Ack reason / log line. Valid until the next call on c. */
const char *pb_codec_last_error(const pb_codec *c);

/* Pack n records as a RecordBatch, compress with zstd, and append the
 * compressed bytes to out. *raw_size gets the uncompressed size. The records
 * are borrowed (not copied); their string fields must be non-NULL (the
 * CAIRN__RECORD__INIT default "" is fine). out is only appended to; on error
 * out->len is unchanged. CAIRN_E_NOMEM, CAIRN_E_ZSTD. */
CAIRN_MUST_CHECK cairn_err pb_batch_encode(pb_codec *c, Cairn__Record *const *recs, size_t n,
                                           cairn_buf *out, uint64_t *raw_size);

/* Decompress payload (streaming, at most lim->max_raw bytes) and unpack the
 * RecordBatch into arena a. payload must be exactly one zstd frame: trailing
 * bytes or a second frame are CAIRN_E_ZSTD. The record count is pre-scanned
 * on the raw bytes before unpacking, and unpacking may take at most ~16x the
 * raw size from the arena (plus a fixed amount per record). Errors:
 * CAIRN_E_LIMIT (over max_raw, over max_records, window too large, expands
 * too much), CAIRN_E_ZSTD (not one valid, complete zstd frame), CAIRN_E_PROTO
 * (not a RecordBatch), CAIRN_E_NOMEM; pb_codec_last_error says which.
 * *out (NULL on error) is valid until the arena is reset. */
CAIRN_MUST_CHECK cairn_err pb_batch_decode(pb_codec *c, const uint8_t *payload, size_t len,
                                           const pb_limits *lim, cairn_arena *a,
                                           Cairn__RecordBatch **out);

/* Bytes of one record inside a decoded RecordBatch. */
typedef struct pb_slice {
  const uint8_t *p; /* NULL: do not reuse these bytes, pack the record instead */
  size_t len;
} pb_slice;

/* pb_batch_decode, and also the packed bytes of every record: (*raws)[i]
 * are the bytes records[i] was unpacked from (a copy in arena a, so they
 * outlive the codec's scratch). A record that carried fields this build
 * does not know gets p = NULL: its unknown fields were dropped from the
 * struct, and its bytes must not be stored as they came (see codec.c). */
CAIRN_MUST_CHECK cairn_err pb_batch_decode_raw(pb_codec *c, const uint8_t *payload, size_t len,
                                               const pb_limits *lim, cairn_arena *a,
                                               Cairn__RecordBatch **out, pb_slice **raws);

/* One record of a batch decoded by pb_batch_decode_items. */
typedef struct pb_batch_item {
  pb_slice raw;       /* the record's bytes as received; p == NULL: they carried
                       * fields this build does not know, pack rec instead */
  Cairn__Record *rec; /* NULL: raw is a record pb_view_parse (proto/recview.h)
                       * takes; else protobuf-c's decode of it (in the arena) */
} pb_batch_item;

/* pb_batch_decode_raw for the aggregator's writer, mostly without
 * protobuf-c: decompress payload into *raw (the caller's buffer, reset
 * first, grown as needed and kept by the caller for the next batch), walk
 * the RecordBatch and check every record with pb_view_parse. When all of
 * them pass (the normal case), nothing is unpacked: (*items)[i].raw are the
 * records' bytes inside raw and .rec is NULL. Otherwise the batch is
 * unpacked with protobuf-c exactly as pb_batch_decode_raw does (unknown
 * fields dropped, raw.p NULL for a record that had some) and .rec is set for
 * every record. Same limits, errors and pb_codec_last_error texts as
 * pb_batch_decode_raw, except the text of a CAIRN_E_ZSTD error for a
 * damaged frame, which depends on how large the output buffer already was
 * (it can differ between two calls of one decoder too; tests/fuzz/fuzz_batch.c)
 * (the protobuf-c unpack budget is applied to the
 * records read as views too, from an upper bound of what unpacking would
 * take). *items (n_items entries, NULL and 0 on error) lives in arena a,
 * the bytes in raw: valid until a is reset or raw is changed. */
CAIRN_MUST_CHECK cairn_err pb_batch_decode_items(pb_codec *c, const uint8_t *payload, size_t len,
                                                 const pb_limits *lim, cairn_buf *raw,
                                                 cairn_arena *a, pb_batch_item **items,
                                                 size_t *n_items);

/* ---- single records (storage format) ---- */

/* Append the packed bytes of one Record to out. CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err pb_record_pack(const Cairn__Record *r, cairn_buf *out);

/* Append raw[0..n) (the bytes r was unpacked from, pb_batch_decode_raw)
 * followed by the ingest fields of r: node (only when with_node), identity,
 * instance_id, ingest_ns and seq. A singular field seen twice takes its last
 * value when unpacked, so the result unpacks to r (with those fields as r
 * has them) without packing the record again. CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err pb_record_pack_ingest(const uint8_t *raw, size_t n,
                                                 const Cairn__Record *r, bool with_node,
                                                 cairn_buf *out);

/* The aggregator's fields of one stored record (pb_record_pack_fields). */
typedef struct pb_ingest {
  const char *node;        /* NUL-terminated; appended only when non-NULL */
  const char *identity;    /* NUL-terminated; NULL = "" */
  const char *instance_id; /* NUL-terminated; NULL = "" */
  int64_t ingest_ns;
  uint64_t seq;
} pb_ingest;

/* pb_record_pack_ingest from values instead of a Cairn__Record: raw[0..n)
 * followed by node (when in->node), identity, instance_id, ingest_ns and
 * seq. The one implementation of both. CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err pb_record_pack_fields(const uint8_t *raw, size_t n, const pb_ingest *in,
                                                 cairn_buf *out);

/* Fill *rec as a source=query record (the audit trail of one query, PCI DSS
 * 10.2.1.3): time_ns, node and message msg/len as given, and one attr per
 * kv pair (kv[i][0] key, kv[i][1] value). attrs and ap are caller arrays of
 * n elements; every string and msg are borrowed and must outlive rec. */
void pb_query_record_fill(Cairn__Record *rec, Cairn__Attr *attrs, Cairn__Attr **ap,
                          const char *const (*kv)[2], size_t n, int64_t time_ns,
                          const char *node, const uint8_t *msg, size_t len);

/* Unpack one Record into arena a. CAIRN_E_PROTO, CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err pb_record_unpack(const uint8_t *p, size_t len, cairn_arena *a,
                                            Cairn__Record **out);

/* A ProtobufCAllocator that allocates from arena a and never frees. */
ProtobufCAllocator pb_arena_allocator(cairn_arena *a);

/* Names used in text/JSON output: "container", "audit", "k8s-audit";
 * "stdout"/"stderr"; "cri", "docker", "auditd", "k8s-audit". "" for unknown. */
const char *pb_source_name(Cairn__Source s);
const char *pb_stream_name(Cairn__LogStream s);
const char *pb_format_name(Cairn__Format f);
/* Reverse of pb_source_name/pb_format_name; CAIRN_E_PARSE if unknown. */
CAIRN_MUST_CHECK cairn_err pb_source_parse(const char *s, Cairn__Source *out);
CAIRN_MUST_CHECK cairn_err pb_format_parse(const char *s, Cairn__Format *out);

/* ---- JSON rendering (query output, Kafka values) ---- */

/* Append one JSON object (no newline) for r to out: seq, time (RFC 3339),
 * time_ns, source, format, stream, node, namespace, pod, container,
 * container_id, pod_uid, path, message (or message_b64 when the bytes are not
 * valid UTF-8), flags (array of names), attrs (object), identity,
 * instance_id, ingest_time. Empty strings and zero values are omitted.
 * CAIRN_E_NOMEM. Implemented in proto/json.c. */
CAIRN_MUST_CHECK cairn_err pb_record_json(const Cairn__Record *r, cairn_buf *out);

#endif
