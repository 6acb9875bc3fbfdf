/* proto/json.c: one JSON object per stored record. The same shape goes to
 * Kafka (the retention copy) and to `cairn-query --output json`, so an auditor
 * sees one format everywhere. Hand-built: no JSON library in proto, and no
 * intermediate tree per record.
 *
 * One renderer, pb_view_json, works on a pb_rec_view (proto/recview.h): the
 * Kafka forwarder views the stored bytes in place, pb_record_json views a
 * Cairn__Record. It reserves an upper bound of the object once and writes
 * through a pointer; strings are UTF-8 checked and JSON-escaped in the same
 * pass by cairn_json_str_put (common/text.h), and rewound when they turn out
 * not to be UTF-8 (then "" for a string field, base64 for a bytes field,
 * exactly what checking first and escaping after produced).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"
#include "common/timeparse.h"
#include "proto/json.h"
#include "proto/proto.h"

/* Decimal digits of v, right-aligned in buf[0..24); returns the first. */
static char *dec_u64(char *end, uint64_t v) {
  do {
    *--end = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return end;
}

static void put2(char *p, unsigned v) {
  p[0] = (char)('0' + v / 10 % 10);
  p[1] = (char)('0' + v % 10);
}

/* ns as cairn_time_format writes it (YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ, UTC)
 * without gmtime_r and snprintf: this runs twice per record on the Kafka
 * forwarder's hot path. Years outside 0..9999 go to cairn_time_format. */
static size_t time_fmt(int64_t ns, char *out, size_t cap) {
  int64_t secs = ns / 1000000000LL, frac = ns % 1000000000LL;
  if (frac < 0) {
    frac += 1000000000LL;
    secs -= 1;
  }
  int64_t days = secs / 86400, sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    days -= 1;
  }
  /* civil date from days since 1970-01-01 (proleptic Gregorian, 400-year eras) */
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  int64_t y = yoe + era * 400 + (m <= 2);
  if (y < 0 || y > 9999 || cap < 31) return cairn_time_format(ns, out, cap);
  put2(out, (unsigned)(y / 100));
  put2(out + 2, (unsigned)(y % 100));
  out[4] = '-';
  put2(out + 5, (unsigned)m);
  out[7] = '-';
  put2(out + 8, (unsigned)d);
  out[10] = 'T';
  put2(out + 11, (unsigned)(sod / 3600));
  out[13] = ':';
  put2(out + 14, (unsigned)(sod / 60 % 60));
  out[16] = ':';
  put2(out + 17, (unsigned)(sod % 60));
  out[19] = '.';
  for (int i = 28; i >= 20; i--) {
    out[i] = (char)('0' + frac % 10);
    frac /= 10;
  }
  out[29] = 'Z';
  out[30] = '\0';
  return 30;
}


/* ---- writing into reserved space ----
 * Every writer below takes the output position and returns the new one; the
 * caller reserved json_bound() bytes first, so nothing checks capacity. */

/* '"' k '":' after a ',' unless this is the first member (*first). The
 * key is copied as is (attr keys are too, as they always were). */
static inline uint8_t *put_key(uint8_t *o, bool *first, const void *k, size_t kl) {
  if (!*first) *o++ = ',';
  *first = false;
  *o++ = '"';
  if (kl) memcpy(o, k, kl); /* k may be NULL when empty */
  o += kl;
  *o++ = '"';
  *o++ = ':';
  return o;
}

#define KEY_LIT(s) (s), (sizeof(s) - 1) /* a literal key and its length */

/* A string member: absent when empty, "" when not UTF-8. */
static uint8_t *put_str_field(uint8_t *o, bool *first, const char *k, size_t kl, const uint8_t *p,
                              size_t n) {
  if (!n) return o;
  o = put_key(o, first, k, kl);
  uint8_t *e = cairn_json_str_put(o, p, n);
  if (e) return e;
  o[0] = '"';
  o[1] = '"';
  return o + 2;
}

/* A bytes member: k as a string when UTF-8, else kb64 with base64. */
static uint8_t *put_bytes_field(uint8_t *o, bool *first, const void *k, size_t kl,
                                const void *kb64, size_t kbl, const uint8_t *p, size_t n) {
  bool was_first = *first;
  uint8_t *e = cairn_json_str_put(put_key(o, first, k, kl), p, n);
  if (e) return e;
  *first = was_first;
  o = put_key(o, first, kb64, kbl);
  *o++ = '"';
  o = cairn_base64_put(o, p, n);
  *o++ = '"';
  return o;
}

static uint8_t *put_u64(uint8_t *o, uint64_t v) {
  char b[24];
  char *p = dec_u64(b + sizeof(b), v);
  size_t n = (size_t)(b + sizeof(b) - p);
  memcpy(o, p, n);
  return o + n;
}

static uint8_t *put_i64(uint8_t *o, int64_t v) {
  if (v < 0) *o++ = '-';
  return put_u64(o, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
}

#define TIME_MAX 48u /* time_fmt's buffer */

static uint8_t *put_time_field(uint8_t *o, bool *first, const char *k, size_t kl, int64_t ns) {
  char t[TIME_MAX];
  size_t n = time_fmt(ns, t, sizeof(t));
  return put_str_field(o, first, k, kl, (const uint8_t *)t, n);
}

/* Room a string member of n bytes may take: escaping (6n + 2) or base64
 * (4 * ceil(n / 3) + 2, never more) plus the longest key, punctuation and
 * cairn_json_str_put's 8 bytes of scratch (cairn_json_str_room). */
static inline size_t str_room(size_t n) { return 6 * n + 2 + 40; }

/* The members of a record without strings of its own (seq, time, time_ns,
 * names, flags, braces, ingest_time), rounded up. */
#define FIXED_ROOM (2 * str_room(TIME_MAX) + 3 * str_room(32) + 256)

/* An upper bound of the output of view_json(v, attrs, n_attrs); SIZE_MAX
 * if it overflows. */
static size_t json_bound(const pb_rec_view *v, const pb_attr_view *attrs, size_t n_attrs) {
  const pb_str *s[] = {&v->node, &v->kube_namespace, &v->pod, &v->container,
                       &v->container_id, &v->pod_uid, &v->path, &v->message,
                       &v->identity, &v->instance_id};
  size_t bytes = 0, fields = sizeof(s) / sizeof(s[0]) + n_attrs;
  for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) bytes += s[i]->n;
  for (size_t i = 0; i < n_attrs; i++) /* the key twice: a failed UTF-8 value rewinds to it */
    bytes += attrs[i].value.n + 2 * attrs[i].key.n;
  if (fields > SIZE_MAX / 64 || bytes > (SIZE_MAX - FIXED_ROOM - 64 * fields) / 6) return SIZE_MAX;
  return FIXED_ROOM + 6 * bytes + 64 * fields; /* 64 >= str_room(0) + 2: the rewind case */
}

/* A name from proto/names.c as a string member ("" names are omitted). */
static uint8_t *put_name_field(uint8_t *o, bool *first, const char *k, size_t kl, const char *nm) {
  size_t n = strlen(nm); /* a table entry of a few bytes */
  assert(n <= 32);
  return put_str_field(o, first, k, kl, (const uint8_t *)nm, n);
}

/* pb_view_json with the attrs taken from attrs[0..n_attrs) instead of v's
 * (pb_record_json of a record with more than PB_VIEW_ATTRS_MAX attrs). */
static cairn_err view_json(const pb_rec_view *v, const pb_attr_view *attrs, size_t n_attrs,
                           cairn_buf *out) {
  size_t bound = json_bound(v, attrs, n_attrs);
  if (bound == SIZE_MAX) return CAIRN_E_NOMEM;
  cairn_err e = cairn_buf_reserve(out, bound);
  if (e) return e;
  uint8_t *o0 = out->ptr + out->len, *o = o0;
  bool first = true;
  *o++ = '{';
  if (v->seq) {
    o = put_key(o, &first, KEY_LIT("seq"));
    o = put_u64(o, v->seq);
  }
  o = put_time_field(o, &first, KEY_LIT("time"), v->time_ns);
  o = put_key(o, &first, KEY_LIT("time_ns"));
  o = put_i64(o, v->time_ns);
  o = put_name_field(o, &first, KEY_LIT("source"), pb_source_name((Cairn__Source)v->source));
  o = put_name_field(o, &first, KEY_LIT("format"), pb_format_name((Cairn__Format)v->format));
  o = put_name_field(o, &first, KEY_LIT("stream"), pb_stream_name((Cairn__LogStream)v->stream));
  o = put_str_field(o, &first, KEY_LIT("node"), v->node.p, v->node.n);
  o = put_str_field(o, &first, KEY_LIT("namespace"), v->kube_namespace.p, v->kube_namespace.n);
  o = put_str_field(o, &first, KEY_LIT("pod"), v->pod.p, v->pod.n);
  o = put_str_field(o, &first, KEY_LIT("container"), v->container.p, v->container.n);
  o = put_str_field(o, &first, KEY_LIT("container_id"), v->container_id.p, v->container_id.n);
  o = put_str_field(o, &first, KEY_LIT("pod_uid"), v->pod_uid.p, v->pod_uid.n);
  o = put_str_field(o, &first, KEY_LIT("path"), v->path.p, v->path.n);
  o = put_bytes_field(o, &first, KEY_LIT("message"), KEY_LIT("message_b64"), v->message.p,
                      v->message.n);
  if (v->flags) {
    static const struct {
      uint32_t bit;
      const char *lit; /* the JSON string, quoted */
      size_t n;
    } fl[] = {{CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED, "\"unparsed\"", 10},
              {CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED, "\"truncated\"", 11},
              {CAIRN__RECORD_FLAG__RECORD_FLAG_INVALID_UTF8, "\"invalid_utf8\"", 14}};
    o = put_key(o, &first, KEY_LIT("flags"));
    *o++ = '[';
    bool f1 = true;
    for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++) {
      if (!(v->flags & fl[i].bit)) continue;
      if (!f1) *o++ = ',';
      f1 = false;
      memcpy(o, fl[i].lit, fl[i].n);
      o += fl[i].n;
    }
    *o++ = ']';
  }
  if (n_attrs) {
    o = put_key(o, &first, KEY_LIT("attrs"));
    *o++ = '{';
    bool f1 = true;
    for (size_t i = 0; i < n_attrs; i++) {
      const pb_attr_view *a = &attrs[i];
      o = put_bytes_field(o, &f1, a->key.p, a->key.n, a->key.p, a->key.n, a->value.p, a->value.n);
    }
    *o++ = '}';
  }
  o = put_str_field(o, &first, KEY_LIT("identity"), v->identity.p, v->identity.n);
  o = put_str_field(o, &first, KEY_LIT("instance_id"), v->instance_id.p, v->instance_id.n);
  if (v->ingest_ns) o = put_time_field(o, &first, KEY_LIT("ingest_time"), v->ingest_ns);
  *o++ = '}';
  assert((size_t)(o - o0) <= bound);
  out->len += (size_t)(o - o0);
  return CAIRN_OK;
}

cairn_err pb_view_json(const pb_rec_view *v, cairn_buf *out) {
  return view_json(v, v->attrs, v->n_attrs, out);
}

cairn_err pb_record_json(const Cairn__Record *r, cairn_buf *out) {
  pb_rec_view v; /* ~4.5 KiB of stack */
  if (r->n_attrs <= PB_VIEW_ATTRS_MAX) {
    if (!pb_view_from_record(r, &v)) return CAIRN_E_INVAL; /* cannot happen: attrs fit */
    return view_json(&v, v.attrs, v.n_attrs, out);
  }
  /* more attrs than a view holds: view the rest, list the attrs on the heap */
  Cairn__Record head = *r;
  head.n_attrs = 0;
  head.attrs = NULL;
  if (!pb_view_from_record(&head, &v)) return CAIRN_E_INVAL;
  pb_attr_view *attrs = malloc(r->n_attrs * sizeof(*attrs));
  if (!attrs) return CAIRN_E_NOMEM;
  for (size_t i = 0; i < r->n_attrs; i++) {
    const Cairn__Attr *a = r->attrs[i];
    attrs[i].key = (pb_str){(const uint8_t *)a->key, a->key ? strlen(a->key) : 0};
    attrs[i].value = (pb_str){a->value.data, a->value.len};
  }
  cairn_err e = view_json(&v, attrs, r->n_attrs, out);
  free(attrs);
  return e;
}
