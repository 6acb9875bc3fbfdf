/* tests/proto/json_test.c: pb_record_json and pb_view_json.
 *  - Numbers and times: the renderer formats integers and UTC times by hand
 *    (no snprintf or gmtime_r on the Kafka forwarder's hot path); compared
 *    with cairn_time_format and printf over fixed edge cases and a million
 *    seeded random instants.
 *  - One output from every path: for generated records (every field, attrs,
 *    invalid UTF-8, control bytes, quotes, long strings, the aggregator's
 *    fields appended twice) and records built from ../shared/corpus, the
 *    JSON of pb_view_parse(bytes) + pb_view_json, of pb_record_unpack(bytes)
 *    + pb_record_json, and of ref_record_json (the renderer as it was before
 *    views: check UTF-8, then escape, with common/text.h) are the same bytes.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/text.h"
#include "common/timeparse.h"
#include "proto/json.h"
#include "proto/proto.h"
#include "tests/proto/rec_fixture.h"

/* The JSON of a record with only time_ns, seq and ingest_ns set must be
 * exactly what printf and cairn_time_format produce. */
static void check_one(int64_t t, uint64_t seq, int64_t ingest) {
  Cairn__Record r = CAIRN__RECORD__INIT;
  r.time_ns = t;
  r.seq = seq;
  r.ingest_ns = ingest;
  cairn_buf o;
  cairn_buf_init(&o);
  assert_int_equal(pb_record_json(&r, &o), CAIRN_OK);
  assert_int_equal(cairn_buf_append(&o, "", 1), CAIRN_OK); /* NUL for strstr */
  o.len--;
  char want[512], tb[64], ib[64];
  cairn_time_format(t, tb, sizeof(tb));
  cairn_time_format(ingest, ib, sizeof(ib));
  int n = 0;
  n += snprintf(want + n, sizeof(want) - (size_t)n, "{");
  if (seq) n += snprintf(want + n, sizeof(want) - (size_t)n, "\"seq\":%" PRIu64 ",", seq);
  n += snprintf(want + n, sizeof(want) - (size_t)n,
                "\"time\":\"%s\",\"time_ns\":%" PRId64 ",\"source\":\"unspecified\","
                "\"format\":\"unspecified\",\"stream\":\"unspecified\"", tb, t);
  (void)n;
  /* compare what this test owns: the prefix up to "source" (names come
   * from proto/names.c) and the ingest_time tail */
  const char *got = (const char *)o.ptr;
  char *src = strstr(want, ",\"source\"");
  assert_non_null(src);
  size_t head = (size_t)(src - want);
  if (o.len < head || memcmp(got, want, head) != 0)
    fail_msg("t=%" PRId64 " seq=%" PRIu64 ": got %.*s want %.*s", t, seq, (int)o.len, got,
             (int)head, want);
  if (ingest) {
    char tail[96];
    snprintf(tail, sizeof(tail), "\"ingest_time\":\"%s\"}", ib);
    size_t tl = strlen(tail);
    if (o.len < tl || memcmp(got + o.len - tl, tail, tl) != 0)
      fail_msg("ingest=%" PRId64 ": got %.*s want ...%s", ingest, (int)o.len, got, tail);
  } else {
    assert_null(strstr(got, "ingest_time"));
  }
  cairn_buf_fini(&o);
}

static void edge_cases(void **state) {
  (void)state;
  static const int64_t ts[] = {
      0, 1, -1, 999999999, 1000000000, -1000000000, -1000000001, 86399999999999LL,
      86400000000000LL, 951782400000000000LL /* 2000-02-29 */, 951868800000000000LL,
      1709164800123456789LL /* 2024-02-29 */, 4102444800000000000LL /* 2100-01-01 */,
      -62135596800000000LL /* 0001-01-01 */, INT64_MAX, 253402300799999999LL /* 9999-12-31 */,
      INT64_MIN + 1, -2208988800000000000LL /* 1900-01-01 */, 1764288000000000000LL};
  for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
    check_one(ts[i], 0, 0);
    check_one(ts[i], UINT64_MAX, ts[i]);
    check_one(ts[i], 1, -(ts[i] / 2) + 7);
  }
}

static void random_instants(void **state) {
  (void)state;
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (int i = 0; i < 1000000; i++) {
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    uint64_t r = x * 2685821657736338717ULL;
    int64_t t;
    switch (i % 4) {
      case 0: t = (int64_t)r; break;                                   /* anything */
      case 1: t = (int64_t)(r % 4102444800000000000ULL); break;        /* 1970..2100 */
      case 2: t = -(int64_t)(r % 2208988800000000000ULL); break;       /* 1900..1970 */
      default: t = 1764288000000000000LL + (int64_t)(r % 86400000000000ULL); break; /* one day */
    }
    check_one(t, r >> (i % 64), i % 3 ? t / 2 + (int64_t)(r % 1000000000) : 0);
  }
}

/* ---- the renderer before views, as the reference ---- */

static cairn_err ref_key(cairn_buf *o, bool *first, const char *k) {
  cairn_err e = cairn_buf_append(o, *first ? "\"" : ",\"", *first ? 1 : 2);
  *first = false;
  if (!e) e = cairn_buf_append_str(o, k);
  if (!e) e = cairn_buf_append(o, "\":", 2);
  return e;
}

static cairn_err ref_str(cairn_buf *o, bool *first, const char *k, const char *v) {
  if (!v || !*v) return CAIRN_OK;
  cairn_err e = ref_key(o, first, k);
  size_t n = strlen(v);
  if (!e && cairn_utf8_valid((const uint8_t *)v, n)) return cairn_json_str(o, (const uint8_t *)v, n);
  if (!e) e = cairn_json_str(o, (const uint8_t *)"", 0);
  return e;
}

static cairn_err ref_bytes(cairn_buf *o, bool *first, const char *k, const char *kb64,
                           const uint8_t *p, size_t n) {
  cairn_err e;
  if (cairn_utf8_valid(p, n)) {
    e = ref_key(o, first, k);
    if (!e) e = cairn_json_str(o, p, n);
    return e;
  }
  e = ref_key(o, first, kb64);
  if (!e) e = cairn_buf_append(o, "\"", 1);
  if (!e) e = cairn_base64(o, p, n);
  if (!e) e = cairn_buf_append(o, "\"", 1);
  return e;
}

static cairn_err ref_record_json(const Cairn__Record *r, cairn_buf *o) {
  bool first = true;
  cairn_err e = cairn_buf_append(o, "{", 1);
  char tbuf[64];
  if (!e && r->seq) {
    e = ref_key(o, &first, "seq");
    if (!e) e = cairn_buf_printf(o, "%" PRIu64, r->seq);
  }
  if (!e) {
    cairn_time_format(r->time_ns, tbuf, sizeof(tbuf));
    e = ref_str(o, &first, "time", tbuf);
  }
  if (!e) e = ref_key(o, &first, "time_ns");
  if (!e) e = cairn_buf_printf(o, "%" PRId64, r->time_ns);
  if (!e) e = ref_str(o, &first, "source", pb_source_name(r->source));
  if (!e) e = ref_str(o, &first, "format", pb_format_name(r->format));
  if (!e) e = ref_str(o, &first, "stream", pb_stream_name(r->stream));
  if (!e) e = ref_str(o, &first, "node", r->node);
  if (!e) e = ref_str(o, &first, "namespace", r->kube_namespace);
  if (!e) e = ref_str(o, &first, "pod", r->pod);
  if (!e) e = ref_str(o, &first, "container", r->container);
  if (!e) e = ref_str(o, &first, "container_id", r->container_id);
  if (!e) e = ref_str(o, &first, "pod_uid", r->pod_uid);
  if (!e) e = ref_str(o, &first, "path", r->path);
  if (!e) e = ref_bytes(o, &first, "message", "message_b64", r->message.data, r->message.len);
  if (!e && r->flags) {
    static const struct {
      uint32_t bit;
      const char *name;
    } fl[] = {{CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED, "unparsed"},
              {CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED, "truncated"},
              {CAIRN__RECORD_FLAG__RECORD_FLAG_INVALID_UTF8, "invalid_utf8"}};
    e = ref_key(o, &first, "flags");
    if (!e) e = cairn_buf_append(o, "[", 1);
    bool f1 = true;
    for (size_t i = 0; !e && i < sizeof(fl) / sizeof(fl[0]); i++) {
      if (!(r->flags & fl[i].bit)) continue;
      if (!f1) e = cairn_buf_append(o, ",", 1);
      f1 = false;
      if (!e) e = cairn_json_str(o, (const uint8_t *)fl[i].name, strlen(fl[i].name));
    }
    if (!e) e = cairn_buf_append(o, "]", 1);
  }
  if (!e && r->n_attrs) {
    e = ref_key(o, &first, "attrs");
    if (!e) e = cairn_buf_append(o, "{", 1);
    bool f1 = true;
    for (size_t i = 0; !e && i < r->n_attrs; i++) {
      const Cairn__Attr *a = r->attrs[i];
      const char *k = a->key ? a->key : "";
      e = ref_bytes(o, &f1, k, k, a->value.data, a->value.len);
    }
    if (!e) e = cairn_buf_append(o, "}", 1);
  }
  if (!e) e = ref_str(o, &first, "identity", r->identity);
  if (!e) e = ref_str(o, &first, "instance_id", r->instance_id);
  if (!e && r->ingest_ns) {
    cairn_time_format(r->ingest_ns, tbuf, sizeof(tbuf));
    e = ref_str(o, &first, "ingest_time", tbuf);
  }
  if (!e) e = cairn_buf_append(o, "}", 1);
  return e;
}

/* ---- one output from every path ---- */

typedef struct paths {
  size_t records, by_view; /* compared; of those, taken by pb_view_parse */
  pb_rec_view view;        /* large: one per test */
} paths;

static void must_equal(const char *what, const cairn_buf *got, const cairn_buf *want) {
  if (got->len == want->len && memcmp(got->ptr, want->ptr, got->len) == 0) return;
  size_t i = 0;
  while (i < got->len && i < want->len && got->ptr[i] == want->ptr[i]) i++;
  size_t from = i > 60 ? i - 60 : 0;
  fail_msg("%s differs at byte %zu (lengths %zu, %zu):\n got  ...%.*s\n want ...%.*s", what, i,
           got->len, want->len, (int)((got->len < i + 60 ? got->len : i + 60) - from),
           (const char *)got->ptr + from, (int)((want->len < i + 60 ? want->len : i + 60) - from),
           (const char *)want->ptr + from);
}

/* The stored bytes p[0..n) render the same way on every path; each output
 * is appended after a prefix, which must stay. */
static void check_bytes(paths *ps, const uint8_t *p, size_t n) {
  cairn_arena a;
  cairn_arena_init(&a, 0);
  Cairn__Record *r = NULL;
  assert_int_equal(pb_record_unpack(p, n, &a, &r), CAIRN_OK);
  cairn_buf ref = {0}, rec = {0}, view = {0};
  assert_int_equal(ref_record_json(r, &ref), CAIRN_OK);
  assert_int_equal(cairn_buf_append(&rec, "x\n", 2), CAIRN_OK);
  assert_int_equal(pb_record_json(r, &rec), CAIRN_OK);
  assert_memory_equal(rec.ptr, "x\n", 2);
  cairn_buf_consume(&rec, 2);
  must_equal("pb_record_json against the reference", &rec, &ref);
  if (pb_view_parse(p, n, &ps->view)) {
    assert_int_equal(cairn_buf_append(&view, "{}\n", 3), CAIRN_OK);
    assert_int_equal(pb_view_json(&ps->view, &view), CAIRN_OK);
    assert_memory_equal(view.ptr, "{}\n", 3);
    cairn_buf_consume(&view, 3);
    must_equal("pb_view_json of the stored bytes against the reference", &view, &ref);
    ps->by_view++;
  }
  ps->records++;
  cairn_buf_fini(&ref);
  cairn_buf_fini(&rec);
  cairn_buf_fini(&view);
  cairn_arena_fini(&a);
}

/* Pack r as the collector does, then as the aggregator stores it: the
 * ingest fields appended (twice when twice: a record stored, read back and
 * stored again carries both sets; the last wins). */
static void check_record(paths *ps, const Cairn__Record *r, int appends) {
  cairn_buf b = {0}, c = {0};
  assert_int_equal(pb_record_pack(r, &b), CAIRN_OK);
  check_bytes(ps, b.ptr, b.len);
  for (int i = 0; i < appends; i++) {
    Cairn__Record ing = *r;
    ing.identity = i ? "CN=node-2,O=cairn \"B\"" : "CN=node-1";
    ing.instance_id = i ? "agg-b" : "agg-a/\xc3\xa9";
    ing.node = i ? "node-2" : "node-1";
    ing.ingest_ns = r->time_ns + 1000 * (i + 1);
    ing.seq = r->seq + (uint64_t)i + 1;
    cairn_buf_reset(&c);
    assert_int_equal(pb_record_pack_ingest(b.ptr, b.len, &ing, i == 0, &c), CAIRN_OK);
    check_bytes(ps, c.ptr, c.len);
    cairn_buf_reset(&b);
    assert_int_equal(cairn_buf_append(&b, c.ptr, c.len), CAIRN_OK);
  }
  cairn_buf_fini(&b);
  cairn_buf_fini(&c);
}

static uint64_t rnd(uint64_t *x) {
  *x ^= *x >> 12, *x ^= *x << 25, *x ^= *x >> 27;
  return *x * 2685821657736338717ULL;
}

/* n bytes of text of a random kind into p (no NUL when str: protobuf-c
 * packs strings by strlen). Returns n. */
static size_t gen_text(uint64_t *x, uint8_t *p, size_t n, bool str) {
  static const char *const pieces[] = {
      "GET /api/v1/pods?limit=500 HTTP/1.1", "\"quoted\"", "back\\slash", "tab\there",
      "new\nline", "\r\n", "\x01\x02\x1f", "\x7f", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
      "\xed\x9f\xbf" /* U+D7FF */, "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf" /* U+10FFFF */,
      "{\"level\":\"info\",\"msg\":\"ok\"}", "        ", "0123456789abcdef",
      /* not UTF-8: */ "\xff", "\xc0\xaf", "\xe0\x80\x80", "\xed\xa0\x80" /* surrogate */,
      "\xf4\x90\x80\x80" /* > U+10FFFF */, "\xc3", "\xe2\x82", "\x80", "\xf5\x80\x80\x80"};
  size_t np = sizeof(pieces) / sizeof(pieces[0]);
  unsigned kind = (unsigned)(rnd(x) % 8);
  size_t i = 0;
  while (i < n) {
    uint64_t r = rnd(x);
    if (kind == 0) { /* plain ASCII */
      p[i++] = (uint8_t)(' ' + r % 95);
      continue;
    }
    if (kind == 1) { /* any byte */
      uint8_t c = (uint8_t)r;
      if (str && c == 0) c = 1;
      p[i++] = c;
      continue;
    }
    if (kind == 2 && r % 4) { /* valid text only */
      const char *s = pieces[r % 17];
      size_t l = strlen(s);
      if (i + l > n) l = n - i;
      memcpy(p + i, s, l); /* a cut piece may be invalid: fine */
      i += l;
      continue;
    }
    if (r % 3 == 0) {
      const char *s = pieces[(r >> 8) % np];
      size_t l = strlen(s);
      if (i + l > n) l = n - i;
      memcpy(p + i, s, l);
      i += l;
    } else {
      p[i++] = (uint8_t)('a' + r % 26);
    }
  }
  if (!str && n && rnd(x) % 16 == 0) p[rnd(x) % n] = 0; /* a NUL inside message bytes */
  return n;
}

/* A length: mostly short, sometimes around the 8-byte steps, sometimes long. */
static size_t gen_len(uint64_t *x) {
  uint64_t r = rnd(x);
  switch (r % 6) {
    case 0: return 0;
    case 1: return (size_t)((r >> 8) % 20);
    case 2: return (size_t)((r >> 8) % 100);
    case 3: return (size_t)((r >> 8) % 800);
    case 4: return 8 * (size_t)((r >> 8) % 8) + (size_t)((r >> 16) % 3);
    default: return (size_t)((r >> 8) % 9000);
  }
}

/* A NUL-terminated string from the arena (of a random kind), or NULL / "". */
static char *gen_str(uint64_t *x, cairn_arena *a) {
  size_t n = gen_len(x);
  if (n == 0) return rnd(x) % 2 ? NULL : "";
  char *s = cairn_arena_alloc(a, n + 1);
  assert_non_null(s);
  gen_text(x, (uint8_t *)s, n, true);
  s[n] = 0;
  return s;
}

static void generated_records_render_the_same_on_every_path(void **state) {
  (void)state;
  paths *ps = calloc(1, sizeof(*ps));
  assert_non_null(ps);
  uint64_t x = 0x2545F4914F6CDD1DULL;
  cairn_arena a;
  cairn_arena_init(&a, 0);
  Cairn__Attr *attrs = calloc(PB_VIEW_ATTRS_MAX, sizeof(*attrs));
  Cairn__Attr **ap = calloc(PB_VIEW_ATTRS_MAX, sizeof(*ap));
  assert_non_null(attrs);
  assert_non_null(ap);
  for (int i = 0; i < 6000; i++) {
    Cairn__Record r = CAIRN__RECORD__INIT;
    r.time_ns = (int64_t)rnd(&x);
    if (i % 3) r.time_ns = 1764288000000000000LL + (int64_t)(rnd(&x) % 86400000000000ULL);
    r.source = (Cairn__Source)(rnd(&x) % 6);
    r.stream = (Cairn__LogStream)(rnd(&x) % 4);
    r.format = (Cairn__Format)(rnd(&x) % 6);
    r.flags = (uint32_t)(rnd(&x) % 4 ? 0 : rnd(&x) % 16);
    if (i % 97 == 0) r.flags = UINT32_MAX;
    r.kube_namespace = gen_str(&x, &a);
    r.pod = gen_str(&x, &a);
    r.container = gen_str(&x, &a);
    r.container_id = gen_str(&x, &a);
    r.pod_uid = gen_str(&x, &a);
    r.node = gen_str(&x, &a);
    r.path = gen_str(&x, &a);
    size_t ml = gen_len(&x);
    uint8_t *m = cairn_arena_alloc(&a, ml + 1);
    gen_text(&x, m, ml, false);
    r.message = (ProtobufCBinaryData){ml, m};
    r.file_stream = rnd(&x);
    r.end_offset = rnd(&x) % 100000;
    r.fragments = (uint32_t)(rnd(&x) % 3);
    size_t na = rnd(&x) % 3 ? (size_t)(rnd(&x) % 8) : (size_t)(rnd(&x) % (PB_VIEW_ATTRS_MAX + 1));
    for (size_t k = 0; k < na; k++) {
      cairn__attr__init(&attrs[k]);
      char *key = gen_str(&x, &a);
      attrs[k].key = key ? key : "";
      size_t vl = gen_len(&x);
      uint8_t *v = cairn_arena_alloc(&a, vl + 1);
      gen_text(&x, v, vl, false);
      attrs[k].value = (ProtobufCBinaryData){vl, v};
      ap[k] = &attrs[k];
    }
    r.n_attrs = na;
    r.attrs = ap;
    if (i % 5 == 0) { /* fields only the aggregator sets, as a stored record has them */
      r.identity = gen_str(&x, &a);
      r.instance_id = gen_str(&x, &a);
      r.ingest_ns = (int64_t)rnd(&x);
      r.seq = rnd(&x) >> (rnd(&x) % 64);
    }
    check_record(ps, &r, i % 3);
    cairn_arena_reset(&a);
  }
  /* every generated record is one the view takes (no NUL in strings, known
   * fields only, at most PB_VIEW_ATTRS_MAX attrs) */
  assert_true(ps->records > 10000);
  assert_int_equal(ps->by_view, ps->records);
  free(attrs);
  free(ap);
  cairn_arena_fini(&a);
  free(ps);
}

/* A record with more attrs than a view holds renders through pb_record_json
 * all the same (its attrs listed apart), as before. */
static void record_with_more_attrs_than_a_view_holds(void **state) {
  (void)state;
  paths *ps = calloc(1, sizeof(*ps));
  assert_non_null(ps);
  enum { NA = PB_VIEW_ATTRS_MAX * 2 + 3 };
  Cairn__Attr attrs[NA];
  Cairn__Attr *ap[NA];
  char keys[NA][16];
  for (int i = 0; i < NA; i++) {
    cairn__attr__init(&attrs[i]);
    snprintf(keys[i], sizeof(keys[i]), "k%d", i);
    attrs[i].key = keys[i];
    attrs[i].value = (ProtobufCBinaryData){i % 2 ? 3 : 2, (uint8_t *)(i % 2 ? "v\"\n" : "\xff\x01")};
    ap[i] = &attrs[i];
  }
  Cairn__Record r = CAIRN__RECORD__INIT;
  r.time_ns = 1764288000123456789LL;
  r.message = (ProtobufCBinaryData){5, (uint8_t *)"hello"};
  r.n_attrs = NA;
  r.attrs = ap;
  cairn_buf b = {0};
  assert_int_equal(pb_record_pack(&r, &b), CAIRN_OK);
  assert_false(pb_view_parse(b.ptr, b.len, &ps->view));
  check_bytes(ps, b.ptr, b.len);
  assert_int_equal(ps->records, 1);
  assert_int_equal(ps->by_view, 0);
  cairn_buf_fini(&b);
  free(ps);
}

static const char *jstr(json_t *j, const char *k) {
  const char *s = json_string_value(json_object_get(j, k));
  return s && !memchr(s, 0, strlen(s)) ? s : NULL;
}

/* Records like the parsers make from the corpus expectations (message,
 * namespace, pod, container, container_id, stream, time; the other fields
 * as attrs), and one per line with the expectation line as its message. */
static void corpus_line(const fx_line *l, void *ud) {
  paths *ps = ud;
  json_t *j = l->j;
  Cairn__Record r = CAIRN__RECORD__INIT;
  r.source = l->src;
  r.format = l->fmt;
  json_t *t = json_object_get(j, "time");
  if (json_is_integer(t)) r.time_ns = json_integer_value(t);
  json_t *m = json_object_get(j, "message");
  if (json_is_string(m))
    r.message = (ProtobufCBinaryData){json_string_length(m), (uint8_t *)json_string_value(m)};
  else
    r.message = (ProtobufCBinaryData){l->len - 1, (uint8_t *)l->line};
  const char *st = jstr(j, "stream");
  r.stream = st && !strcmp(st, "stderr") ? CAIRN__LOG_STREAM__LOG_STREAM_STDERR
                                         : CAIRN__LOG_STREAM__LOG_STREAM_STDOUT;
  r.kube_namespace = (char *)jstr(j, "namespace");
  r.pod = (char *)jstr(j, "pod");
  r.container = (char *)jstr(j, "container");
  r.container_id = (char *)jstr(j, "container_id");
  r.path = l->path;
  r.node = "node-1";
  r.file_stream = 7;
  r.end_offset = l->index + 1;
  json_t *ok = json_object_get(j, "message_utf8_valid");
  if (json_is_false(ok)) r.flags = CAIRN__RECORD_FLAG__RECORD_FLAG_INVALID_UTF8;
  r.n_attrs = fx_json_attrs(l->a, j, "message", &r.attrs);
  r.seq = l->index + 1;
  check_record(ps, &r, 1);
  r.message = (ProtobufCBinaryData){l->len, (uint8_t *)l->line}; /* with its newline */
  r.n_attrs = 0;
  check_record(ps, &r, 2);
}

static void corpus_records_render_the_same_on_every_path(void **state) {
  (void)state;
  paths *ps = calloc(1, sizeof(*ps));
  assert_non_null(ps);
  size_t lines = fx_corpus_each(corpus_line, ps);
  if (lines == 0) {
    free(ps);
    /* the corpus is part of the test input (CI has ../shared beside the
     * clone): a missing corpus is a failure, never a silent skip */
    fail_msg("no corpus records read: set CAIRN_CORPUS to ../shared/corpus");
  }
  assert_int_equal(ps->records, lines * 5); /* 2 + 3 stored forms per line */
  assert_int_equal(ps->by_view, ps->records);
  free(ps);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(edge_cases),
      cmocka_unit_test(random_instants),
      cmocka_unit_test(generated_records_render_the_same_on_every_path),
      cmocka_unit_test(record_with_more_attrs_than_a_view_holds),
      cmocka_unit_test(corpus_records_render_the_same_on_every_path),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
