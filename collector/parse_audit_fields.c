/* collector/parse_audit_fields.c: field extraction for auditd records: the
 * key=value tokenizer, the hex rule for untrusted strings, and which record
 * supplies which event field (the SYSCALL record wins; otherwise the first
 * record carrying a field). Values are decoded once, into the event's vals
 * buffer; nothing here allocates per field beyond that buffer's growth. */
#include <string.h>

#include "collector/internal_audit.h"

/* Values of one event stop being stored beyond this many bytes (a pathological
 * EXECVE must not grow memory without bound; the raw lines are still kept up
 * to max_record). */
#define COL_AUDIT_MAX_VALS ((size_t)8 << 20)

/* ---- record type classes ---- */

static bool has_prefix(const uint8_t *t, size_t n, const char *pre) {
  size_t pn = strlen(pre);
  return n >= pn && memcmp(t, pre, pn) == 0;
}

static bool is_word(const uint8_t *t, size_t n, const char *w) {
  return strlen(w) == n && memcmp(t, w, n) == 0;
}

/* Userspace message types (libaudit 1100-1299, 2100-2999): every such record
 * is an event of its own. */
static bool is_userspace(const uint8_t *t, size_t n) {
  static const char *const pre[] = {"USER_",     "CRED_", "DAEMON_",  "RESP_",   "ANOM_LOGIN_",
                                    "GRP_",      "ACCT_", "SERVICE_", "SYSTEM_", "ANOM_RBAC_",
                                    "ANOM_MAX_", "VIRT_", "CRYPTO_",  "ROLE_",   "LABEL_"};
  static const char *const words[] = {"ADD_USER",       "DEL_USER",         "ADD_GROUP",
                                      "DEL_GROUP",      "CHGRP_ID",         "TRUSTED_APP",
                                      "USYS_CONFIG",    "SOFTWARE_UPDATE",  "ANOM_ACCESS_FS",
                                      "ANOM_EXEC",      "ANOM_MK_EXEC",     "ANOM_ADD_ACCT",
                                      "ANOM_DEL_ACCT",  "ANOM_MOD_ACCT",    "ANOM_ROOT_TRANS",
                                      "ANOM_AMTU_FAIL", "ANOM_CRYPTO_FAIL", "TEST"};
  for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++)
    if (has_prefix(t, n, pre[i])) return true;
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    if (is_word(t, n, words[i])) return true;
  return false;
}

col_atype col__audit_type_class(const uint8_t *t, size_t n) {
  switch (n) {
    case 3:
      if (memcmp(t, "EOE", 3) == 0) return COL_AT_EOE;
      if (memcmp(t, "CWD", 3) == 0) return COL_AT_CWD;
      break;
    case 4:
      if (memcmp(t, "PATH", 4) == 0) return COL_AT_PATH;
      break;
    case 6:
      if (memcmp(t, "EXECVE", 6) == 0) return COL_AT_EXECVE;
      break;
    case 7:
      if (memcmp(t, "SYSCALL", 7) == 0) return COL_AT_SYSCALL;
      break;
    case 9:
      if (memcmp(t, "PROCTITLE", 9) == 0) return COL_AT_PROCTITLE;
      break;
    default:
      break;
  }
  return is_userspace(t, n) ? COL_AT_USER : COL_AT_OTHER;
}

/* ---- events ---- */

#define EV_BUFS(ev)                                                                              \
  {                                                                                              \
    &(ev)->raw, &(ev)->lines, &(ev)->types, &(ev)->vals, &(ev)->keys, &(ev)->paths, &(ev)->argv, \
        &(ev)->argvb, &(ev)->user_msg, &(ev)->enr                                                \
  }
#define EV_NBUFS 10

void col__audit_ev_reset(col_audit_ev *ev) {
  cairn_buf *bufs[EV_NBUFS] = EV_BUFS(ev);
  cairn_buf saved[EV_NBUFS];
  for (int i = 0; i < EV_NBUFS; i++) {
    if (bufs[i]->cap > COL_ACC_KEEP_CAP) cairn_buf_fini(bufs[i]);
    saved[i] = *bufs[i];
    saved[i].len = 0;
  }
  memset(ev, 0, sizeof(*ev));
  cairn_buf *nb[EV_NBUFS] = EV_BUFS(ev);
  for (int i = 0; i < EV_NBUFS; i++) *nb[i] = saved[i];
  ev->success = -1;
  ev->argv_last = -1;
}

void col__audit_ev_fini(col_audit_ev *ev) {
  cairn_buf *bufs[EV_NBUFS] = EV_BUFS(ev);
  for (int i = 0; i < EV_NBUFS; i++) cairn_buf_fini(bufs[i]);
}

/* ---- values ---- */

static int hexval(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

static bool all_hex(const uint8_t *v, size_t n) {
  if (n == 0 || n % 2) return false;
  for (size_t i = 0; i < n; i++)
    if (hexval(v[i]) < 0) return false;
  return true;
}

/* Strip one pair of surrounding double quotes (a missing closing quote is
 * tolerated: the record was cut). */
static void unquote(const uint8_t **v, size_t *n) {
  if (*n >= 1 && (*v)[0] == '"') {
    (*v)++;
    (*n)--;
    if (*n >= 1 && (*v)[*n - 1] == '"') (*n)--;
  }
}

cairn_err col__audit_decode(const uint8_t *v, size_t n, cairn_buf *out, bool *is_null) {
  *is_null = false;
  if (n >= 1 && v[0] == '"') {
    unquote(&v, &n);
    return cairn_buf_append(out, v, n);
  }
  if (n == 6 && memcmp(v, "(null)", 6) == 0) {
    *is_null = true;
    return CAIRN_OK;
  }
  if (!all_hex(v, n)) return cairn_buf_append(out, v, n);
  cairn_err e = cairn_buf_reserve(out, n / 2);
  if (e) return e;
  uint8_t *d = out->ptr + out->len;
  for (size_t i = 0; i < n; i += 2) *d++ = (uint8_t)(hexval(v[i]) << 4 | hexval(v[i + 1]));
  out->len += n / 2;
  return CAIRN_OK;
}

/* Decode (or, raw, copy without quotes) v into ev->vals as *s. A value that
 * would exceed COL_AUDIT_MAX_VALS is left unset. */
static cairn_err store(col_audit_ev *ev, const uint8_t *v, size_t n, bool decode, col_astr *s) {
  if (ev->vals.len + n + 1 > COL_AUDIT_MAX_VALS) return CAIRN_OK;
  size_t start = ev->vals.len;
  bool null = false;
  cairn_err e;
  if (decode) {
    e = col__audit_decode(v, n, &ev->vals, &null);
  } else {
    unquote(&v, &n);
    e = cairn_buf_append(&ev->vals, v, n);
  }
  if (e) return e;
  s->off = (uint32_t)start;
  s->len = (uint32_t)(ev->vals.len - start);
  s->set = true;
  s->null = null;
  return CAIRN_OK;
}

/* Store a string field: a SYSCALL value replaces one from another record, a
 * later non-SYSCALL value never replaces. */
static cairn_err set_str(col_audit_ev *ev, col_astr *slot, const uint8_t *v, size_t n, bool decode,
                         bool syscall) {
  if (syscall ? slot->from_syscall : slot->set) return CAIRN_OK;
  col_astr s = {0};
  cairn_err e = store(ev, v, n, decode, &s);
  if (e || !s.set) return e;
  s.from_syscall = syscall;
  *slot = s;
  return CAIRN_OK;
}

static bool parse_i64(const uint8_t *v, size_t n, int64_t *out) {
  bool neg = false;
  size_t i = 0;
  if (n && v[0] == '-') {
    neg = true;
    i = 1;
  }
  if (i == n || n - i > 19) return false;
  int64_t x = 0;
  for (; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') return false;
    x = x * 10 + (v[i] - '0');
  }
  *out = neg ? -x : x;
  return true;
}

static void set_int(col_aint *slot, const uint8_t *v, size_t n, bool syscall) {
  if (syscall ? slot->from_syscall : slot->set) return;
  int64_t x;
  if (!parse_i64(v, n, &x)) return;
  slot->v = x;
  slot->set = true;
  slot->from_syscall = syscall;
}

static void take_res(col_audit_ev *ev, const uint8_t *v, size_t n) {
  if (ev->res_seen) return;
  ev->res_seen = true;
  if (ev->success_from_syscall) return;
  unquote(&v, &n);
  if (is_word(v, n, "success") || is_word(v, n, "1"))
    ev->success = 1;
  else if (is_word(v, n, "failed") || is_word(v, n, "0"))
    ev->success = 0;
}

/* Append one element of type T (size sz) to an array buffer; NULL on NOMEM. */
static void *push(cairn_buf *b, size_t sz) {
  if (cairn_buf_reserve(b, sz) != CAIRN_OK) return NULL;
  void *p = b->ptr + b->len;
  memset(p, 0, sz);
  b->len += sz;
  return p;
}

/* ---- tokenizer ---- */

typedef struct kv {
  const uint8_t *k;
  size_t kn;
  const uint8_t *v; /* raw, quotes included */
  size_t vn;
} kv;

/* Next key=value pair of s[*pos..n); tokens without '=' are skipped. A value
 * is "double-quoted", 'single-quoted' (up to a quote followed by a space or
 * the end) or bare (up to a space). */
static bool next_kv(const uint8_t *s, size_t n, size_t *pos, kv *out) {
  size_t i = *pos;
  for (;;) {
    while (i < n && s[i] == ' ') i++;
    if (i >= n) {
      *pos = n;
      return false;
    }
    size_t ks = i;
    while (i < n && s[i] != '=' && s[i] != ' ') i++;
    if (i >= n || s[i] == ' ' || i == ks) {
      if (i < n && s[i] == '=') i++; /* "=x" with an empty key: skip it */
      while (i < n && s[i] != ' ') i++;
      continue;
    }
    out->k = s + ks;
    out->kn = i - ks;
    size_t vs = ++i;
    if (i < n && s[i] == '"') {
      const uint8_t *q = memchr(s + i + 1, '"', n - i - 1);
      i = q ? (size_t)(q - s) + 1 : n;
    } else if (i < n && s[i] == '\'') {
      i++;
      for (;;) {
        const uint8_t *q = memchr(s + i, '\'', n - i);
        if (!q) {
          i = n;
          break;
        }
        i = (size_t)(q - s) + 1;
        if (i >= n || s[i] == ' ') break;
      }
    } else {
      const uint8_t *sp = memchr(s + i, ' ', n - i);
      i = sp ? (size_t)(sp - s) : n;
    }
    out->v = s + vs;
    out->vn = i - vs;
    *pos = i;
    return true;
  }
}

#define KEY_IS(p, w) is_word((p)->k, (p)->kn, w)

/* key= of SYSCALL / CONFIG_CHANGE: decoded, split on 0x01, (null) skipped. */
static cairn_err take_keys(col_audit_ev *ev, const kv *p) {
  col_astr all = {0};
  cairn_err e = store(ev, p->v, p->vn, true, &all);
  if (e || !all.set || all.null) return e;
  size_t start = all.off, end = (size_t)all.off + all.len;
  for (size_t i = start; i <= end; i++) {
    if (i < end && ev->vals.ptr[i] != 0x01) continue;
    if (i > start) {
      col_astr *k = push(&ev->keys, sizeof(*k));
      if (!k) return CAIRN_E_NOMEM;
      *k = (col_astr){.off = (uint32_t)start, .len = (uint32_t)(i - start), .set = true};
    }
    start = i + 1;
  }
  return CAIRN_OK;
}

/* Push k=v to a col_akv list; the key is stored NUL-terminated. */
static cairn_err push_kv(col_audit_ev *ev, cairn_buf *list, const uint8_t *k, size_t kn,
                         const uint8_t *v, size_t vn, bool decode) {
  if (ev->vals.len + kn + vn + 2 > COL_AUDIT_MAX_VALS) return CAIRN_OK;
  col_astr ks = {.off = (uint32_t)ev->vals.len, .len = (uint32_t)kn, .set = true};
  cairn_err e = cairn_buf_append(&ev->vals, k, kn);
  if (!e) e = cairn_buf_append(&ev->vals, "", 1);
  if (e) return e;
  col_astr vs = {0};
  e = store(ev, v, vn, decode, &vs);
  if (e) return e;
  col_akv *slot = push(list, sizeof(*slot));
  if (!slot) return CAIRN_E_NOMEM;
  slot->k = ks;
  slot->v = vs;
  return CAIRN_OK;
}

/* The pairs inside msg='...' of the first userspace record. */
static cairn_err take_user_msg(col_audit_ev *ev, const uint8_t *v, size_t n) {
  if (ev->user_msg_done) return CAIRN_OK;
  ev->user_msg_done = true;
  if (n >= 1 && v[0] == '\'') {
    v++;
    n--;
    if (n >= 1 && v[n - 1] == '\'') n--;
  }
  size_t pos = 0;
  kv p;
  while (next_kv(v, n, &pos, &p)) {
    bool dec = KEY_IS(&p, "cmd") || KEY_IS(&p, "cwd") || KEY_IS(&p, "acct") || KEY_IS(&p, "exe");
    cairn_err e = push_kv(ev, &ev->user_msg, p.k, p.kn, p.v, p.vn, dec);
    if (e) return e;
    if (KEY_IS(&p, "exe"))
      e = set_str(ev, &ev->exe, p.v, p.vn, true, false);
    else if (KEY_IS(&p, "res"))
      take_res(ev, p.v, p.vn);
    if (e) return e;
  }
  return CAIRN_OK;
}

/* EXECVE aN=, aN[k]= (chunks of one long argument, in order); argc= and
 * aN_len= carry nothing the event needs. */
static cairn_err take_arg(col_audit_ev *ev, const kv *p) {
  if (p->kn < 2 || p->k[0] != 'a') return CAIRN_OK;
  size_t i = 1;
  int64_t idx = 0;
  while (i < p->kn && p->k[i] >= '0' && p->k[i] <= '9' && idx < 1000000000)
    idx = idx * 10 + (p->k[i++] - '0');
  if (i == 1) return CAIRN_OK;
  bool chunk = false;
  if (i < p->kn) {
    if (p->k[i] != '[' || p->k[p->kn - 1] != ']') return CAIRN_OK; /* aN_len */
    chunk = true;
  }
  if (ev->argvb.len + p->vn > COL_AUDIT_MAX_VALS) return CAIRN_OK;
  col_astr *a;
  if (chunk && ev->argv_last == idx && ev->argv.len) {
    a = (col_astr *)(ev->argv.ptr + ev->argv.len - sizeof(*a));
  } else {
    a = push(&ev->argv, sizeof(*a));
    if (!a) return CAIRN_E_NOMEM;
    a->off = (uint32_t)ev->argvb.len;
    a->set = true;
    ev->argv_last = idx;
  }
  size_t before = ev->argvb.len;
  bool null;
  cairn_err e = col__audit_decode(p->v, p->vn, &ev->argvb, &null);
  if (e) return e;
  a->len += (uint32_t)(ev->argvb.len - before);
  return CAIRN_OK;
}

static cairn_err take_path(col_audit_ev *ev, const uint8_t *s, size_t n) {
  col_apath *ap = push(&ev->paths, sizeof(*ap));
  if (!ap) return CAIRN_E_NOMEM;
  size_t idx = ev->paths.len / sizeof(*ap) - 1;
  size_t pos = 0;
  kv p;
  while (next_kv(s, n, &pos, &p)) {
    col_apath *cur = (col_apath *)ev->paths.ptr + idx;
    cairn_err e = CAIRN_OK;
    if (KEY_IS(&p, "item")) {
      cur->has_item = parse_i64(p.v, p.vn, &cur->item);
    } else if (KEY_IS(&p, "name") && !cur->name.set) {
      col_astr v = {0};
      e = store(ev, p.v, p.vn, true, &v);
      ((col_apath *)ev->paths.ptr + idx)->name = v;
    } else if (KEY_IS(&p, "nametype") && !cur->nametype.set) {
      col_astr v = {0};
      e = store(ev, p.v, p.vn, false, &v);
      ((col_apath *)ev->paths.ptr + idx)->nametype = v;
    }
    if (e) return e;
  }
  return CAIRN_OK;
}

/* Fields that any record may carry (SYSCALL ones win). */
static cairn_err take_common(col_audit_ev *ev, const kv *p, bool sc, bool keys_ok) {
  col_aint *ip = NULL;
  switch (p->kn) {
    case 3:
      if (KEY_IS(p, "uid"))
        ip = &ev->uid;
      else if (KEY_IS(p, "pid"))
        ip = &ev->pid;
      else if (KEY_IS(p, "ses"))
        ip = &ev->ses;
      else if (KEY_IS(p, "sig"))
        ip = &ev->sig;
      else if (KEY_IS(p, "exe"))
        return set_str(ev, &ev->exe, p->v, p->vn, true, sc);
      else if (KEY_IS(p, "key") && keys_ok)
        return take_keys(ev, p);
      else if (KEY_IS(p, "res"))
        take_res(ev, p->v, p->vn);
      break;
    case 4:
      if (KEY_IS(p, "auid"))
        ip = &ev->auid;
      else if (KEY_IS(p, "ppid"))
        ip = &ev->ppid;
      else if (KEY_IS(p, "euid"))
        ip = &ev->euid;
      else if (KEY_IS(p, "comm"))
        return set_str(ev, &ev->comm, p->v, p->vn, true, sc);
      else if (KEY_IS(p, "exit") && sc)
        ip = &ev->exit;
      else if (KEY_IS(p, "arch") && sc)
        return set_str(ev, &ev->arch, p->v, p->vn, false, sc);
      break;
    case 7:
      if (KEY_IS(p, "syscall") && sc)
        ip = &ev->syscall;
      else if (KEY_IS(p, "success") && sc && !ev->success_from_syscall) {
        if (is_word(p->v, p->vn, "yes"))
          ev->success = 1;
        else if (is_word(p->v, p->vn, "no"))
          ev->success = 0;
        ev->success_from_syscall = true;
      }
      break;
    default:
      break;
  }
  if (ip) set_int(ip, p->v, p->vn, sc);
  return CAIRN_OK;
}

/* ENRICHED part: KEY=value pairs, quotes stripped, first occurrence wins. */
static cairn_err take_enriched(col_audit_ev *ev, const uint8_t *s, size_t n) {
  ev->enriched = true;
  size_t pos = 0;
  kv p;
  while (next_kv(s, n, &pos, &p)) {
    bool dup = false;
    const col_akv *e = (const col_akv *)ev->enr.ptr;
    for (size_t i = 0; i < ev->enr.len / sizeof(*e) && !dup; i++)
      dup = e[i].k.len == p.kn && memcmp(ev->vals.ptr + e[i].k.off, p.k, p.kn) == 0;
    if (dup) continue;
    cairn_err err = push_kv(ev, &ev->enr, p.k, p.kn, p.v, p.vn, false);
    if (err) return err;
  }
  return CAIRN_OK;
}

cairn_err col__audit_ev_fields(col_audit_ev *ev, const col_aline *l, col_atype c) {
  const uint8_t *s = l->body;
  size_t n = l->body_len;
  size_t pos = 0;
  kv p;
  cairn_err e = CAIRN_OK;
  switch (c) {
    case COL_AT_EOE:
      break;
    case COL_AT_PATH:
      e = take_path(ev, s, n);
      break;
    case COL_AT_EXECVE:
      while (!e && next_kv(s, n, &pos, &p)) e = take_arg(ev, &p);
      break;
    case COL_AT_CWD:
      while (!e && next_kv(s, n, &pos, &p))
        if (KEY_IS(&p, "cwd")) e = set_str(ev, &ev->cwd, p.v, p.vn, true, false);
      break;
    case COL_AT_PROCTITLE:
      while (!e && next_kv(s, n, &pos, &p))
        if (KEY_IS(&p, "proctitle")) e = set_str(ev, &ev->proctitle, p.v, p.vn, true, false);
      break;
    default: {
      bool sc = c == COL_AT_SYSCALL;
      bool keys_ok = sc || is_word(l->type, l->type_len, "CONFIG_CHANGE");
      while (!e && next_kv(s, n, &pos, &p)) {
        if (c == COL_AT_USER && KEY_IS(&p, "msg") && p.vn && p.v[0] == '\'')
          e = take_user_msg(ev, p.v, p.vn);
        else
          e = take_common(ev, &p, sc, keys_ok);
      }
      break;
    }
  }
  if (!e && l->enr) e = take_enriched(ev, l->enr, l->enr_len);
  return e;
}
