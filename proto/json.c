/* proto/json.c: one JSON object per stored record. The same shape goes to
 * Kafka (the retention copy) and to `cairn-query --output json`, so an auditor
 * sees one format everywhere. Hand-built with common/text.h: no JSON library
 * in proto, and no intermediate tree per record. */
#include <inttypes.h>
#include <string.h>

#include "common/text.h"
#include "common/timeparse.h"
#include "proto/proto.h"

static cairn_err key(cairn_buf *o, bool *first, const char *k) {
  cairn_err e = cairn_buf_append(o, *first ? "\"" : ",\"", *first ? 1 : 2);
  *first = false;
  if (!e) e = cairn_buf_append_str(o, k);
  if (!e) e = cairn_buf_append(o, "\":", 2);
  return e;
}

static cairn_err str_field(cairn_buf *o, bool *first, const char *k, const char *v) {
  if (!v || !*v) return CAIRN_OK;
  cairn_err e = key(o, first, k);
  size_t n = strlen(v);
  if (!e && cairn_utf8_valid((const uint8_t *)v, n)) return cairn_json_str(o, (const uint8_t *)v, n);
  if (!e) e = cairn_json_str(o, (const uint8_t *)"", 0); /* protobuf strings are UTF-8 checked */
  return e;
}

static cairn_err bytes_field(cairn_buf *o, bool *first, const char *k, const char *kb64,
                             const uint8_t *p, size_t n) {
  cairn_err e;
  if (cairn_utf8_valid(p, n)) {
    e = key(o, first, k);
    if (!e) e = cairn_json_str(o, p, n);
    return e;
  }
  e = key(o, first, kb64);
  if (!e) e = cairn_buf_append(o, "\"", 1);
  if (!e) e = cairn_base64(o, p, n);
  if (!e) e = cairn_buf_append(o, "\"", 1);
  return e;
}

/* Decimal digits of v, right-aligned in buf[0..24); returns the first. */
static char *dec_u64(char *end, uint64_t v) {
  do {
    *--end = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return end;
}

static cairn_err u64_val(cairn_buf *o, uint64_t v) {
  char b[24];
  char *p = dec_u64(b + sizeof(b), v);
  return cairn_buf_append(o, p, (size_t)(b + sizeof(b) - p));
}

static cairn_err i64_val(cairn_buf *o, int64_t v) {
  char b[24];
  char *p = dec_u64(b + sizeof(b), v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
  if (v < 0) *--p = '-';
  return cairn_buf_append(o, p, (size_t)(b + sizeof(b) - p));
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

cairn_err pb_record_json(const Cairn__Record *r, cairn_buf *o) {
  bool first = true;
  cairn_err e = cairn_buf_append(o, "{", 1);
  char tbuf[48];
  if (!e && r->seq) {
    e = key(o, &first, "seq");
    if (!e) e = u64_val(o, r->seq);
  }
  if (!e) {
    time_fmt(r->time_ns, tbuf, sizeof(tbuf));
    e = str_field(o, &first, "time", tbuf);
  }
  if (!e) e = key(o, &first, "time_ns");
  if (!e) e = i64_val(o, r->time_ns);
  if (!e) e = str_field(o, &first, "source", pb_source_name(r->source));
  if (!e) e = str_field(o, &first, "format", pb_format_name(r->format));
  if (!e) e = str_field(o, &first, "stream", pb_stream_name(r->stream));
  if (!e) e = str_field(o, &first, "node", r->node);
  if (!e) e = str_field(o, &first, "namespace", r->kube_namespace);
  if (!e) e = str_field(o, &first, "pod", r->pod);
  if (!e) e = str_field(o, &first, "container", r->container);
  if (!e) e = str_field(o, &first, "container_id", r->container_id);
  if (!e) e = str_field(o, &first, "pod_uid", r->pod_uid);
  if (!e) e = str_field(o, &first, "path", r->path);
  if (!e) e = bytes_field(o, &first, "message", "message_b64", r->message.data, r->message.len);
  if (!e && r->flags) {
    static const struct {
      uint32_t bit;
      const char *name;
    } fl[] = {{CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED, "unparsed"},
              {CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED, "truncated"},
              {CAIRN__RECORD_FLAG__RECORD_FLAG_INVALID_UTF8, "invalid_utf8"}};
    e = key(o, &first, "flags");
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
    e = key(o, &first, "attrs");
    if (!e) e = cairn_buf_append(o, "{", 1);
    bool f1 = true;
    for (size_t i = 0; !e && i < r->n_attrs; i++) {
      const Cairn__Attr *a = r->attrs[i];
      const char *k = a->key ? a->key : "";
      e = bytes_field(o, &f1, k, k, a->value.data, a->value.len);
    }
    if (!e) e = cairn_buf_append(o, "}", 1);
  }
  if (!e) e = str_field(o, &first, "identity", r->identity);
  if (!e) e = str_field(o, &first, "instance_id", r->instance_id);
  if (!e && r->ingest_ns) {
    time_fmt(r->ingest_ns, tbuf, sizeof(tbuf));
    e = str_field(o, &first, "ingest_time", tbuf);
  }
  if (!e) e = cairn_buf_append(o, "}", 1);
  return e;
}
