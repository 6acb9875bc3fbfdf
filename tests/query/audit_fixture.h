/* tests/query/audit_fixture.h: a store for the audit, stats and extended
 * search tests, built through storage's write API: auditd events with the
 * attrs the collector emits (types, key, auid, uid, syscall, exe, success,
 * ENRICHED AUID/UID names), Kubernetes audit events (user, verb, resource,
 * subresource, namespace, name, code, decision) and container lines, in
 * shuffled order, plus the model the tests compute expectations from.
 * Header-only: each *_test.c is its own executable.
 */
#ifndef CAIRN_TESTS_QUERY_AUDIT_FIXTURE_H
#define CAIRN_TESTS_QUERY_AUDIT_FIXTURE_H

#include "tests/query/fixture.h"

#define AX_N 600
#define AX_T0 (1705276800LL * 1000000000LL) /* 2024-01-15T00:00:00Z */
#define AX_STEP (60LL * 1000000000LL)       /* one event a minute: 10 h in all */

enum { AX_AUDITD, AX_K8S, AX_CONTAINER };

typedef struct ax_rec {
  int kind;
  int64_t time_ns;
  const char *node;
  /* auditd */
  const char *types, *key1, *key2, *auid, *uid, *auid_name, *syscall, *exe, *success;
  /* k8s */
  const char *user, *verb, *resource, *subresource, *kns, *code, *decision;
  char name[24];
  /* container */
  const char *ns, *pod;
  int stream;
  char msg[160];
} ax_rec;

typedef struct ax_store {
  char dir[64];
  char data[96];
  ax_rec r[AX_N];
} ax_store;

static const char *const ax_types[] = {"SYSCALL,EXECVE,CWD,PATH,PATH,PROCTITLE,EOE",
                                       "SYSCALL,PATH,EOE", "USER_LOGIN", "USER_AUTH"};
static const char *const ax_ids[] = {"1000", "1001", "0", "4294967295"};
static const char *const ax_syscalls[] = {"59", "257", "42"};
static const char *const ax_exes[] = {"/usr/bin/ls", "/usr/bin/sudo", "/usr/sbin/sshd",
                                      "/bin/bash"};
static const char *const ax_users[] = {"alice@example.com", "bob@example.com",
                                       "system:serviceaccount:ci:deployer"};
static const char *const ax_verbs[] = {"get", "list", "create", "delete", "patch"};
static const char *const ax_resources[] = {"secrets", "pods", "configmaps", "deployments"};
static const char *const ax_codes[] = {"200", "201", "403", "404"};
static const char *const ax_kns[] = {"payments", "kube-system"};
static const char *const ax_cns[] = {"payments", "payment-gw", "checkout", "kube-system"};
static const char *const ax_pods[] = {"api-0", "api-1", "db-0"};
static const char *const ax_nodes[] = {"node-a", "node-b", "node-c"};

static inline void ax_model(ax_store *s) {
  for (int i = 0; i < AX_N; i++) {
    ax_rec *r = &s->r[i];
    memset(r, 0, sizeof(*r));
    r->time_ns = AX_T0 + i * AX_STEP + i;
    r->node = ax_nodes[i % 3];
    r->kind = i % 3;
    if (r->kind == AX_AUDITD) {
      r->types = ax_types[(i / 3) % 4];
      bool sc = strncmp(r->types, "SYSCALL", 7) == 0;
      if (i % 5 == 0) r->key1 = "exec";
      if (i % 7 == 0) r->key2 = "priv-esc";
      r->auid = ax_ids[(i / 3) % 4];
      r->uid = i % 2 ? "0" : "1000";
      if (strcmp(r->auid, "1000") == 0 && i % 2 == 0) r->auid_name = "alice";
      r->syscall = sc ? ax_syscalls[i % 3] : NULL;
      r->exe = ax_exes[(i / 6) % 4];
      r->success = i % 4 == 0 ? "no" : "yes";
      snprintf(r->msg, sizeof(r->msg),
               "type=%.7s msg=audit(1705276800.%03d:%d): auid=%s exe=\"%s\"\ntype=EOE "
               "msg=audit(1705276800.%03d:%d):",
               r->types, i % 1000, i, r->auid, r->exe, i % 1000, i);
    } else if (r->kind == AX_K8S) {
      r->user = ax_users[i % 3];
      r->verb = ax_verbs[(i / 3) % 5];
      r->resource = ax_resources[(i / 2) % 4];
      r->subresource = i % 8 == 1 ? "exec" : NULL;
      r->kns = ax_kns[(i / 3) % 2];
      snprintf(r->name, sizeof(r->name), "obj-%d", i);
      r->code = ax_codes[(i / 5) % 4];
      r->decision = strcmp(r->code, "403") == 0 ? "forbid" : "allow";
      snprintf(r->msg, sizeof(r->msg), "{\"kind\":\"Event\",\"auditID\":\"id-%d\",\"verb\":\"%s\"}",
               i, r->verb);
    } else {
      r->ns = ax_cns[(i / 3) % 4];
      r->pod = ax_pods[(i / 2) % 3];
      r->stream = i % 4 == 2 ? CAIRN__LOG_STREAM__LOG_STREAM_STDERR
                             : CAIRN__LOG_STREAM__LOG_STREAM_STDOUT;
      snprintf(r->msg, sizeof(r->msg), "%s /api/items/%d %s", i % 10 == 2 ? "get" : "GET", i,
               i % 11 == 2 ? "Timeout talking to DB" : (i % 13 == 2 ? "TIMEOUT" : "ok"));
    }
  }
}

typedef struct ax_attrs {
  Cairn__Attr a[20];
  Cairn__Attr *p[20];
  size_t n;
} ax_attrs;

static inline void ax_attr(ax_attrs *b, const char *k, const char *v) {
  if (!v) return;
  Cairn__Attr init = CAIRN__ATTR__INIT;
  b->a[b->n] = init;
  b->a[b->n].key = (char *)k;
  b->a[b->n].value.data = (uint8_t *)v;
  b->a[b->n].value.len = strlen(v);
  b->p[b->n] = &b->a[b->n];
  b->n++;
}

static inline int ax_build(ax_store *s) {
  ax_model(s);
  snprintf(s->dir, sizeof(s->dir), "/tmp/cairn-query-audit-XXXXXX");
  if (!mkdtemp(s->dir)) return -1;
  snprintf(s->data, sizeof(s->data), "%s/store", s->dir);
  sto_options so = {.no_sync = true};
  sto_env *env = NULL;
  char why[256];
  if (sto_open(s->data, &so, &env, why, sizeof(why)) != CAIRN_OK) {
    fprintf(stderr, "audit fixture: sto_open: %s\n", why);
    return -1;
  }
  sto_ingest_meta meta = {.instance_id = "0123456789abcdef0123456789abcdef",
                          .identity = "CN=test-collector", .ingest_ns = AX_T0};
  static Cairn__Record recs[AX_N];
  static Cairn__Record *ptrs[AX_N];
  static ax_attrs attrs[AX_N];
  for (int k = 0; k < AX_N; k++) {
    int i = (k * 7) % AX_N; /* 7 is prime to 600: seq order != time order */
    const ax_rec *m = &s->r[i];
    Cairn__Record init = CAIRN__RECORD__INIT;
    Cairn__Record *r = &recs[k];
    *r = init;
    ax_attrs *b = &attrs[k];
    b->n = 0;
    r->time_ns = m->time_ns;
    r->node = (char *)m->node;
    r->message.data = (uint8_t *)m->msg;
    r->message.len = strlen(m->msg);
    if (m->kind == AX_AUDITD) {
      r->source = CAIRN__SOURCE__SOURCE_AUDIT;
      r->format = CAIRN__FORMAT__FORMAT_AUDITD;
      ax_attr(b, "types", m->types);
      ax_attr(b, "serial", "42");
      ax_attr(b, "arch", m->syscall ? "c000003e" : NULL);
      ax_attr(b, "syscall", m->syscall);
      ax_attr(b, "success", m->success);
      ax_attr(b, "uid", m->uid);
      ax_attr(b, "auid", m->auid);
      ax_attr(b, "comm", "x");
      ax_attr(b, "exe", m->exe);
      ax_attr(b, "key", m->key1);
      ax_attr(b, "key", m->key2);
      ax_attr(b, "AUID", m->auid_name);
    } else if (m->kind == AX_K8S) {
      r->source = CAIRN__SOURCE__SOURCE_K8S_AUDIT;
      r->format = CAIRN__FORMAT__FORMAT_K8S_AUDIT;
      ax_attr(b, "stage", "ResponseComplete");
      ax_attr(b, "verb", m->verb);
      ax_attr(b, "user", m->user);
      ax_attr(b, "resource", m->resource);
      ax_attr(b, "subresource", m->subresource);
      ax_attr(b, "namespace", m->kns);
      ax_attr(b, "name", m->name);
      ax_attr(b, "code", m->code);
      ax_attr(b, "decision", m->decision);
    } else {
      r->source = CAIRN__SOURCE__SOURCE_CONTAINER;
      r->format = CAIRN__FORMAT__FORMAT_CRI;
      r->stream = (Cairn__LogStream)m->stream;
      r->kube_namespace = (char *)m->ns;
      r->pod = (char *)m->pod;
      r->container = (char *)"app";
    }
    r->n_attrs = b->n;
    r->attrs = b->n ? b->p : NULL;
    ptrs[k] = r;
  }
  int rc = -1;
  for (int k = 0; k < AX_N; k += 100) {
    sto_wtxn *t = NULL;
    uint32_t stored = 0, dups = 0;
    if (sto_wtxn_begin(env, &t) != CAIRN_OK) goto out_close;
    if (sto_wtxn_put_records(t, &meta, ptrs + k, 100, &stored, &dups) != CAIRN_OK ||
        stored != 100) {
      sto_wtxn_abort(t);
      goto out_close;
    }
    if (sto_wtxn_commit(t) != CAIRN_OK) goto out_close;
  }
  rc = 0;
out_close:
  sto_close(env);
  return rc;
}

static inline void ax_destroy(ax_store *s) {
  if (s->dir[0]) nftw(s->dir, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Model predicate: does record r match? */
typedef bool (*ax_pred)(const ax_rec *r, const void *arg);

/* Expected event times newest first (or oldest first), limit 0 = all. */
static inline size_t ax_expect(const ax_store *s, ax_pred p, const void *arg, bool oldest_first,
                               size_t limit, int64_t *out) {
  size_t n = 0;
  for (int k = 0; k < AX_N; k++) {
    int i = oldest_first ? k : AX_N - 1 - k;
    if (!p(&s->r[i], arg)) continue;
    if (limit && n == limit) break;
    out[n++] = s->r[i].time_ns;
  }
  return n;
}

/* time_ns of every JSON line of out, in order; (size_t)-1 on a bad line. */
static inline size_t ax_json_times(const char *out, int64_t *times, size_t max) {
  size_t n = 0;
  const char *p = out;
  while (*p) {
    const char *nl = strchr(p, '\n');
    if (!nl || n == max) return (size_t)-1;
    const char *t = strstr(p, "\"time_ns\":");
    if (!t || t > nl) return (size_t)-1;
    times[n++] = strtoll(t + 10, NULL, 10);
    p = nl + 1;
  }
  return n;
}

#endif
