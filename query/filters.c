/* query/filters.c: turns the filter flags of search, audit and stats into a
 * sto_query: index terms where storage can use them (exact values, globs,
 * numbers normalised the way the collector stores them) and one record
 * filter for what has no index (case-insensitive text, PCRE2 regexes, user
 * names as logged, the k8s object namespace of audit). Regexes are compiled
 * (and JIT-compiled) once per command, never per record.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "query/internal.h"

/* What the record filter checks; every group given must match (AND), any
 * value inside a group may (OR). */
typedef struct qry_filter {
  const char *grep[QRY_MAX_VALUES]; /* borrowed from argv */
  size_t grep_len[QRY_MAX_VALUES];
  uint8_t *grep_lower[QRY_MAX_VALUES]; /* owned, -i only */
  size_t ngrep;
  bool icase;
  pcre2_code *re[QRY_MAX_VALUES]; /* owned */
  bool re_jit[QRY_MAX_VALUES];    /* JIT-compiled: pcre2_jit_match */
  const char *re_lit[QRY_MAX_VALUES]; /* the pattern when it is a plain literal (borrowed) */
  size_t re_lit_len[QRY_MAX_VALUES];
  size_t nre;
  pcre2_match_data *md; /* owned, sized for the largest pattern */
  /* --auid / --uid with a user name: numbers and names of the group */
  qry_values ids[2];    /* [0] auid, [1] uid: the raw values */
  bool ids_by_filter[2];
  sto_term k8s_ns[QRY_MAX_VALUES]; /* audit --namespace on k8s-audit events */
  size_t nk8s_ns;
} qry_filter;

static const char *const field_flags[STO_FIELD_COUNT_] = {
    [STO_FIELD_NAMESPACE] = "namespace", [STO_FIELD_POD] = "pod",
    [STO_FIELD_CONTAINER] = "container", [STO_FIELD_NODE] = "node",
    [STO_FIELD_AUDIT_KEY] = "key",       [STO_FIELD_AUID] = "auid",
    [STO_FIELD_UID] = "uid",             [STO_FIELD_SYSCALL] = "syscall",
    [STO_FIELD_TYPE] = "type",           [STO_FIELD_EXE] = "exe",
    [STO_FIELD_SUCCESS] = "success",     [STO_FIELD_K8S_USER] = "user",
    [STO_FIELD_VERB] = "verb",           [STO_FIELD_RESOURCE] = "resource",
    [STO_FIELD_SUBRESOURCE] = "subresource", [STO_FIELD_CODE] = "status",
};

/* ---- x86_64 syscall names (the ones audit rules usually watch) ---- */

static const struct {
  short nr;
  const char *name;
} syscalls[] = {
    {0, "read"},          {1, "write"},          {2, "open"},          {3, "close"},
    {4, "stat"},          {5, "fstat"},          {6, "lstat"},         {9, "mmap"},
    {10, "mprotect"},     {16, "ioctl"},         {21, "access"},       {22, "pipe"},
    {32, "dup"},          {33, "dup2"},          {39, "getpid"},       {41, "socket"},
    {42, "connect"},      {43, "accept"},        {44, "sendto"},       {45, "recvfrom"},
    {49, "bind"},         {50, "listen"},        {56, "clone"},        {57, "fork"},
    {58, "vfork"},        {59, "execve"},        {60, "exit"},         {61, "wait4"},
    {62, "kill"},         {63, "uname"},         {72, "fcntl"},        {76, "truncate"},
    {77, "ftruncate"},    {78, "getdents"},      {79, "getcwd"},       {80, "chdir"},
    {82, "rename"},       {83, "mkdir"},         {84, "rmdir"},        {85, "creat"},
    {86, "link"},         {87, "unlink"},        {88, "symlink"},      {89, "readlink"},
    {90, "chmod"},        {91, "fchmod"},        {92, "chown"},        {93, "fchown"},
    {94, "lchown"},       {95, "umask"},         {101, "ptrace"},      {105, "setuid"},
    {106, "setgid"},      {113, "setreuid"},     {114, "setregid"},    {117, "setresuid"},
    {119, "setresgid"},   {137, "statfs"},       {155, "pivot_root"},  {159, "adjtimex"},
    {161, "chroot"},      {164, "settimeofday"}, {165, "mount"},       {166, "umount2"},
    {169, "reboot"},      {175, "init_module"},  {176, "delete_module"}, {188, "setxattr"},
    {189, "lsetxattr"},   {190, "fsetxattr"},    {197, "removexattr"}, {200, "tkill"},
    {227, "clock_settime"}, {231, "exit_group"}, {234, "tgkill"},      {246, "kexec_load"},
    {257, "openat"},      {258, "mkdirat"},      {260, "fchownat"},    {263, "unlinkat"},
    {264, "renameat"},    {265, "linkat"},       {266, "symlinkat"},   {268, "fchmodat"},
    {269, "faccessat"},   {272, "unshare"},      {288, "accept4"},     {292, "dup3"},
    {298, "perf_event_open"}, {305, "clock_adjtime"}, {308, "setns"},  {310, "process_vm_readv"},
    {311, "process_vm_writev"}, {313, "finit_module"}, {316, "renameat2"}, {320, "kexec_file_load"},
    {321, "bpf"},         {322, "execveat"},     {435, "clone3"},      {437, "openat2"},
};

const char *qry__syscall_name(long nr) {
  for (size_t i = 0; i < sizeof(syscalls) / sizeof(syscalls[0]); i++)
    if (syscalls[i].nr == nr) return syscalls[i].name;
  return NULL;
}

static long syscall_number(const char *name) {
  for (size_t i = 0; i < sizeof(syscalls) / sizeof(syscalls[0]); i++)
    if (strcmp(syscalls[i].name, name) == 0) return syscalls[i].nr;
  return -1;
}

/* ---- stats groups ---- */

const char *qry__group_name(int g) {
  if (g >= 0 && g < STO_FIELD_COUNT_) return sto_field_name((sto_field)g);
  switch (g) {
  case QRY_GROUP_SOURCE: return "source";
  case QRY_GROUP_STREAM: return "stream";
  case QRY_GROUP_DECISION: return "decision";
  default: return "";
  }
}

bool qry__group_parse(const char *s, int *g) {
  for (int i = 0; i < QRY_GROUP_COUNT_; i++)
    if (strcmp(s, qry__group_name(i)) == 0) {
      *g = i;
      return true;
    }
  if (strcmp(s, "status") == 0) {
    *g = STO_FIELD_CODE;
    return true;
  }
  return false;
}

/* ---- helpers ---- */

static bool all_digits(const char *s) {
  if (!*s) return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}

/* Copy s[0..n) into o->strs; NULL when full. */
static const char *save(qry_opts *o, const char *s, size_t n) {
  if (o->strs_used + n + 1 > sizeof(o->strs)) return NULL;
  char *p = o->strs + o->strs_used;
  memcpy(p, s, n);
  p[n] = 0;
  o->strs_used += n + 1;
  return p;
}

static int too_many(const qry_env *env, const char *cmd) {
  fprintf(env->err, "cairn-query %s: the filter values are too long in total (at most %zu bytes)\n",
          cmd, sizeof(((qry_opts *)0)->strs));
  return QRY_EXIT_USAGE;
}

/* A term for value v: exact, or a prefix ("abc*"), or a glob. */
static sto_term make_term(qry_opts *o, const char *v) {
  sto_term t = {v, STO_MATCH_EXACT};
  size_t n = strlen(v);
  size_t lit = strcspn(v, "*?[\\");
  if (lit == n) return t;
  if (lit == n - 1 && v[n - 1] == '*') {
    const char *p = save(o, v, lit);
    if (p) {
      t.value = p;
      t.match = STO_MATCH_PREFIX;
      return t;
    }
  }
  t.match = STO_MATCH_GLOB;
  return t;
}

static bool term_ok(const sto_term *t, const uint8_t *v, size_t n) {
  size_t tl = strlen(t->value);
  if (t->match == STO_MATCH_EXACT) return tl == n && memcmp(t->value, v, n) == 0;
  if (t->match == STO_MATCH_PREFIX) return n >= tl && memcmp(t->value, v, tl) == 0;
  char b[512];
  if (n >= sizeof(b)) return false;
  memcpy(b, v, n);
  b[n] = 0;
  return fnmatch(t->value, b, 0) == 0;
}

/* The value of attr key in r, or NULL. */
static const ProtobufCBinaryData *attr_get(const Cairn__Record *r, const char *key) {
  for (size_t i = 0; i < r->n_attrs; i++)
    if (r->attrs[i] && r->attrs[i]->key && strcmp(r->attrs[i]->key, key) == 0)
      return &r->attrs[i]->value;
  return NULL;
}

static bool bytes_eq(const ProtobufCBinaryData *b, const char *s) {
  return b && b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

/* Normalise an auid/uid number as the collector stores it: -1 and "unset"
 * mean 4294967295. NULL when v is not a number. */
static const char *id_number(qry_opts *o, const char *v) {
  if (strcmp(v, "-1") == 0 || strcmp(v, "unset") == 0) return "4294967295";
  if (!all_digits(v)) return NULL;
  errno = 0;
  unsigned long long x = strtoull(v, NULL, 10);
  if (errno == ERANGE || x > 4294967295ull) return NULL;
  char b[24];
  int k = snprintf(b, sizeof(b), "%llu", x);
  return save(o, b, (size_t)k);
}

/* ASCII case-insensitive search of needle (already lower-case) in hay. */
static bool ci_find(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m) {
  if (m == 0) return true;
  if (n < m) return false;
  uint8_t first = needle[0];
  for (size_t i = 0; i + m <= n; i++) {
    if ((uint8_t)tolower(hay[i]) != first) continue;
    size_t k = 1;
    while (k < m && (uint8_t)tolower(hay[i + k]) == needle[k]) k++;
    if (k == m) return true;
  }
  return false;
}

/* The text checks (--grep, -i, --regex): storage runs them on the message
 * bytes before it decodes a record (sto_query.msg_filter). */
static bool msg_cb(const uint8_t *msg, size_t len, void *ud) {
  qry_filter *f = ud;
  if (!msg) msg = (const uint8_t *)""; /* an empty message from a caller of its own */
  if (f->ngrep) {
    bool any = false;
    for (size_t i = 0; i < f->ngrep && !any; i++)
      any = f->icase ? ci_find(msg, len, f->grep_lower[i], f->grep_len[i])
                     : memmem(msg, len, f->grep[i], f->grep_len[i]) != NULL ||
                           f->grep_len[i] == 0;
    if (!any) return false;
  }
  if (f->nre) {
    bool any = false;
    for (size_t i = 0; i < f->nre && !any; i++) {
      if (f->re_lit[i]) /* a plain literal: memmem, no regex engine */
        any = f->re_lit_len[i] == 0 || memmem(msg, len, f->re_lit[i], f->re_lit_len[i]) != NULL;
      else if (f->re_jit[i])
        any = pcre2_jit_match(f->re[i], msg, len, 0, 0, f->md, NULL) >= 0;
      else
        any = pcre2_match(f->re[i], msg, len, 0, 0, f->md, NULL) >= 0;
    }
    if (!any) return false;
  }
  return true;
}

/* What needs the decoded record: user names of --auid/--uid, the object
 * namespace of Kubernetes audit events. */
static bool filter_cb(const Cairn__Record *r, void *ud) {
  qry_filter *f = ud;
  static const char *const num_attr[2] = {"auid", "uid"};
  static const char *const name_attr[2] = {"AUID", "UID"};
  for (int k = 0; k < 2; k++) {
    if (!f->ids_by_filter[k]) continue;
    if (r->source != CAIRN__SOURCE__SOURCE_AUDIT) return false;
    const ProtobufCBinaryData *num = attr_get(r, num_attr[k]);
    const ProtobufCBinaryData *name = attr_get(r, name_attr[k]);
    bool any = false;
    for (size_t i = 0; i < f->ids[k].n && !any; i++) {
      const char *v = f->ids[k].v[i];
      any = bytes_eq(name, v) || bytes_eq(num, v);
    }
    if (!any) return false;
  }
  if (f->nk8s_ns) {
    const ProtobufCBinaryData *ns = r->source == CAIRN__SOURCE__SOURCE_K8S_AUDIT
                                        ? attr_get(r, "namespace")
                                        : NULL;
    bool any = false;
    for (size_t i = 0; ns && i < f->nk8s_ns && !any; i++)
      any = term_ok(&f->k8s_ns[i], ns->data, ns->len);
    if (!any) return false;
  }
  return true;
}

void qry__filter_free(qry_filter *f) {
  if (!f) return;
  for (size_t i = 0; i < f->ngrep; i++) free(f->grep_lower[i]);
  for (size_t i = 0; i < f->nre; i++) pcre2_code_free(f->re[i]);
  pcre2_match_data_free(f->md);
  free(f);
}

/* The filter of o, allocated on first use. NULL on NOMEM (reported). */
static qry_filter *filter_get(qry_opts *o, const qry_env *env) {
  if (!o->filter) {
    o->filter = calloc(1, sizeof(*o->filter));
    if (!o->filter) fprintf(env->err, "cairn-query %s: out of memory\n", o->cmd);
  }
  return o->filter;
}

/* A pattern with no regex syntax at all (letters, digits, space and
 * punctuation that is never special) matches exactly where memmem finds it. */
static bool plain_literal(const char *p) {
  for (; *p; p++) {
    unsigned char ch = (unsigned char)*p;
    if (ch >= 0x80 || ch < 0x20 || strchr("\\^$.|?*+()[]{}#", ch)) return false;
  }
  return true;
}

static int compile_regexes(const qry_values *re, bool icase, const qry_env *env, qry_opts *o) {
  qry_filter *f = filter_get(o, env);
  if (!f) return QRY_EXIT_USAGE;
  uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (icase ? PCRE2_CASELESS : 0);
  for (size_t i = 0; i < re->n; i++) {
    int code;
    PCRE2_SIZE off;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re->v[i], PCRE2_ZERO_TERMINATED, opts, &code, &off,
                                  NULL);
    if (!c) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(code, msg, sizeof(msg));
      fprintf(env->err, "cairn-query %s: --regex '%s': %s at offset %zu (PCRE2 syntax)\n", o->cmd,
              re->v[i], (const char *)msg, (size_t)off);
      return QRY_EXIT_USAGE;
    }
    /* without JIT (no support, no memory) the interpreter runs it */
    f->re_jit[f->nre] = pcre2_jit_compile(c, PCRE2_JIT_COMPLETE) == 0;
    if (!icase && plain_literal(re->v[i])) {
      f->re_lit[f->nre] = re->v[i];
      f->re_lit_len[f->nre] = strlen(re->v[i]);
    }
    f->re[f->nre++] = c;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(c, NULL);
    if (!md) {
      fprintf(env->err, "cairn-query %s: out of memory\n", o->cmd);
      return QRY_EXIT_USAGE;
    }
    uint32_t have = 0, want = 0;
    if (f->md) have = pcre2_get_ovector_count(f->md);
    want = pcre2_get_ovector_count(md);
    if (!f->md || want > have) {
      pcre2_match_data_free(f->md);
      f->md = md;
    } else {
      pcre2_match_data_free(md);
    }
  }
  return QRY_EXIT_OK;
}

/* Normalise one value of field f into a term (or hand it to the record
 * filter); QRY_EXIT_USAGE after a message. */
static int field_value(qry_opts *o, const qry_env *env, sto_field f, const char *v,
                       sto_term *out, bool *skip) {
  *skip = false;
  const char *flag = field_flags[f];
  switch (f) {
  case STO_FIELD_AUID:
  case STO_FIELD_UID: {
    const char *num = id_number(o, v);
    if (num) {
      *out = (sto_term){num, STO_MATCH_EXACT};
      return QRY_EXIT_OK;
    }
    *skip = true; /* a user name: the record filter checks AUID= / UID= */
    return QRY_EXIT_OK;
  }
  case STO_FIELD_SYSCALL: {
    if (all_digits(v) && strlen(v) < 8) {
      *out = (sto_term){v, STO_MATCH_EXACT};
      return QRY_EXIT_OK;
    }
    long nr = syscall_number(v);
    if (nr < 0) {
      fprintf(env->err,
              "cairn-query %s: --syscall: unknown syscall '%s' (give the number, or an x86_64 "
              "name such as execve, openat, connect)\n",
              o->cmd, v);
      return QRY_EXIT_USAGE;
    }
    char b[16];
    int k = snprintf(b, sizeof(b), "%ld", nr);
    const char *p = save(o, b, (size_t)k);
    if (!p) return too_many(env, o->cmd);
    *out = (sto_term){p, STO_MATCH_EXACT};
    return QRY_EXIT_OK;
  }
  case STO_FIELD_SUCCESS: {
    const char *yn = NULL;
    if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1")) yn = "yes";
    if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0")) yn = "no";
    if (!yn) {
      fprintf(env->err, "cairn-query %s: --success: '%s' is not yes or no\n", o->cmd, v);
      return QRY_EXIT_USAGE;
    }
    *out = (sto_term){yn, STO_MATCH_EXACT};
    return QRY_EXIT_OK;
  }
  case STO_FIELD_CODE: {
    /* 403, or a class like 4xx / 40x (x = any digit), or a glob */
    size_t n = strlen(v);
    bool ok = n == 3;
    for (size_t i = 0; i < n && ok; i++)
      ok = (v[i] >= '0' && v[i] <= '9') || v[i] == 'x' || v[i] == 'X' || v[i] == '?' || v[i] == '*';
    if (!ok) {
      fprintf(env->err,
              "cairn-query %s: --status: '%s' is not an HTTP status (use e.g. 403, 40x or 5xx)\n",
              o->cmd, v);
      return QRY_EXIT_USAGE;
    }
    char b[4];
    for (size_t i = 0; i < 3; i++) b[i] = (v[i] == 'x' || v[i] == 'X') ? '?' : v[i];
    b[3] = 0;
    const char *p = save(o, b, 3);
    if (!p) return too_many(env, o->cmd);
    *out = make_term(o, p);
    return QRY_EXIT_OK;
  }
  case STO_FIELD_TYPE: {
    char b[128];
    size_t n = strlen(v);
    if (n >= sizeof(b)) {
      fprintf(env->err, "cairn-query %s: --type: '%.40s...' is too long\n", o->cmd, v);
      return QRY_EXIT_USAGE;
    }
    for (size_t i = 0; i <= n; i++) b[i] = (char)toupper((unsigned char)v[i]);
    const char *p = save(o, b, n);
    if (!p) return too_many(env, o->cmd);
    *out = make_term(o, p);
    return QRY_EXIT_OK;
  }
  default:
    (void)flag;
    *out = make_term(o, v);
    return QRY_EXIT_OK;
  }
}

int qry__filters_build(const char *cmd, const qry_filter_args *a, const qry_env *env,
                       qry_opts *o) {
  bool audit = strcmp(cmd, "audit") == 0;
  int rc;
  bool want_audit = false, want_k8s = false;
  const char *audit_flag = NULL, *k8s_flag = NULL;
  for (int f = 0; f < STO_FIELD_COUNT_; f++) {
    const qry_values *vs = &a->field[f];
    if (!vs->n) continue;
    if (f >= STO_FIELD_AUDIT_KEY && f <= STO_FIELD_SUCCESS) {
      want_audit = true;
      audit_flag = field_flags[f];
    } else if (f >= STO_FIELD_K8S_USER) {
      want_k8s = true;
      k8s_flag = field_flags[f];
    }
    size_t nt = 0;
    bool by_filter = false;
    for (size_t i = 0; i < vs->n; i++) {
      bool skip = false;
      rc = field_value(o, env, (sto_field)f, vs->v[i], &o->terms[f][nt], &skip);
      if (rc != QRY_EXIT_OK) return rc;
      if (skip)
        by_filter = true;
      else
        nt++;
    }
    if (by_filter) { /* auid/uid names: the whole group goes to the record filter */
      qry_filter *flt = filter_get(o, env);
      if (!flt) return QRY_EXIT_USAGE;
      int k = f == STO_FIELD_AUID ? 0 : 1;
      flt->ids_by_filter[k] = true;
      for (size_t i = 0; i < vs->n; i++) {
        const char *num = id_number(o, vs->v[i]);
        flt->ids[k].v[flt->ids[k].n++] = num ? num : vs->v[i];
      }
      nt = 0;
    }
    o->q.terms[f].v = o->terms[f];
    o->q.terms[f].n = nt;
  }
  if (a->k8s_namespace.n) {
    want_k8s = true;
    if (!k8s_flag) k8s_flag = "namespace";
    qry_filter *flt = filter_get(o, env);
    if (!flt) return QRY_EXIT_USAGE;
    for (size_t i = 0; i < a->k8s_namespace.n; i++)
      flt->k8s_ns[flt->nk8s_ns++] = make_term(o, a->k8s_namespace.v[i]);
  }
  if (want_audit && want_k8s) {
    fprintf(env->err,
            "cairn-query %s: --%s filters auditd events and --%s Kubernetes audit events: no "
            "event has both; run one query for each\n",
            cmd, audit_flag, k8s_flag);
    return QRY_EXIT_USAGE;
  }
  if (audit) {
    int implied = want_audit ? CAIRN__SOURCE__SOURCE_AUDIT
                  : want_k8s ? CAIRN__SOURCE__SOURCE_K8S_AUDIT
                             : 0;
    if (o->q.source == CAIRN__SOURCE__SOURCE_CONTAINER) {
      fprintf(env->err,
              "cairn-query audit: --source container has no audit events (use audit or "
              "k8s-audit, or cairn-query search)\n");
      return QRY_EXIT_USAGE;
    }
    if (o->q.source && implied && o->q.source != implied) {
      fprintf(env->err, "cairn-query audit: --source %s contradicts --%s\n",
              pb_source_name((Cairn__Source)o->q.source), want_audit ? audit_flag : k8s_flag);
      return QRY_EXIT_USAGE;
    }
    if (!o->q.source) o->q.source = implied;
    o->audit_source = o->q.source;
  }

  for (size_t i = 0; i < a->stream.n; i++) {
    Cairn__LogStream s;
    if (!strcmp(a->stream.v[i], "stdout"))
      s = CAIRN__LOG_STREAM__LOG_STREAM_STDOUT;
    else if (!strcmp(a->stream.v[i], "stderr"))
      s = CAIRN__LOG_STREAM__LOG_STREAM_STDERR;
    else {
      fprintf(env->err, "cairn-query %s: --stream: '%s' is not stdout or stderr\n", cmd,
              a->stream.v[i]);
      return QRY_EXIT_USAGE;
    }
    if (i > 0 && (int)s != o->q.stream)
      o->q.stream = 0; /* --stream stdout --stream stderr: either */
    else
      o->q.stream = (int)s;
  }

  if (a->grep.n == 1 && !a->icase && !a->regex.n && !o->filter) {
    o->q.grep = a->grep.v[0]; /* storage's own substring test */
  } else if (a->grep.n) {
    qry_filter *flt = filter_get(o, env);
    if (!flt) return QRY_EXIT_USAGE;
    flt->icase = a->icase;
    for (size_t i = 0; i < a->grep.n; i++) {
      flt->grep[i] = a->grep.v[i];
      flt->grep_len[i] = strlen(a->grep.v[i]);
      if (a->icase) {
        flt->grep_lower[i] = malloc(flt->grep_len[i] + 1);
        if (!flt->grep_lower[i]) {
          fprintf(env->err, "cairn-query %s: out of memory\n", cmd);
          return QRY_EXIT_USAGE;
        }
        for (size_t k = 0; k <= flt->grep_len[i]; k++)
          flt->grep_lower[i][k] = (uint8_t)tolower((unsigned char)a->grep.v[i][k]);
      }
      flt->ngrep++;
    }
  }
  if (a->regex.n && (rc = compile_regexes(&a->regex, a->icase, env, o)) != QRY_EXIT_OK) return rc;
  if (o->filter) {
    qry_filter *f = o->filter;
    if (f->ngrep || f->nre) {
      o->q.msg_filter = msg_cb;
      o->q.msg_filter_ud = f;
    }
    if (f->ids_by_filter[0] || f->ids_by_filter[1] || f->nk8s_ns) {
      o->q.filter = filter_cb;
      o->q.filter_ud = f;
    }
  }
  return QRY_EXIT_OK;
}
