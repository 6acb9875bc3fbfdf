/* collector/meta.c: Kubernetes and docker metadata from a log file's path.
 * Matching is on the trailing path components only (any prefix directory is
 * allowed), so the same code serves /var/log/..., test corpora and chroots.
 * A path that does not fit a layout exactly yields COL_PATH_UNKNOWN with all
 * fields empty: half-decoded metadata would mislabel records. */
#include <string.h>

#include "collector/parse.h"

#define CONTAINER_ID_LEN 64

static bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool all_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!is_hex(s[i])) return false;
  return true;
}

static bool all_digits(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

static bool ends_with(const char *s, size_t n, const char *suf) {
  size_t k = strlen(suf);
  return n >= k && memcmp(s + n - k, suf, k) == 0;
}

/* Copy s[0..n) into dst (capacity cap, NUL-terminated); false when empty or
 * too long. */
static bool put(char *dst, size_t cap, const char *s, size_t n) {
  if (n == 0 || n >= cap) return false;
  memcpy(dst, s, n);
  dst[n] = '\0';
  return true;
}

/* <64hex>-json.log */
static bool match_docker(const char *base, size_t blen, col_meta *m) {
  if (blen != CONTAINER_ID_LEN + 9 || !ends_with(base, blen, "-json.log")) return false;
  if (!all_hex(base, CONTAINER_ID_LEN)) return false;
  m->kind = COL_PATH_DOCKER;
  return put(m->container_id, sizeof(m->container_id), base, CONTAINER_ID_LEN);
}

/* <pod>_<namespace>_<container>-<64hex>.log; pod and namespace never hold
 * '_', the container name may hold '-', so the id is the last 64 hex. */
static bool match_containers(const char *base, size_t blen, col_meta *m) {
  if (blen < CONTAINER_ID_LEN + 1 + 4 + 5 || !ends_with(base, blen, ".log")) return false;
  const char *id = base + blen - 4 - CONTAINER_ID_LEN;
  if (id[-1] != '-' || !all_hex(id, CONTAINER_ID_LEN)) return false;
  size_t plen = (size_t)(id - 1 - base); /* "<pod>_<ns>_<container>" */
  const char *u1 = memchr(base, '_', plen);
  if (!u1) return false;
  const char *u2 = memchr(u1 + 1, '_', plen - (size_t)(u1 + 1 - base));
  if (!u2) return false;
  m->kind = COL_PATH_CONTAINERS;
  return put(m->pod, sizeof(m->pod), base, (size_t)(u1 - base)) &&
         put(m->kube_namespace, sizeof(m->kube_namespace), u1 + 1, (size_t)(u2 - u1 - 1)) &&
         put(m->container, sizeof(m->container), u2 + 1, plen - (size_t)(u2 + 1 - base)) &&
         put(m->container_id, sizeof(m->container_id), id, CONTAINER_ID_LEN);
}

/* <namespace>_<pod>_<uid>/<container>/<n>.log[.<YYYYMMDD-hhmmss>][.gz] */
static bool match_pods(const char *path, const char *base, size_t blen, col_meta *m) {
  if (ends_with(base, blen, ".gz")) {
    m->compressed = true;
    blen -= 3;
  }
  /* kubelet rotation suffix: ".YYYYMMDD-hhmmss" (15 chars) */
  if (blen > 16 && base[blen - 16] == '.' && base[blen - 7] == '-' &&
      all_digits(base + blen - 15, 8) && all_digits(base + blen - 6, 6)) {
    if (!put(m->rotated_suffix, sizeof(m->rotated_suffix), base + blen - 15, 15)) return false;
    blen -= 16;
  }
  if (!ends_with(base, blen, ".log")) return false;
  size_t dlen = blen - 4;
  if (dlen == 0 || dlen > 9 || !all_digits(base, dlen)) return false;
  int restart = 0;
  for (size_t i = 0; i < dlen; i++) restart = restart * 10 + (base[i] - '0');

  /* container directory, then the pod directory before it */
  if (base - path < 2) return false;
  const char *cend = base - 1; /* the '/' before base */
  const char *cstart = cend;
  while (cstart > path && cstart[-1] != '/') cstart--;
  if (cstart == path || cstart == cend) return false;
  const char *pend = cstart - 1;
  const char *pstart = pend;
  while (pstart > path && pstart[-1] != '/') pstart--;
  size_t pdlen = (size_t)(pend - pstart);
  const char *u1 = memchr(pstart, '_', pdlen);
  const char *u2 = NULL;
  for (const char *q = pend; q > pstart; q--)
    if (q[-1] == '_') {
      u2 = q - 1;
      break;
    }
  if (!u1 || u2 <= u1) return false;
  const char *uid = u2 + 1;
  size_t uid_len = (size_t)(pend - uid);
  for (size_t i = 0; i < uid_len; i++)
    if (!is_hex(uid[i]) && uid[i] != '-') return false;

  m->kind = COL_PATH_PODS;
  m->restart_count = restart;
  return put(m->kube_namespace, sizeof(m->kube_namespace), pstart, (size_t)(u1 - pstart)) &&
         put(m->pod, sizeof(m->pod), u1 + 1, (size_t)(u2 - u1 - 1)) &&
         put(m->pod_uid, sizeof(m->pod_uid), uid, uid_len) &&
         put(m->container, sizeof(m->container), cstart, (size_t)(cend - cstart));
}

static void meta_clear(col_meta *m) {
  memset(m, 0, sizeof(*m));
  m->kind = COL_PATH_UNKNOWN;
  m->restart_count = -1;
}

void col_meta_from_path(const char *path, col_meta *out) {
  meta_clear(out);
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t blen = strlen(base);
  if (match_docker(base, blen, out)) return;
  meta_clear(out);
  if (match_containers(base, blen, out)) return;
  meta_clear(out);
  if (match_pods(path, base, blen, out)) return;
  meta_clear(out);
}
