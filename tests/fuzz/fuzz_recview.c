/* tests/fuzz/fuzz_recview.c: differential fuzz target for pb_view_parse.
 * The input is one packed Record. protobuf-c (cairn__record__unpack) decodes
 * it too: when protobuf-c fails the view must refuse, and when the view takes
 * it, every field must equal what pb_view_from_record reads from protobuf-c's
 * result, and protobuf-c must have allocated no more than the view's bound.
 * pb_view_key_fields is checked on the same input: it takes whatever the
 * view takes, with the view's seq, source, file_stream and instance_id, and
 * whatever it takes protobuf-c decodes to those same four values.
 */
#include <stdbool.h>
#include <string.h>

#include "common/arena.h"
#include "proto/internal.h"
#include "proto/recview.h"
#include "tests/fuzz/fuzz.h"

static pb_rec_view va, vb;

static bool str_eq(pb_str a, pb_str b) {
  return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static void check_equal(const pb_rec_view *a, const pb_rec_view *b) {
  FUZZ_CHECK(a->time_ns == b->time_ns && a->source == b->source && a->stream == b->stream);
  FUZZ_CHECK(a->flags == b->flags && str_eq(a->message, b->message));
  FUZZ_CHECK(str_eq(a->kube_namespace, b->kube_namespace) && str_eq(a->pod, b->pod));
  FUZZ_CHECK(str_eq(a->container, b->container) && str_eq(a->container_id, b->container_id));
  FUZZ_CHECK(str_eq(a->pod_uid, b->pod_uid) && str_eq(a->node, b->node));
  FUZZ_CHECK(str_eq(a->path, b->path));
  FUZZ_CHECK(a->file_stream == b->file_stream && a->end_offset == b->end_offset);
  FUZZ_CHECK(a->fragments == b->fragments && a->format == b->format);
  FUZZ_CHECK(a->n_attrs == b->n_attrs);
  for (size_t i = 0; i < a->n_attrs; i++)
    FUZZ_CHECK(str_eq(a->attrs[i].key, b->attrs[i].key) &&
               str_eq(a->attrs[i].value, b->attrs[i].value));
  FUZZ_CHECK(str_eq(a->identity, b->identity) && str_eq(a->instance_id, b->instance_id));
  FUZZ_CHECK(a->ingest_ns == b->ingest_ns && a->seq == b->seq);
}

/* pb_view_key_fields' rule (tests/proto/recview_test.c, check_key_fields). */
static void check_key_fields(const uint8_t *data, size_t size, bool view_ok,
                             const Cairn__Record *r) {
  pb_key_fields kf;
  bool kok = pb_view_key_fields(data, size, &kf);
  if (view_ok) {
    FUZZ_CHECK(kok);
    FUZZ_CHECK(kf.seq == va.seq && kf.source == va.source && kf.file_stream == va.file_stream);
    FUZZ_CHECK(str_eq(kf.instance_id, va.instance_id));
  }
  if (!kok) return;
  FUZZ_CHECK(r != NULL);
  FUZZ_CHECK(kf.seq == r->seq && kf.source == (uint32_t)r->source &&
             kf.file_stream == r->file_stream);
  const char *inst = r->instance_id ? r->instance_id : "";
  FUZZ_CHECK(str_eq(kf.instance_id, (pb_str){(const uint8_t *)inst, strlen(inst)}));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t bound = 0;
  bool ok = pb__view_parse_bound(data, size, &va, &bound);
  cairn_arena ar;
  cairn_arena_init(&ar, 0);
  pb__budget_alloc ba;
  ProtobufCAllocator al = pb__budget_allocator(&ba, &ar, SIZE_MAX);
  Cairn__Record *r = cairn__record__unpack(&al, size, data);
  check_key_fields(data, size, ok, r);
  if (!r) {
    FUZZ_CHECK(!ok);
  } else if (ok) {
    FUZZ_CHECK(r->base.n_unknown_fields == 0);
    FUZZ_CHECK(pb_view_from_record(r, &vb));
    check_equal(&va, &vb);
    FUZZ_CHECK(SIZE_MAX - ba.left <= bound);
  }
  cairn_arena_fini(&ar);
  return 0;
}
