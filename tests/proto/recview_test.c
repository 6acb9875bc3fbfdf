/* tests/proto/recview_test.c: pb_view_parse and pb_view_key_fields against
 * protobuf-c (and each other: check_key_fields states the rule).
 * Every input goes through both: when protobuf-c (cairn__record__unpack)
 * refuses the bytes the view must refuse them too, and when the view takes
 * them it must hold, field by field, what pb_view_from_record reads from
 * protobuf-c's result. Inputs: generated records with every field, records
 * built from the shared corpus expectations, repeated singular fields,
 * appended ingest fields, and truncated / mutated / random bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/internal.h"
#include "proto/proto.h"
#include "proto/recview.h"
#include "tests/proto/rec_fixture.h"

static pb_rec_view va, vb; /* ~4.5 KiB each: not on the stack */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

static bool str_eq(pb_str a, pb_str b) {
  return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* Field-by-field equality of two views (the attrs of both in order). */
static void assert_views_equal(const pb_rec_view *a, const pb_rec_view *b) {
  assert_true(a->time_ns == b->time_ns);
  assert_int_equal(a->source, b->source);
  assert_int_equal(a->stream, b->stream);
  assert_int_equal(a->flags, b->flags);
  assert_true(str_eq(a->message, b->message));
  assert_true(str_eq(a->kube_namespace, b->kube_namespace));
  assert_true(str_eq(a->pod, b->pod));
  assert_true(str_eq(a->container, b->container));
  assert_true(str_eq(a->container_id, b->container_id));
  assert_true(str_eq(a->pod_uid, b->pod_uid));
  assert_true(str_eq(a->node, b->node));
  assert_true(str_eq(a->path, b->path));
  assert_true(a->file_stream == b->file_stream);
  assert_true(a->end_offset == b->end_offset);
  assert_int_equal(a->fragments, b->fragments);
  assert_int_equal(a->format, b->format);
  assert_int_equal(a->n_attrs, b->n_attrs);
  for (size_t i = 0; i < a->n_attrs; i++) {
    assert_true(str_eq(a->attrs[i].key, b->attrs[i].key));
    assert_true(str_eq(a->attrs[i].value, b->attrs[i].value));
  }
  assert_true(str_eq(a->identity, b->identity));
  assert_true(str_eq(a->instance_id, b->instance_id));
  assert_true(a->ingest_ns == b->ingest_ns);
  assert_true(a->seq == b->seq);
}

typedef struct diff_count {
  size_t both_ok, view_refused, both_failed;
  size_t keys_only; /* pb_view_key_fields took what pb_view_parse refused */
} diff_count;

/* pb_view_key_fields' contract on one input, given pb_view_parse's answer
 * (va when ok) and protobuf-c's result r (NULL when it failed):
 *   view ok            => key fields ok, with the view's four values;
 *   key fields ok      => protobuf-c decoded it, to the same four values
 *                         (instance_id: protobuf-c's string, measured with strlen);
 *   protobuf-c failed  => key fields refused.
 * Returns pb_view_key_fields' answer. */
static bool check_key_fields(const uint8_t *p, size_t n, bool view_ok, const Cairn__Record *r) {
  pb_key_fields kf;
  memset(&kf, 0xa5, sizeof(kf));
  bool kok = pb_view_key_fields(p, n, &kf);
  if (view_ok) {
    assert_true(kok);
    assert_true(kf.seq == va.seq);
    assert_int_equal(kf.source, va.source);
    assert_true(kf.file_stream == va.file_stream);
    assert_true(str_eq(kf.instance_id, va.instance_id));
  }
  if (!r) assert_false(kok);
  if (kok) {
    assert_non_null(r);
    assert_true(kf.seq == r->seq);
    assert_int_equal(kf.source, (uint32_t)r->source);
    assert_true(kf.file_stream == r->file_stream);
    const char *inst = r->instance_id ? r->instance_id : "";
    assert_int_equal(kf.instance_id.n, strlen(inst));
    assert_true(kf.instance_id.n == 0 || memcmp(kf.instance_id.p, inst, kf.instance_id.n) == 0);
    if (kf.instance_id.n) assert_true(kf.instance_id.p >= p && kf.instance_id.p < p + n);
  }
  return kok;
}

/* The differential check on one input; returns pb_view_parse's answer. */
static bool check_diff(const uint8_t *p, size_t n, diff_count *dc) {
  cairn_arena ar;
  cairn_arena_init(&ar, 0);
  size_t bound = 0;
  bool ok = pb__view_parse_bound(p, n, &va, &bound);
  pb__budget_alloc ba;
  ProtobufCAllocator al = pb__budget_allocator(&ba, &ar, SIZE_MAX);
  Cairn__Record *r = cairn__record__unpack(&al, n, p);
  bool kok = check_key_fields(p, n, ok, r);
  if (dc && kok && !ok) dc->keys_only++;
  if (!r) {
    assert_false(ok);
    if (dc) dc->both_failed++;
  } else if (!ok) {
    if (dc) dc->view_refused++;
  } else {
    /* taken by the view: protobuf-c kept nothing the view could not see */
    assert_int_equal(r->base.n_unknown_fields, 0);
    for (size_t i = 0; i < r->n_attrs; i++) assert_int_equal(r->attrs[i]->base.n_unknown_fields, 0);
    assert_true(pb_view_from_record(r, &vb));
    assert_views_equal(&va, &vb);
    /* the bound covers what protobuf-c really took from the allocator */
    assert_true(SIZE_MAX - ba.left <= bound);
    if (dc) dc->both_ok++;
  }
  cairn_arena_fini(&ar);
  return ok;
}

static char *rnd_str(cairn_arena *a, size_t max, bool allow_empty) {
  size_t n = rnd() % (max + 1);
  if (!allow_empty && n == 0) n = 1;
  char *s = cairn_arena_alloc(a, n + 1);
  for (size_t i = 0; i < n; i++) s[i] = (char)(1 + rnd() % 255); /* no NUL */
  s[n] = 0;
  return s;
}

static ProtobufCBinaryData rnd_bytes(cairn_arena *a, size_t max) {
  size_t n = rnd() % (max + 1);
  uint8_t *p = cairn_arena_alloc(a, n ? n : 1);
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rnd(); /* NUL allowed in bytes */
  return (ProtobufCBinaryData){n, n ? p : NULL};
}

/* A record with every field set to random values (strings may be empty),
 * n_attrs attrs. */
static void rnd_record(cairn_arena *a, Cairn__Record *r, size_t n_attrs) {
  cairn__record__init(r);
  r->time_ns = (int64_t)rnd();
  r->source = (Cairn__Source)(rnd() % 6);
  r->stream = (Cairn__LogStream)(rnd() % 3);
  r->flags = (uint32_t)rnd();
  r->message = rnd_bytes(a, 300);
  r->kube_namespace = rnd_str(a, 20, true);
  r->pod = rnd_str(a, 300, true); /* past a one-byte length */
  r->container = rnd_str(a, 20, true);
  r->container_id = rnd_str(a, 64, true);
  r->pod_uid = rnd_str(a, 36, true);
  r->node = rnd_str(a, 20, true);
  r->path = rnd_str(a, 80, true);
  r->file_stream = rnd() >> (rnd() % 64);
  r->end_offset = rnd() >> (rnd() % 64);
  r->fragments = (uint32_t)(rnd() >> 40);
  r->format = (Cairn__Format)(rnd() % 5);
  r->identity = rnd_str(a, 30, true);
  r->instance_id = rnd_str(a, 32, true);
  r->ingest_ns = (int64_t)rnd();
  r->seq = rnd();
  r->n_attrs = n_attrs;
  r->attrs = cairn_arena_alloc(a, (n_attrs ? n_attrs : 1) * sizeof(*r->attrs));
  for (size_t i = 0; i < n_attrs; i++) {
    Cairn__Attr *at = cairn_arena_alloc(a, sizeof(*at));
    cairn__attr__init(at);
    at->key = rnd_str(a, 12, true);
    at->value = rnd_bytes(a, 40);
    r->attrs[i] = at;
  }
}

static size_t pack(const Cairn__Record *r, cairn_buf *out) {
  cairn_buf_reset(out);
  assert_int_equal(cairn_buf_reserve(out, cairn__record__get_packed_size(r) + 1), CAIRN_OK);
  out->len = cairn__record__pack(r, out->ptr);
  return out->len;
}

static void view_takes_generated_records(void **state) {
  (void)state;
  cairn_arena a;
  cairn_arena_init(&a, 0);
  cairn_buf b = {0};
  for (int i = 0; i < 3000; i++) {
    Cairn__Record r;
    rnd_record(&a, &r, (size_t)(rnd() % 12));
    pack(&r, &b);
    assert_true(check_diff(b.ptr, b.len, NULL));
    /* and the view equals the record it was packed from */
    assert_true(pb_view_parse(b.ptr, b.len, &va));
    assert_true(pb_view_from_record(&r, &vb));
    assert_views_equal(&va, &vb);
    cairn_arena_reset(&a);
  }
  /* all defaults: zero bytes */
  Cairn__Record empty = CAIRN__RECORD__INIT;
  assert_true(check_diff((const uint8_t *)"", 0, NULL));
  assert_true(pb_view_parse((const uint8_t *)"", 0, &va));
  assert_true(pb_view_from_record(&empty, &vb));
  assert_views_equal(&va, &vb);
  cairn_buf_fini(&b);
  cairn_arena_fini(&a);
}

/* Two packed records one after the other merge: the later singular fields
 * win, the attrs of both accumulate (what the aggregator's appended ingest
 * fields rely on). */
static void view_last_singular_wins(void **state) {
  (void)state;
  cairn_arena a;
  cairn_arena_init(&a, 0);
  cairn_buf b1 = {0}, b2 = {0}, cat = {0};
  for (int i = 0; i < 1000; i++) {
    Cairn__Record r1, r2;
    rnd_record(&a, &r1, (size_t)(rnd() % 5));
    rnd_record(&a, &r2, (size_t)(rnd() % 5));
    pack(&r1, &b1);
    pack(&r2, &b2);
    cairn_buf_reset(&cat);
    assert_int_equal(cairn_buf_append(&cat, b1.ptr, b1.len), CAIRN_OK);
    assert_int_equal(cairn_buf_append(&cat, b2.ptr, b2.len), CAIRN_OK);
    assert_true(check_diff(cat.ptr, cat.len, NULL));
    assert_true(pb_view_parse(cat.ptr, cat.len, &va));
    /* a non-empty string of r2 replaced r1's (proto3 omits empty ones) */
    if (r2.pod[0]) assert_true(va.pod.n == strlen(r2.pod) && !memcmp(va.pod.p, r2.pod, va.pod.n));
    else assert_true(va.pod.n == strlen(r1.pod));
    assert_int_equal(va.n_attrs, r1.n_attrs + r2.n_attrs);
    cairn_arena_reset(&a);
  }
  /* the aggregator's fields appended to a collector's record */
  Cairn__Record r;
  rnd_record(&a, &r, 3);
  pack(&r, &b1);
  Cairn__Record ing = r;
  ing.node = "node-from-cert";
  ing.identity = "spiffe://cluster/node-7";
  ing.instance_id = "0123456789abcdef0123456789abcdef";
  ing.ingest_ns = -5; /* negative: ten-byte varint */
  ing.seq = 1ull << 63;
  cairn_buf_reset(&cat);
  assert_int_equal(pb_record_pack_ingest(b1.ptr, b1.len, &ing, true, &cat), CAIRN_OK);
  assert_true(check_diff(cat.ptr, cat.len, NULL));
  assert_true(pb_view_parse(cat.ptr, cat.len, &va));
  assert_true(pb_view_from_record(&ing, &vb));
  assert_views_equal(&va, &vb);
  cairn_buf_fini(&b1);
  cairn_buf_fini(&b2);
  cairn_buf_fini(&cat);
  cairn_arena_fini(&a);
}

/* The forwarder's four fields of stored records: a collector's record with
 * the aggregator's fields appended (last occurrence wins), a NUL in another
 * string (key fields take it, the view does not), absent fields. */
static void key_fields_read_stored_records(void **state) {
  (void)state;
  cairn_arena a;
  cairn_arena_init(&a, 0);
  cairn_buf b = {0}, cat = {0};
  for (int i = 0; i < 500; i++) {
    Cairn__Record r;
    rnd_record(&a, &r, (size_t)(rnd() % 6));
    pack(&r, &b);
    Cairn__Record ing = r;
    ing.instance_id = i % 7 ? "0123456789abcdef0123456789abcdef" : "";
    ing.seq = rnd() >> (rnd() % 64);
    cairn_buf_reset(&cat);
    assert_int_equal(pb_record_pack_ingest(b.ptr, b.len, &ing, i % 2 == 0, &cat), CAIRN_OK);
    pb_key_fields kf;
    assert_true(pb_view_key_fields(cat.ptr, cat.len, &kf));
    assert_true(kf.seq == ing.seq);
    assert_int_equal(kf.source, (uint32_t)r.source);
    assert_true(kf.file_stream == r.file_stream);
    /* appended even when empty: it replaces the collector's */
    const char *inst = ing.instance_id;
    assert_int_equal(kf.instance_id.n, strlen(inst));
    assert_memory_equal(kf.instance_id.p ? (const char *)kf.instance_id.p : "", inst,
                        kf.instance_id.n);
    assert_true(check_diff(cat.ptr, cat.len, NULL));
    cairn_arena_reset(&a);
  }
  /* a NUL in the pod name: the view refuses, key fields read through it */
  static const uint8_t nul_pod[] = "\x10\x02" "\x3a\x03" "a\0b" "\x68\x07"
                                   "\x9a\x01\x02" "id" "\xa8\x01\x2a";
  pb_key_fields kf;
  assert_false(pb_view_parse(nul_pod, sizeof(nul_pod) - 1, &va));
  assert_true(pb_view_key_fields(nul_pod, sizeof(nul_pod) - 1, &kf));
  assert_true(kf.seq == 42 && kf.source == 2 && kf.file_stream == 7);
  assert_true(kf.instance_id.n == 2 && memcmp(kf.instance_id.p, "id", 2) == 0);
  check_diff(nul_pod, sizeof(nul_pod) - 1, NULL);
  /* nothing: all zero */
  memset(&kf, 0xff, sizeof(kf));
  assert_true(pb_view_key_fields((const uint8_t *)"", 0, &kf));
  assert_true(kf.seq == 0 && kf.source == 0 && kf.file_stream == 0 && kf.instance_id.n == 0);
  /* refused: *out untouched */
  memset(&kf, 0x5a, sizeof(kf));
  pb_key_fields before = kf;
  assert_false(pb_view_key_fields((const uint8_t *)"\x08\xff", 2, &kf));
  assert_memory_equal(&kf, &before, sizeof(kf));
  cairn_buf_fini(&b);
  cairn_buf_fini(&cat);
  cairn_arena_fini(&a);
}

/* Records built from every line of the corpus expectations: the line as the
 * message, its top-level fields as attrs (as the parsers' attrs are), source
 * and format by directory. */
typedef struct corpus_ctx {
  diff_count dc;
  cairn_buf b; /* the packed record */
} corpus_ctx;

static void corpus_line(const fx_line *l, void *ud) {
  corpus_ctx *c = ud;
  Cairn__Record r = CAIRN__RECORD__INIT;
  r.source = l->src;
  r.format = l->fmt;
  r.message = (ProtobufCBinaryData){l->len - 1, (uint8_t *)l->line};
  json_t *t = json_object_get(l->j, "time_ns");
  if (json_is_integer(t)) r.time_ns = json_integer_value(t);
  r.kube_namespace = "ns";
  r.pod = l->file;
  r.path = l->path;
  r.file_stream = 42;
  r.end_offset = l->index + 1;
  r.n_attrs = fx_json_attrs(l->a, l->j, NULL, &r.attrs);
  pack(&r, &c->b);
  assert_true(check_diff(c->b.ptr, c->b.len, &c->dc));
}

static void view_takes_corpus_records(void **state) {
  (void)state;
  corpus_ctx c = {0};
  size_t total = fx_corpus_each(corpus_line, &c);
  cairn_buf_fini(&c.b);
  if (total == 0) /* a missing corpus is a failure, never a silent skip */
    fail_msg("no corpus records read: set CAIRN_CORPUS to ../shared/corpus");
  assert_int_equal(c.dc.both_ok, total);
}

/* Inputs protobuf-c takes but the view must refuse (the caller then uses
 * protobuf-c), and inputs both refuse. */
static void view_refuses_what_it_cannot_read_exactly(void **state) {
  (void)state;
  static const struct {
    const char *what;
    const uint8_t *p;
    size_t n;
    bool pbc_ok; /* protobuf-c accepts it */
    bool keys_ok; /* pb_view_key_fields takes it (a NUL outside instance_id) */
  } cases[] = {
      {"NUL in a string", (const uint8_t *)"\x3a\x03" "a\0b", 5, true, true},
      {"NUL in an attr key", (const uint8_t *)"\x8a\x01\x05\x0a\x03" "k\0y", 8, true, true},
      {"NUL in instance_id", (const uint8_t *)"\x9a\x01\x03" "a\0b", 6, true, false},
      {"unknown field 22 (varint)", (const uint8_t *)"\xb0\x01\x01", 3, true, false},
      {"unknown field 99 (bytes)", (const uint8_t *)"\x9a\x06\x01x", 4, true, false},
      {"unknown field in an attr", (const uint8_t *)"\x8a\x01\x02\x18\x01", 5, true, false},
      {"tag 0 as a padded varint", (const uint8_t *)"\x80\x00\x01", 3, true, false},
      {"padded key of field 1", (const uint8_t *)"\x88\x00\x05", 3, true, false},
      {"group wire type", (const uint8_t *)"\x0b\x0c", 2, false, false},
      {"string field sent as varint", (const uint8_t *)"\x30\x01", 2, false, false},
      {"varint field sent as bytes", (const uint8_t *)"\x0a\x01x", 3, false, false},
      {"fixed64 on a varint field", (const uint8_t *)"\x09" "12345678", 9, false, false},
      {"truncated varint", (const uint8_t *)"\x08\xff", 2, false, false},
      {"11-byte varint", (const uint8_t *)"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12, false, false},
      {"length past the end", (const uint8_t *)"\x2a\x05" "ab", 4, false, false},
      {"attr length past the end", (const uint8_t *)"\x8a\x01\x04\x0a\x05" "ab", 7, false, false},
      {"attr key sent as varint", (const uint8_t *)"\x8a\x01\x02\x08\x01", 5, false, false},
      {"seq sent as bytes", (const uint8_t *)"\xaa\x01\x01x", 4, false, false},
      {"instance_id sent as varint", (const uint8_t *)"\x98\x01\x01", 3, false, false},
      {"bad wire type 7", (const uint8_t *)"\x0f", 1, false, false},
      {"key cut in half", (const uint8_t *)"\x8a", 1, false, false},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    cairn_arena ar;
    cairn_arena_init(&ar, 0);
    Cairn__Record *r = NULL;
    cairn_err e = pb_record_unpack(cases[i].p, cases[i].n, &ar, &r);
    if ((e == CAIRN_OK) != cases[i].pbc_ok) fail_msg("%s: protobuf-c says %s", cases[i].what, cairn_err_name(e));
    if (pb_view_parse(cases[i].p, cases[i].n, &va)) fail_msg("%s: the view took it", cases[i].what);
    pb_key_fields kf;
    if (pb_view_key_fields(cases[i].p, cases[i].n, &kf) != cases[i].keys_ok)
      fail_msg("%s: pb_view_key_fields says %d", cases[i].what, !cases[i].keys_ok);
    check_diff(cases[i].p, cases[i].n, NULL);
    cairn_arena_fini(&ar);
  }
  /* more attrs than a view holds: protobuf-c's path */
  cairn_buf b = {0};
  for (int i = 0; i <= PB_VIEW_ATTRS_MAX; i++)
    assert_int_equal(cairn_buf_append(&b, "\x8a\x01\x03\x0a\x01k", 6), CAIRN_OK);
  assert_false(pb_view_parse(b.ptr, b.len, &va));
  check_diff(b.ptr, b.len, NULL); /* key fields take it: protobuf-c agrees */
  pb_key_fields kf;
  assert_true(pb_view_key_fields(b.ptr, b.len, &kf));
  cairn_arena ar;
  cairn_arena_init(&ar, 0);
  Cairn__Record *r = NULL;
  assert_int_equal(pb_record_unpack(b.ptr, b.len, &ar, &r), CAIRN_OK);
  assert_int_equal(r->n_attrs, PB_VIEW_ATTRS_MAX + 1);
  assert_false(pb_view_from_record(r, &vb));
  assert_int_equal(vb.n_attrs, PB_VIEW_ATTRS_MAX);
  /* exactly the maximum is taken */
  b.len -= 6;
  assert_true(check_diff(b.ptr, b.len, NULL));
  cairn_arena_fini(&ar);
  cairn_buf_fini(&b);
}

/* Truncations, byte mutations, insertions and random bytes: never a crash,
 * never a view where protobuf-c fails, never a different value. */
static void view_agrees_on_mutated_bytes(void **state) {
  (void)state;
  cairn_arena a;
  cairn_arena_init(&a, 0);
  cairn_buf b = {0}, m = {0};
  diff_count dc = {0};
  for (int i = 0; i < 60; i++) {
    Cairn__Record r;
    rnd_record(&a, &r, (size_t)(rnd() % 4));
    r.message.len = r.message.len % 40; /* short records: more mutations per byte */
    pack(&r, &b);
    for (size_t cut = 0; cut < b.len; cut++) check_diff(b.ptr, cut, &dc);
    for (size_t k = 0; k < b.len; k++) {
      static const uint8_t vals[] = {0x00, 0x01, 0x02, 0x07, 0x08, 0x0a, 0x7f, 0x80, 0xff};
      for (size_t v = 0; v < sizeof(vals) + 2; v++) {
        cairn_buf_reset(&m);
        assert_int_equal(cairn_buf_append(&m, b.ptr, b.len), CAIRN_OK);
        m.ptr[k] = v < sizeof(vals) ? vals[v] : (uint8_t)rnd();
        check_diff(m.ptr, m.len, &dc);
        /* and with one byte inserted there */
        cairn_buf_reset(&m);
        assert_int_equal(cairn_buf_append(&m, b.ptr, k), CAIRN_OK);
        uint8_t ins = v < sizeof(vals) ? vals[v] : (uint8_t)rnd();
        assert_int_equal(cairn_buf_append(&m, &ins, 1), CAIRN_OK);
        assert_int_equal(cairn_buf_append(&m, b.ptr + k, b.len - k), CAIRN_OK);
        check_diff(m.ptr, m.len, &dc);
      }
    }
    cairn_arena_reset(&a);
  }
  uint8_t g[64];
  for (int i = 0; i < 200000; i++) {
    size_t n = rnd() % sizeof(g);
    for (size_t k = 0; k < n; k++) {
      /* mostly plausible keys and small lengths, some noise */
      uint64_t x = rnd();
      g[k] = (x & 3) == 0 ? (uint8_t)((1 + (x >> 8) % 22) << 3 | ((x >> 16) % 3 ? 2 : 0))
                          : (uint8_t)(x >> 24) % ((x & 4) ? 8 : 256);
    }
    check_diff(g, n, &dc);
  }
  /* every outcome occurred, so the checks above compared something */
  assert_true(dc.both_ok > 1000);
  assert_true(dc.both_failed > 1000);
  assert_true(dc.view_refused > 100);
  assert_true(dc.keys_only > 0); /* and the key fields' wider acceptance was exercised */
  cairn_buf_fini(&b);
  cairn_buf_fini(&m);
  cairn_arena_fini(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(view_takes_generated_records),
      cmocka_unit_test(view_last_singular_wins),
      cmocka_unit_test(key_fields_read_stored_records),
      cmocka_unit_test(view_takes_corpus_records),
      cmocka_unit_test(view_refuses_what_it_cannot_read_exactly),
      cmocka_unit_test(view_agrees_on_mutated_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
