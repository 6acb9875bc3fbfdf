/* proto/json.h: the JSON rendering of one record from a pb_rec_view (the
 * packed record read in place, proto/recview.h). pb_record_json (proto.h)
 * is pb_view_from_record + pb_view_json, so a record renders byte for byte
 * the same from its stored bytes and from its protobuf-c struct.
 */
#ifndef CAIRN_PROTO_JSON_H
#define CAIRN_PROTO_JSON_H

#include "common/buf.h"
#include "common/err.h"
#include "proto/recview.h"

/* Append one JSON object (no newline) for the record viewed by v to out,
 * in the format pb_record_json documents (proto/proto.h). v and the bytes
 * it points into are borrowed for the call. out grows once per call (one
 * reserve of an upper bound of the object's size, so up to ~6x the record's
 * string bytes of spare capacity may be allocated). CAIRN_E_NOMEM (out->len
 * is then unchanged). */
CAIRN_MUST_CHECK cairn_err pb_view_json(const pb_rec_view *v, cairn_buf *out);

#endif
