/* proto/internal.h: declarations shared by the proto/ codec files only.
 *
 * Private to the module: nothing outside proto/ (and its tests) includes it.
 */
#ifndef CAIRN_PROTO_INTERNAL_H
#define CAIRN_PROTO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/proto.h"
#include "proto/recview.h"

/* Arena-backed protobuf-c allocator with a byte budget: decoding untrusted
 * input expands it (a 2-byte empty Attr becomes a ~60-byte struct), so the
 * codec caps what one unpack may take from the arena. */
typedef struct pb__budget_alloc {
  cairn_arena *arena; /* borrowed */
  size_t left;        /* bytes still allowed */
  bool exceeded;      /* set when a request was refused for the budget */
  bool oom;           /* set when the arena itself returned NULL */
} pb__budget_alloc;

/* Initialise ba and return an allocator that draws on it. ba must outlive
 * every use of the returned allocator. */
ProtobufCAllocator pb__budget_allocator(pb__budget_alloc *ba, cairn_arena *a, size_t budget);

/* pb_view_parse, and on success *bound (may be NULL) gets an upper bound of
 * the bytes protobuf-c's unpack of the same record would take from the
 * codec's budget allocator (structs, strings, attr array, scan slabs, each
 * 16-aligned), so a batch whose records all parse can be held to the same
 * expansion limit as one that protobuf-c unpacks. */
bool pb__view_parse_bound(const uint8_t *p, size_t n, pb_rec_view *v, size_t *bound);

#endif
