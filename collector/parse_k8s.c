/* collector/parse_k8s.c: the Kubernetes API server audit log front-end
 * (audit.k8s.io/v1 Event, one JSON object per line, one record per line).
 * Decoding uses jansson; the record's message is the line as written and the
 * indexable fields go into attrs. A line that is not a JSON object or has no
 * string auditID is unparsed. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "collector/internal_parse.h"
#include "common/timeparse.h"

#define K8S_MAX_ATTRS 64

typedef struct k8s_attrs {
  col_attr v[K8S_MAX_ATTRS];
  size_t n;
  char code[24];
} k8s_attrs;

static void add(k8s_attrs *a, const char *key, const char *s, size_t n) {
  if (a->n < K8S_MAX_ATTRS) a->v[a->n++] = (col_attr){key, (const uint8_t *)s, n};
}

/* A string member at path a.b (b may be NULL) as an attr. */
static void add_str(k8s_attrs *a, const char *key, json_t *root, const char *m1, const char *m2) {
  json_t *v = json_object_get(root, m1);
  if (m2) v = json_object_get(v, m2);
  if (json_is_string(v)) add(a, key, json_string_value(v), json_string_length(v));
}

static bool ts(json_t *root, const char *key, int64_t *out) {
  json_t *v = json_object_get(root, key);
  return json_is_string(v) &&
         cairn_time_parse_rfc3339(json_string_value(v), json_string_length(v), out) == CAIRN_OK;
}

cairn_err col__k8s_line(col_parser *p, const uint8_t *line, size_t len, uint64_t off,
                        uint64_t line_no, col_rec_cb cb, void *ud) {
  uint64_t end_off = off + len + 1;
  json_error_t jerr;
  json_t *root = json_loadb((const char *)line, len, JSON_ALLOW_NUL, &jerr);
  if (!json_is_object(root) || !json_is_string(json_object_get(root, "auditID"))) {
    json_decref(root); /* NULL is fine */
    col__emit_unparsed(p, line, len, line_no, end_off, cb, ud);
    return CAIRN_OK;
  }
  int64_t t = 0;
  if (!ts(root, "requestReceivedTimestamp", &t) && !ts(root, "stageTimestamp", &t)) t = 0;

  k8s_attrs a = {.n = 0};
  add_str(&a, "auditID", root, "auditID", NULL);
  add_str(&a, "stage", root, "stage", NULL);
  add_str(&a, "level", root, "level", NULL);
  add_str(&a, "verb", root, "verb", NULL);
  add_str(&a, "request_uri", root, "requestURI", NULL);
  add_str(&a, "user", root, "user", "username");
  json_t *groups = json_object_get(json_object_get(root, "user"), "groups");
  size_t gi;
  json_t *g;
  json_array_foreach(groups, gi, g) {
    if (json_is_string(g)) add(&a, "group", json_string_value(g), json_string_length(g));
  }
  add_str(&a, "impersonated_user", root, "impersonatedUser", "username");
  json_t *ip = json_array_get(json_object_get(root, "sourceIPs"), 0);
  if (json_is_string(ip)) add(&a, "source_ip", json_string_value(ip), json_string_length(ip));
  add_str(&a, "resource", root, "objectRef", "resource");
  add_str(&a, "subresource", root, "objectRef", "subresource");
  add_str(&a, "namespace", root, "objectRef", "namespace");
  add_str(&a, "name", root, "objectRef", "name");
  add_str(&a, "api_group", root, "objectRef", "apiGroup");
  json_t *code = json_object_get(json_object_get(root, "responseStatus"), "code");
  if (json_is_integer(code)) {
    int k = snprintf(a.code, sizeof(a.code), "%lld", (long long)json_integer_value(code));
    add(&a, "code", a.code, (size_t)k);
  }
  add_str(&a, "decision", root, "annotations", "authorization.k8s.io/decision");

  col_rec r = {
      .time_ns = t,
      .stream = CAIRN__LOG_STREAM__LOG_STREAM_UNKNOWN,
      .flags = 0,
      .msg = line,
      .msg_len = len,
      .full_len = len,
      .fragments = 1,
      .first_line = line_no,
      .last_line = line_no,
      .end_offset = end_off,
      .attrs_json = NULL,
      .source = p->source,
      .attrs = a.n ? a.v : NULL,
      .n_attrs = a.n,
      .audit = NULL,
  };
  col__rec_finish_emit(p, &r, cb, ud);
  json_decref(root);
  return CAIRN_OK;
}
