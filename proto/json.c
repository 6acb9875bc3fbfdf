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

cairn_err pb_record_json(const Cairn__Record *r, cairn_buf *o) {
  bool first = true;
  cairn_err e = cairn_buf_append(o, "{", 1);
  char tbuf[48];
  if (!e && r->seq) {
    e = key(o, &first, "seq");
    if (!e) e = cairn_buf_printf(o, "%" PRIu64, r->seq);
  }
  if (!e) {
    cairn_time_format(r->time_ns, tbuf, sizeof(tbuf));
    e = str_field(o, &first, "time", tbuf);
  }
  if (!e) e = key(o, &first, "time_ns");
  if (!e) e = cairn_buf_printf(o, "%" PRId64, r->time_ns);
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
    cairn_time_format(r->ingest_ns, tbuf, sizeof(tbuf));
    e = str_field(o, &first, "ingest_time", tbuf);
  }
  if (!e) e = cairn_buf_append(o, "}", 1);
  return e;
}
