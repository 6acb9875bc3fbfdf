/* storage/index.c: byte layout of idx and dedupe keys, and the table of
 * filterable fields (sto_field: idx kind, attr key, source). One place decides
 * how a value becomes a key (truncation included) and which values a record
 * has, so writer, query planner and record check can never disagree: a
 * truncated value only widens the index range, and the query re-checks the
 * full field on every record.
 */
#include <string.h>

#include "storage/internal.h"

#define AUDIT CAIRN__SOURCE__SOURCE_AUDIT
#define K8S CAIRN__SOURCE__SOURCE_K8S_AUDIT

const sto__field_def sto__fields[STO_FIELD_COUNT_] = {
    [STO_FIELD_NAMESPACE] = {STO__IDX_NAMESPACE, 0, NULL, false, "namespace"},
    [STO_FIELD_POD] = {STO__IDX_POD, 0, NULL, false, "pod"},
    [STO_FIELD_CONTAINER] = {STO__IDX_CONTAINER, 0, NULL, false, "container"},
    [STO_FIELD_NODE] = {STO__IDX_NODE, 0, NULL, false, "node"},
    [STO_FIELD_AUDIT_KEY] = {STO__IDX_AUDIT_KEY, AUDIT, "key", false, "key"},
    [STO_FIELD_AUID] = {STO__IDX_AUID, AUDIT, "auid", false, "auid"},
    [STO_FIELD_UID] = {STO__IDX_UID, AUDIT, "uid", false, "uid"},
    [STO_FIELD_SYSCALL] = {STO__IDX_SYSCALL, AUDIT, "syscall", false, "syscall"},
    [STO_FIELD_TYPE] = {STO__IDX_TYPE, AUDIT, "types", true, "type"},
    [STO_FIELD_EXE] = {STO__IDX_EXE, AUDIT, "exe", false, "exe"},
    [STO_FIELD_SUCCESS] = {STO__IDX_SUCCESS, AUDIT, "success", false, "success"},
    [STO_FIELD_K8S_USER] = {STO__IDX_K8S_USER, K8S, "user", false, "user"},
    [STO_FIELD_VERB] = {STO__IDX_VERB, K8S, "verb", false, "verb"},
    [STO_FIELD_RESOURCE] = {STO__IDX_RESOURCE, K8S, "resource", false, "resource"},
    [STO_FIELD_SUBRESOURCE] = {STO__IDX_SUBRESOURCE, K8S, "subresource", false, "subresource"},
    [STO_FIELD_CODE] = {STO__IDX_CODE, K8S, "code", false, "code"},
};

const char *sto_field_name(sto_field f) {
  return (unsigned)f < STO_FIELD_COUNT_ ? sto__fields[f].name : "";
}

/* The i-th element of the comma-separated list p[0..n). */
static bool list_elem(const uint8_t *p, size_t n, size_t i, const uint8_t **v, size_t *vn) {
  size_t start = 0;
  for (size_t k = 0; k <= n; k++) {
    if (k < n && p[k] != ',') continue;
    if (k > start) {
      if (i == 0) {
        *v = p + start;
        *vn = k - start;
        return true;
      }
      i--;
    }
    start = k + 1;
  }
  return false;
}

/* The i-th attr of x: key and value bytes. The key of a decoded record is
 * its C string (as far as its first NUL); a view's keys never hold a NUL. */
static inline void ref_attr(const sto__rec_ref *x, size_t i, pb_str *key, pb_str *val) {
  if (x->v) {
    *key = x->v->attrs[i].key;
    *val = x->v->attrs[i].value;
    return;
  }
  const Cairn__Attr *a = x->r->attrs[i];
  *key = (pb_str){NULL, 0};
  *val = (pb_str){NULL, 0};
  if (!a) return;
  if (a->key) *key = (pb_str){(const uint8_t *)a->key, strlen(a->key)};
  *val = (pb_str){a->value.data, a->value.len};
}

bool sto__ref_field_value(const sto__rec_ref *x, sto_field f, size_t i, const uint8_t **v,
                          size_t *n) {
  if ((unsigned)f >= STO_FIELD_COUNT_) return false;
  const sto__field_def *d = &sto__fields[f];
  if (!d->attr) {
    pb_str s;
    if (x->v) {
      s = f == STO_FIELD_NAMESPACE   ? x->v->kube_namespace
          : f == STO_FIELD_POD       ? x->v->pod
          : f == STO_FIELD_CONTAINER ? x->v->container
                                     : x->v->node;
    } else {
      const char *c = f == STO_FIELD_NAMESPACE   ? x->r->kube_namespace
                      : f == STO_FIELD_POD       ? x->r->pod
                      : f == STO_FIELD_CONTAINER ? x->r->container
                                                 : x->r->node;
      s = (pb_str){(const uint8_t *)c, c ? strlen(c) : 0};
    }
    if (i != 0 || s.n == 0) return false;
    *v = s.p;
    *n = s.n;
    return true;
  }
  int source = x->v ? (int)x->v->source : (int)x->r->source;
  if (source != d->source) return false;
  size_t alen = strlen(d->attr), na = x->v ? x->v->n_attrs : x->r->n_attrs;
  for (size_t k = 0; k < na; k++) {
    pb_str key, val;
    ref_attr(x, k, &key, &val);
    if (key.n != alen || memcmp(key.p, d->attr, alen) != 0) continue;
    if (d->list) return list_elem(val.p, val.n, i, v, n);
    if (val.n == 0) continue;
    if (i == 0) {
      *v = val.p;
      *n = val.n;
      return true;
    }
    i--;
  }
  return false;
}

bool sto_field_value(const Cairn__Record *r, sto_field f, size_t i, const uint8_t **v, size_t *n) {
  if (!r) return false;
  sto__rec_ref x = {r, NULL};
  return sto__ref_field_value(&x, f, i, v, n);
}

size_t sto__idx_key_bytes(uint8_t *key, uint8_t kind, const uint8_t *value, size_t n) {
  if (n > STO_INDEX_VALUE_MAX) n = STO_INDEX_VALUE_MAX;
  key[0] = kind;
  if (n) memcpy(key + 1, value, n);
  return 1 + n;
}

size_t sto__idx_key_str(uint8_t *key, uint8_t kind, const char *value) {
  size_t n = value ? strlen(value) : 0;
  if (n > STO_INDEX_VALUE_MAX) n = STO_INDEX_VALUE_MAX;
  key[0] = kind;
  if (n) memcpy(key + 1, value, n);
  return 1 + n;
}

size_t sto__idx_key_source(uint8_t *key, uint32_t source) {
  key[0] = STO__IDX_SOURCE;
  key[1] = (uint8_t)(source >> 24);
  key[2] = (uint8_t)(source >> 16);
  key[3] = (uint8_t)(source >> 8);
  key[4] = (uint8_t)source;
  return 5;
}

void sto__idx_data(uint8_t *data, int64_t time_ns, uint64_t seq) {
  sto__be64_put(data, sto__time_bias(time_ns));
  sto__be64_put(data + 8, seq);
}

size_t sto__dedupe_key(uint8_t *key, const char *instance_id, uint64_t stream) {
  size_t n = instance_id ? strlen(instance_id) : 0;
  if (n > STO__INSTANCE_MAX) return 0;
  if (n) memcpy(key, instance_id, n);
  key[n] = 0;
  sto__be64_put(key + n + 1, stream);
  return n + 9;
}
