/* proto/pack.h: the collector's RecordBatch encoder, without protobuf-c.
 *
 * pb_pack writes the protobuf wire format of a RecordBatch straight from the
 * Cairn__Record structs, byte for byte what cairn__record_batch__pack gives
 * (fields in field-number order, proto3 zero values omitted exactly as
 * protobuf-c 1.4 omits them), then compresses it with the same zstd settings
 * as pb_codec (proto/proto.h), so receivers see no difference. It is cheaper
 * because it measures every record once with arithmetic instead of walking
 * descriptors twice, and because the per-file fields 6..12 (namespace, pod,
 * container, container_id, pod_uid, node, path), which records of one file
 * share by pointer, are encoded once per file and copied per record.
 *
 * Caveats:
 *  - The per-file cache is keyed on the seven string POINTERS of a record and
 *    lives for one call: records of one call that share those pointers must
 *    not have their strings changed during the call (the collector's records
 *    borrow them from the file, which the batch holds a reference to).
 *  - A record or attr carrying protobuf-c unknown fields is packed by
 *    protobuf-c itself (still identical, just not faster).
 *  - One pb_pack per thread; calls on one pb_pack never run concurrently.
 */
#ifndef CAIRN_PROTO_PACK_H
#define CAIRN_PROTO_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "proto/proto.h"

typedef struct pb_pack pb_pack; /* zstd context + reused scratch; one per thread */

/* New packer compressing with zstd level (same rule as pb_codec_new: 0 means
 * 1, clamped to 1..19). The zstd context and the scratch buffer for the
 * packed RecordBatch are created once and reused; scratch above 4 MiB is
 * released after the call that needed it. NULL on OOM. */
pb_pack *pb_pack_new(int level);
void pb_pack_free(pb_pack *pk); /* NULL is fine */

/* Detail of the last failure on pk, "" after a success. Valid until the next
 * call on pk. */
const char *pb_pack_last_error(const pb_pack *pk);

/* Append the packed RecordBatch{records = recs[0..n)} to out: exactly the
 * bytes cairn__record_batch__pack would write. The records are borrowed;
 * string fields may be NULL or "" (both omitted, as protobuf-c does). out is
 * only appended to; on error out->len is unchanged. CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err pb_pack_batch(pb_pack *pk, Cairn__Record *const *recs, size_t n,
                                         cairn_buf *out);

/* pb_batch_encode (proto/proto.h) with this packer: pack recs[0..n) as a
 * RecordBatch into pk's scratch, compress it with zstd and append the
 * compressed bytes to out; *raw_size gets the uncompressed size. The output
 * is the same bytes pb_batch_encode gives at the same level. On error out->len
 * is unchanged. CAIRN_E_NOMEM, CAIRN_E_ZSTD (pb_pack_last_error says more). */
CAIRN_MUST_CHECK cairn_err pb_pack_encode(pb_pack *pk, Cairn__Record *const *recs, size_t n,
                                          cairn_buf *out, uint64_t *raw_size);

/* Compress len bytes of an already packed RecordBatch (raw, borrowed) into
 * one zstd frame appended to out, with pk's context and level. On error
 * out->len is unchanged. CAIRN_E_NOMEM, CAIRN_E_ZSTD. */
CAIRN_MUST_CHECK cairn_err pb_pack_compress(pb_pack *pk, const uint8_t *raw, size_t len,
                                            cairn_buf *out);

#endif
