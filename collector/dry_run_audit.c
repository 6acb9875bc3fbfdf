/* collector/dry_run_audit.c: the dry run's JSON rows for auditd events and
 * Kubernetes audit lines, in the field names of corpus/expected/audit/ and
 * corpus/expected/k8s-audit/. Audit rows come from the parsed event the
 * record points to (col_rec.audit); Kubernetes rows re-read the line. Bytes
 * that are not UTF-8 are shown with U+FFFD (the record itself keeps them). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "collector/internal_audit.h"
#include "common/timeparse.h"

/* Length of the well-formed UTF-8 sequence at s[0..n), 0 if there is none. */
static size_t utf8_seq(const uint8_t *s, size_t n) {
  size_t need = s[0] < 0x80 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
  if (need > n) return 0;
  return col__utf8_valid(s, need) ? need : 0;
}

/* A JSON string of the bytes (invalid sequences become U+FFFD). */
static json_t *jbytes(const uint8_t *s, size_t n) {
  if (col__utf8_valid(s, n)) return json_stringn((const char *)s, n);
  cairn_buf b;
  cairn_buf_init(&b);
  json_t *j = NULL;
  for (size_t i = 0; i < n;) {
    size_t k = utf8_seq(s + i, n - i);
    cairn_err e = k ? cairn_buf_append(&b, s + i, k) : cairn_buf_append(&b, "\xEF\xBF\xBD", 3);
    if (e) goto out_fini;
    i += k ? k : 1;
  }
  j = json_stringn(b.ptr ? (const char *)b.ptr : "", b.len);
out_fini:
  cairn_buf_fini(&b);
  return j;
}

static json_t *jstr(const col_audit_ev *ev, col_astr s) {
  if (!s.set || s.null) return json_null();
  return jbytes(col__astr_ptr(ev, s), s.len);
}

static json_t *jint(col_aint v) { return v.set ? json_integer(v.v) : json_null(); }

static void set(json_t *o, const char *key, json_t *v, bool *ok) {
  if (!v || json_object_set_new(o, key, v) != 0) *ok = false;
}

static void append(json_t *a, json_t *v, bool *ok) {
  if (!v || json_array_append_new(a, v) != 0) *ok = false;
}

/* Object of k=v pairs, first occurrence wins. */
static json_t *jkvs(const col_audit_ev *ev, const cairn_buf *list, bool *ok) {
  json_t *o = json_object();
  if (!o) return NULL;
  const col_akv *kv = (const col_akv *)list->ptr;
  for (size_t i = 0; i < list->len / sizeof(*kv); i++) {
    const char *k = (const char *)col__astr_ptr(ev, kv[i].k);
    if (json_object_get(o, k)) continue;
    set(o, k, jstr(ev, kv[i].v), ok);
  }
  return o;
}

/* proctitle with NULs as spaces, and its NUL-split argv. */
static void proctitle(json_t *o, const col_audit_ev *ev, bool *ok) {
  if (!ev->proctitle.set || ev->proctitle.null) {
    set(o, "proctitle", json_null(), ok);
    set(o, "proctitle_argv", json_null(), ok);
    return;
  }
  const uint8_t *s = col__astr_ptr(ev, ev->proctitle);
  size_t n = ev->proctitle.len;
  while (n && s[n - 1] == 0) n--;
  json_t *argv = json_array();
  uint8_t *flat = malloc(n ? n : 1);
  if (!argv || !flat) {
    json_decref(argv);
    free(flat);
    *ok = false;
    return;
  }
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n) flat[i] = s[i] ? s[i] : ' ';
    if (i < n && s[i]) continue;
    append(argv, jbytes(s + start, i - start), ok);
    start = i + 1;
  }
  set(o, "proctitle", jbytes(flat, n), ok);
  set(o, "proctitle_argv", argv, ok);
  free(flat);
}

json_t *col__audit_row_json(const col_rec *r) {
  const col_audit_ev *ev = r->audit;
  json_t *o = json_object();
  if (!o) return NULL;
  bool ok = true;
  set(o, "first_line", json_integer((json_int_t)ev->first_line), &ok);
  json_t *lines = json_array();
  const uint64_t *ln = (const uint64_t *)ev->lines.ptr;
  for (size_t i = 0; lines && i < ev->lines.len / sizeof(*ln); i++)
    append(lines, json_integer((json_int_t)ln[i]), &ok);
  set(o, "lines", lines, &ok);
  set(o, "serial", json_integer((json_int_t)ev->serial), &ok);
  set(o, "time", json_string(ev->stamp), &ok);
  set(o, "time_ms", json_integer(ev->time_ms), &ok);
  set(o, "time_ns", json_integer(ev->time_ns), &ok);
  set(o, "node", jstr(ev, ev->node), &ok);
  json_t *types = json_array();
  const uint8_t *t = ev->types.ptr;
  for (size_t i = 0, start = 0; types && i <= ev->types.len; i++) {
    if (i < ev->types.len && t[i] != ',') continue;
    append(types, json_stringn((const char *)t + start, i - start), &ok);
    start = i + 1;
  }
  set(o, "types", types, &ok);
  set(o, "record_count", json_integer(ev->nrec), &ok);
  set(o, "complete", json_boolean(col__audit_ev_complete(ev)), &ok);
  const col_astr *ks = (const col_astr *)ev->keys.ptr;
  size_t nkeys = ev->keys.len / sizeof(*ks);
  set(o, "key", nkeys ? jstr(ev, ks[0]) : json_null(), &ok);
  json_t *keys = json_array();
  for (size_t i = 0; keys && i < nkeys; i++) append(keys, jstr(ev, ks[i]), &ok);
  set(o, "keys", keys, &ok);
  set(o, "uid", jint(ev->uid), &ok);
  set(o, "auid", jint(ev->auid), &ok);
  set(o, "pid", jint(ev->pid), &ok);
  set(o, "arch", jstr(ev, ev->arch), &ok);
  set(o, "syscall", jint(ev->syscall), &ok);
  set(o, "success", ev->success < 0 ? json_null() : json_boolean(ev->success), &ok);
  set(o, "exit", jint(ev->exit), &ok);
  set(o, "comm", jstr(ev, ev->comm), &ok);
  set(o, "exe", jstr(ev, ev->exe), &ok);
  proctitle(o, ev, &ok);
  json_t *argv = json_null();
  if (ev->has_execve) {
    argv = json_array();
    const col_astr *av = (const col_astr *)ev->argv.ptr;
    for (size_t i = 0; argv && i < ev->argv.len / sizeof(*av); i++)
      append(argv, jbytes(ev->argvb.ptr + av[i].off, av[i].len), &ok);
  }
  set(o, "execve_argv", argv, &ok);
  set(o, "cwd", jstr(ev, ev->cwd), &ok);
  json_t *paths = json_array();
  const col_apath *ap = (const col_apath *)ev->paths.ptr;
  for (size_t i = 0; paths && i < ev->paths.len / sizeof(*ap); i++) {
    json_t *po = json_object();
    if (!po) {
      ok = false;
      break;
    }
    set(po, "item", ap[i].has_item ? json_integer(ap[i].item) : json_null(), &ok);
    set(po, "name", jstr(ev, ap[i].name), &ok);
    set(po, "nametype", jstr(ev, ap[i].nametype), &ok);
    append(paths, po, &ok);
  }
  set(o, "paths", paths, &ok);
  set(o, "user_msg", ev->user_msg_done ? jkvs(ev, &ev->user_msg, &ok) : json_null(), &ok);
  set(o, "sig", jint(ev->sig), &ok);
  set(o, "enriched", ev->enriched ? jkvs(ev, &ev->enr, &ok) : json_null(), &ok);
  if (!ok) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* ---- Kubernetes audit ---- */

static json_t *jget(json_t *root, const char *m1, const char *m2) {
  json_t *v = json_object_get(root, m1);
  if (m2) v = json_object_get(v, m2);
  return v ? json_incref(v) : json_null();
}

static json_t *jts(json_t *root, const char *key) {
  json_t *v = json_object_get(root, key);
  int64_t ns;
  if (!json_is_string(v) ||
      cairn_time_parse_rfc3339(json_string_value(v), json_string_length(v), &ns) != CAIRN_OK)
    return json_null();
  return json_integer(ns);
}

json_t *col__k8s_row_json(const col_rec *r) {
  json_t *o = json_object();
  if (!o) return NULL;
  bool ok = true;
  set(o, "line", json_integer((json_int_t)r->first_line), &ok);
  json_t *root = json_loadb((const char *)r->msg, r->msg_len, JSON_ALLOW_NUL, NULL);
  if (root) { /* NULL only for a truncated line: the row then says just that */
    set(o, "auditID", jget(root, "auditID", NULL), &ok);
    set(o, "stage", jget(root, "stage", NULL), &ok);
    set(o, "level", jget(root, "level", NULL), &ok);
    set(o, "verb", jget(root, "verb", NULL), &ok);
    set(o, "requestURI", jget(root, "requestURI", NULL), &ok);
    set(o, "user.username", jget(root, "user", "username"), &ok);
    set(o, "user.groups", jget(root, "user", "groups"), &ok);
    set(o, "impersonatedUser.username", jget(root, "impersonatedUser", "username"), &ok);
    json_t *ip = json_array_get(json_object_get(root, "sourceIPs"), 0);
    set(o, "sourceIP", ip ? json_incref(ip) : json_null(), &ok);
    set(o, "objectRef.resource", jget(root, "objectRef", "resource"), &ok);
    set(o, "objectRef.namespace", jget(root, "objectRef", "namespace"), &ok);
    set(o, "objectRef.name", jget(root, "objectRef", "name"), &ok);
    set(o, "objectRef.subresource", jget(root, "objectRef", "subresource"), &ok);
    set(o, "objectRef.apiGroup", jget(root, "objectRef", "apiGroup"), &ok);
    set(o, "responseStatus.code", jget(root, "responseStatus", "code"), &ok);
    set(o, "decision", jget(root, "annotations", "authorization.k8s.io/decision"), &ok);
    set(o, "requestReceivedTimestamp_ns", jts(root, "requestReceivedTimestamp"), &ok);
    set(o, "stageTimestamp_ns", jts(root, "stageTimestamp"), &ok);
    set(o, "has_requestObject", json_boolean(json_object_get(root, "requestObject")), &ok);
    set(o, "has_responseObject", json_boolean(json_object_get(root, "responseObject")), &ok);
    json_decref(root);
  }
  if (!ok) {
    json_decref(o);
    return NULL;
  }
  return o;
}
