/* bench/query_gen.c: builds the store of the query benchmark
 * (bench/query/run.sh) through storage's write API, and writes the same
 * records' message text as plain files for grep.
 *
 *   query-gen --data DIR [--text DIR] [--records N] [--days D] [--seed S]
 *             [--group G]
 *
 * N records (default 10,000,000) spread evenly over D days (default 3)
 * starting 2026-11-01T00:00:00Z, in time order, committed G (default 10000)
 * per transaction without fsync. The mix: 90 % container lines from 1000 pods
 * in 20 namespaces on 20 nodes (JSON access logs, nginx lines, klog, Java
 * logs, errors, tracebacks; ~110-260 bytes of varied text), 7 % auditd events
 * (keys, auid/uid with user names, syscalls, exes; the attrs the collector
 * stores) and 3 % Kubernetes audit events (~450-byte JSON with user, verb,
 * resource, subresource, code). Seeded: the same arguments give the same
 * records. With --text, DIR/day-K.txt (K = 1..D) holds each record's message
 * of day K, one per line (messages have no newline).
 * Prints
 *   BUILD records=N seconds=S records_per_s=R map_used=B
 *   DAY k=K since=T until=T records=R msg_bytes=B file=F   (per day)
 *   SAMPLE pod=P since=T until=T key=K auid=A
 * The data dir is reused when it already holds N or more records (build
 * skipped, the text files are not rewritten; each cairn-query run records
 * itself in the store, so a reused store grows by one record per query).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/storage.h"

#define T0_S 1793491200LL /* 2026-11-01T00:00:00Z */
#define NS_PER_S 1000000000LL
#define NPODS 1000u
#define NNS 20u
#define NNODES 20u
#define MSG_MAX 1024u

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rnd(rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 2685821657736338717ULL;
}

static unsigned below(rng *r, unsigned n) { return (unsigned)(rnd(r) % n); }

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define N_(a) (sizeof(a) / sizeof((a)[0]))

static const char *const namespaces[NNS] = {
    "payments", "checkout", "ingress-nginx", "kube-system", "monitoring", "logging",   "auth",
    "search",   "catalog",  "inventory",     "shipping",    "billing",    "analytics", "ml-serving",
    "cart",     "frontend", "notifications", "ledger",      "fraud",      "reporting"};
static const char *const apps[] = {"api",   "worker",    "web",      "gateway",  "db-proxy",
                                   "cache", "scheduler", "consumer", "exporter", "sidecar"};
static const char *const containers[] = {"app", "istio-proxy", "worker", "nginx", "envoy"};
static const char *const methods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH"};
static const char *const resources[] = {"orders",   "items",    "users",    "carts",   "payments",
                                        "sessions", "invoices", "products", "reviews", "shipments"};
static const char *const words[] = {
    "cache",   "miss",     "refresh",  "token",    "expired", "retry",   "upstream", "slow",
    "queue",   "drained",  "batch",    "flushed",  "lease",   "renewed", "shard",    "rebalanced",
    "session", "created",  "invoice",  "settled",  "webhook", "sent",    "payload",  "validated",
    "config",  "reloaded", "snapshot", "uploaded", "leader",  "elected", "pool",     "resized"};
static const char *const levels[] = {"info", "info", "info", "info", "debug", "warn", "error"};
static const char *const jlevels[] = {"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"};
static const char *const agents[] = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36",
    "curl/8.5.0", "kube-probe/1.29", "Go-http-client/1.1", "python-requests/2.31.0"};
static const char *const audit_keys[] = {
    "exec",        "exec",   "exec",        "exec",     "identity", "sudoers", "time-change",
    "module-load", "docker", "k8s-secrets", "ssh-keys", "priv-esc", "network", "mounts"};
static const char *const users[] = {"alice", "bob",   "carol", "dave", "erin",    "frank",
                                    "grace", "heidi", "ivan",  "judy", "mallory", "oscar"};
static const struct {
  const char *exe, *comm;
  int syscall;
} exes[] = {{"/usr/bin/bash", "bash", 59},
            {"/usr/bin/sudo", "sudo", 59},
            {"/usr/bin/cat", "cat", 257},
            {"/usr/bin/vim.basic", "vim", 257},
            {"/usr/sbin/sshd", "sshd", 42},
            {"/usr/bin/curl", "curl", 42},
            {"/usr/bin/kubectl", "kubectl", 59},
            {"/usr/bin/python3.11", "python3", 59},
            {"/usr/sbin/modprobe", "modprobe", 313},
            {"/usr/bin/mount", "mount", 165},
            {"/usr/bin/chmod", "chmod", 268},
            {"/usr/bin/date", "date", 227}};
static const char *const k8s_users[] = {"alice@example.com",
                                        "bob@example.com",
                                        "system:serviceaccount:kube-system:replicaset-controller",
                                        "system:serviceaccount:monitoring:prometheus",
                                        "system:kube-scheduler",
                                        "system:node:node-07",
                                        "ci-bot@example.com"};
static const char *const verbs[] = {"get",    "get",    "list",  "watch",
                                    "create", "update", "patch", "delete"};
static const char *const k8s_res[] = {"pods",     "secrets", "configmaps", "deployments",
                                      "services", "leases",  "events",     "nodes"};

typedef struct gen {
  rng r;
  char pods[NPODS][64];
  char uids[NPODS][40];
  char nodes[NNODES][24];
  uint64_t offs[NPODS + 2];
} gen;

/* Message of a container line of pod p at time t (seconds), into m. */
static int container_msg(gen *g, char *m, size_t cap, unsigned p, int64_t t, uint64_t i) {
  rng *r = &g->r;
  time_t ts = (time_t)t;
  struct tm tm;
  gmtime_r(&ts, &tm);
  unsigned kind = below(r, 100);
  unsigned ip3 = below(r, 256), ip4 = below(r, 256);
  if (kind < 35)
    return snprintf(m, cap,
                    "{\"level\":\"%s\",\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03uZ\","
                    "\"msg\":\"request "
                    "served\",\"method\":\"%s\",\"path\":\"/api/v1/%s/%u\",\"status\":%d,"
                    "\"latency_ms\":%u,\"trace_id\":\"%016" PRIx64 "\"}",
                    levels[below(r, N_(levels))], tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                    tm.tm_hour, tm.tm_min, tm.tm_sec, below(r, 1000),
                    methods[below(r, N_(methods))], resources[below(r, N_(resources))],
                    below(r, 100000), below(r, 20) ? 200 : (below(r, 3) ? 404 : 503),
                    below(r, 3000), rnd(r));
  if (kind < 55) {
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    return snprintf(m, cap,
                    "10.%u.%u.%u - - [%02d/%s/%04d:%02d:%02d:%02d +0000] \"%s "
                    "/%s/%u HTTP/1.1\" %d "
                    "%u \"-\" \"%s\"",
                    below(r, 64), ip3, ip4, tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900,
                    tm.tm_hour, tm.tm_min, tm.tm_sec, methods[below(r, N_(methods))],
                    resources[below(r, N_(resources))], below(r, 100000), below(r, 25) ? 200 : 502,
                    below(r, 200000), agents[below(r, N_(agents))]);
  }
  if (kind < 72)
    return snprintf(m, cap,
                    "I%02d%02d %02d:%02d:%02d.%06u       1 %s.go:%u] \"%s %s\" "
                    "%s=\"%s/%s-%05x\" "
                    "generation=%u elapsed=%u.%03ums",
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, below(r, 1000000),
                    words[below(r, N_(words))], below(r, 900) + 10, words[below(r, N_(words))],
                    words[below(r, N_(words))], apps[below(r, N_(apps))], namespaces[p % NNS],
                    apps[p % N_(apps)], below(r, 0xfffff), below(r, 400), below(r, 900),
                    below(r, 1000));
  if (kind < 90)
    return snprintf(m, cap,
                    "%04d-%02d-%02d %02d:%02d:%02d.%03u %-5s [pool-%u-thread-%u] "
                    "c.e.%s.%sService - %s %s for %s %u after %u ms (attempt %u)",
                    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    below(r, 1000), jlevels[below(r, N_(jlevels))], below(r, 8) + 1,
                    below(r, 32) + 1, namespaces[p % NNS], words[below(r, N_(words))],
                    words[below(r, N_(words))], words[below(r, N_(words))],
                    resources[below(r, N_(resources))], below(r, 1000000), below(r, 5000),
                    below(r, 5) + 1);
  if (kind < 97)
    return snprintf(m, cap,
                    "ERROR %s: dial tcp 10.%u.%u.%u:%u: connect: connection %s "
                    "(retry %u/5, "
                    "request_id=%016" PRIx64 ")",
                    words[below(r, N_(words))], below(r, 64), ip3, ip4, below(r, 2) ? 5432 : 6379,
                    below(r, 3) ? "refused" : "reset by peer", below(r, 5) + 1, rnd(r));
  return snprintf(m, cap,
                  "Traceback (most recent call last): File "
                  "\"/app/%s/handlers.py\", line %u, in "
                  "handle_%s: KeyError: '%s_id' (record %" PRIu64 ")",
                  words[below(r, N_(words))], below(r, 900) + 1, words[below(r, N_(words))],
                  resources[below(r, N_(resources))], i);
}

typedef struct slot {
  Cairn__Record rec;
  Cairn__Attr attr[10];
  Cairn__Attr *ap[10];
  char msg[MSG_MAX];
  char sv[10][48]; /* attr value storage */
} slot;

static void set_attr(slot *s, size_t k, const char *key, const char *fmt, const char *v) {
  cairn__attr__init(&s->attr[k]);
  s->attr[k].key = (char *)key;
  int n = snprintf(s->sv[k], sizeof(s->sv[k]), fmt, v);
  s->attr[k].value.data = (uint8_t *)s->sv[k];
  s->attr[k].value.len = (size_t)n;
  s->ap[k] = &s->attr[k];
}

static void audit_rec(gen *g, slot *s, int64_t t_ns) {
  rng *r = &g->r;
  Cairn__Record *rec = &s->rec;
  const char *key = audit_keys[below(r, N_(audit_keys))];
  unsigned ui = below(r, N_(users) + 2); /* two out of 14: unset auid (daemons) */
  unsigned auid = ui < N_(users) ? 1000 + ui : 4294967295u;
  unsigned uid = below(r, 3) ? 0 : auid;
  unsigned ei = below(r, N_(exes));
  bool ok = below(r, 12) != 0;
  char auid_s[16], uid_s[16], sc_s[8];
  snprintf(auid_s, sizeof(auid_s), "%u", auid);
  snprintf(uid_s, sizeof(uid_s), "%u", uid == 4294967295u ? 0 : uid);
  snprintf(sc_s, sizeof(sc_s), "%d", exes[ei].syscall);
  int64_t sec = t_ns / NS_PER_S;
  unsigned ms = (unsigned)(t_ns / 1000000 % 1000), serial = (unsigned)(rnd(r) % 10000000);
  int n =
      snprintf(s->msg, sizeof(s->msg),
               "type=SYSCALL msg=audit(%" PRId64 ".%03u:%u): arch=c000003e syscall=%s success=%s "
               "exit=%d a0=%" PRIx64 " items=1 ppid=%u pid=%u auid=%s uid=%s gid=0 euid=0 "
               "tty=pts%u ses=%u comm=\"%s\" exe=\"%s\" key=\"%s\" type=CWD "
               "msg=audit(%" PRId64 ".%03u:%u): cwd=\"/home/%s\" type=PROCTITLE msg=audit(%" PRId64
               ".%03u:%u): proctitle=%s",
               sec, ms, serial, sc_s, ok ? "yes" : "no", ok ? 0 : -13, rnd(r) & 0xffffffffff,
               below(r, 30000) + 1, below(r, 4000000) + 1, auid_s, uid_s, below(r, 8),
               below(r, 5000), exes[ei].comm, exes[ei].exe, key, sec, ms, serial,
               ui < N_(users) ? users[ui] : "root", sec, ms, serial, exes[ei].comm);
  rec->source = CAIRN__SOURCE__SOURCE_AUDIT;
  rec->format = CAIRN__FORMAT__FORMAT_AUDITD;
  rec->message.data = (uint8_t *)s->msg;
  rec->message.len = (size_t)n;
  rec->path = "/var/log/audit/audit.log";
  rec->file_stream = NPODS + 1;
  size_t k = 0;
  set_attr(s, k++, "types", "%s", "SYSCALL,CWD,PROCTITLE");
  set_attr(s, k++, "key", "%s", key);
  set_attr(s, k++, "auid", "%s", auid_s);
  set_attr(s, k++, "uid", "%s", uid_s);
  set_attr(s, k++, "syscall", "%s", sc_s);
  set_attr(s, k++, "exe", "%s", exes[ei].exe);
  set_attr(s, k++, "success", "%s", ok ? "yes" : "no");
  set_attr(s, k++, "AUID", "%s", ui < N_(users) ? users[ui] : "unset");
  set_attr(s, k++, "UID", "%s", uid == 0 ? "root" : users[ui]);
  rec->attrs = s->ap;
  rec->n_attrs = k;
}

static void k8s_rec(gen *g, slot *s, int64_t t_ns) {
  rng *r = &g->r;
  Cairn__Record *rec = &s->rec;
  const char *user = k8s_users[below(r, N_(k8s_users))];
  const char *verb = verbs[below(r, N_(verbs))];
  const char *res = k8s_res[below(r, N_(k8s_res))];
  const char *ns = namespaces[below(r, NNS)];
  bool exec = strcmp(res, "pods") == 0 && below(r, 10) == 0;
  unsigned code = below(r, 15) ? (strcmp(verb, "create") == 0 ? 201 : 200) : 403;
  char code_s[8];
  snprintf(code_s, sizeof(code_s), "%u", code);
  time_t ts = (time_t)(t_ns / NS_PER_S);
  struct tm tm;
  gmtime_r(&ts, &tm);
  int n =
      snprintf(s->msg, sizeof(s->msg),
               "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/"
               "v1\",\"level\":\"Metadata\",\"auditID\":"
               "\"%08" PRIx64 "-%04x-4%03x-8%03x-%012" PRIx64 "\",\"stage\":\"ResponseComplete\","
               "\"requestURI\":\"/api/v1/namespaces/%s/"
               "%s%s\",\"verb\":\"%s\",\"user\":{\"username\":\"%s\","
               "\"groups\":[\"system:authenticated\"]},\"sourceIPs\":[\"10.%u.%"
               "u.%u\"],\"objectRef\":{"
               "\"resource\":\"%s\",\"namespace\":\"%s\"%s},\"responseStatus\":"
               "{\"code\":%u},"
               "\"stageTimestamp\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06uZ\"}",
               rnd(r) & 0xffffffff, below(r, 0x10000), below(r, 0x1000), below(r, 0x1000),
               rnd(r) & 0xffffffffffff, ns, res, exec ? "/x/exec" : "", verb, user, below(r, 64),
               below(r, 256), below(r, 256), res, ns, exec ? ",\"subresource\":\"exec\"" : "", code,
               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
               below(r, 1000000));
  rec->source = CAIRN__SOURCE__SOURCE_K8S_AUDIT;
  rec->format = CAIRN__FORMAT__FORMAT_K8S_AUDIT;
  rec->message.data = (uint8_t *)s->msg;
  rec->message.len = (size_t)n;
  rec->path = "/var/log/kubernetes/audit/audit.log";
  rec->file_stream = NPODS + 2;
  size_t k = 0;
  set_attr(s, k++, "user", "%s", user);
  set_attr(s, k++, "verb", "%s", verb);
  set_attr(s, k++, "resource", "%s", res);
  if (exec) set_attr(s, k++, "subresource", "%s", "exec");
  set_attr(s, k++, "code", "%s", code_s);
  set_attr(s, k++, "namespace", "%s", ns);
  rec->attrs = s->ap;
  rec->n_attrs = k;
}

static void fmt_time(char *b, size_t n, int64_t s) {
  if (n < 64) return;
  time_t t = (time_t)s;
  struct tm tm;
  gmtime_r(&t, &tm);
  snprintf(b, n, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int main(int argc, char **argv) {
  const char *dir = NULL, *text = NULL;
  uint64_t n = 10000000, days = 3, seed = 1, group = 10000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--data") && i + 1 < argc)
      dir = argv[++i];
    else if (!strcmp(argv[i], "--text") && i + 1 < argc)
      text = argv[++i];
    else if (!strcmp(argv[i], "--records") && i + 1 < argc)
      n = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--days") && i + 1 < argc)
      days = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
      seed = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--group") && i + 1 < argc)
      group = strtoull(argv[++i], NULL, 10);
    else
      dir = NULL, i = argc;
  }
  if (!dir || n == 0 || days == 0 || days > 365 || group == 0 || group > 1000000) {
    fprintf(stderr, "usage: query-gen --data DIR [--text DIR] [--records N] "
                    "[--days D] [--seed S] "
                    "[--group G]\n");
    return 2;
  }
  char err[512];
  sto_options opt = {.no_sync = true, .map_size = 16ull << 30};
  sto_env *env = NULL;
  if (sto_open(dir, &opt, &env, err, sizeof(err)) != CAIRN_OK) {
    fprintf(stderr, "query-gen: %s\n", err);
    return 2;
  }
  gen *g = calloc(1, sizeof(*g));
  if (!g) return 2;
  g->r.s = 0x9E3779B97F4A7C15ULL ^ (seed * 0xD1B54A32D192ED03ULL);
  if (!g->r.s) g->r.s = 1;
  for (unsigned k = 0; k < NNODES; k++) snprintf(g->nodes[k], sizeof(g->nodes[k]), "node-%02u", k);
  for (unsigned p = 0; p < NPODS; p++) {
    snprintf(g->pods[p], sizeof(g->pods[p]), "%s-%s-%05" PRIx64 "-%03u", namespaces[p % NNS],
             apps[(p / NNS) % N_(apps)], rnd(&g->r) & 0xfffff, p);
    snprintf(g->uids[p], sizeof(g->uids[p]), "%016" PRIx64 "%016" PRIx64, rnd(&g->r), rnd(&g->r));
  }
  int64_t t_begin = T0_S * NS_PER_S, span = (int64_t)days * 86400 * NS_PER_S;
  uint64_t *day_recs = calloc(days, sizeof(uint64_t)), *day_bytes = calloc(days, sizeof(uint64_t));
  if (!day_recs || !day_bytes) return 2;
  sto_stats st;
  if (sto_stats_get(env, &st) != CAIRN_OK) return 2;
  if (st.records && st.records < n) {
    fprintf(stderr, "query-gen: %s holds %" PRIu64 " records (< %" PRIu64 "); use an empty dir\n",
            dir, st.records, n);
    return 2;
  }
  bool build = st.records == 0;
  FILE **tf = calloc(days, sizeof(FILE *));
  if (!tf) return 2;
  if (build && text) {
    for (uint64_t d = 0; d < days; d++) {
      char path[4096];
      snprintf(path, sizeof(path), "%s/day-%" PRIu64 ".txt", text, d + 1);
      if (!(tf[d] = fopen(path, "w"))) {
        fprintf(stderr, "query-gen: cannot write %s\n", path);
        return 2;
      }
      setvbuf(tf[d], NULL, _IOFBF, 1 << 20);
    }
  }
  slot *slots = calloc(group, sizeof(*slots));
  Cairn__Record **rp = calloc(group, sizeof(*rp));
  if (!slots || !rp) return 2;
  sto_ingest_meta meta = {
      .instance_id = "0123456789abcdef0123456789abcdef", .identity = "bench-collector", .node = ""};
  double t0 = mono_s();
  for (uint64_t done = 0; build && done < n;) {
    size_t k = (size_t)(n - done < group ? n - done : group);
    for (size_t j = 0; j < k; j++) {
      uint64_t i = done + j;
      slot *s = &slots[j];
      Cairn__Record *rec = &s->rec;
      cairn__record__init(rec);
      rec->time_ns = t_begin + (int64_t)((double)i / (double)n * (double)span);
      unsigned mix = below(&g->r, 100);
      unsigned p = below(&g->r, NPODS);
      if (mix < 90) {
        int len = container_msg(g, s->msg, sizeof(s->msg), p, rec->time_ns / NS_PER_S, i);
        rec->source = CAIRN__SOURCE__SOURCE_CONTAINER;
        rec->format = CAIRN__FORMAT__FORMAT_CRI;
        rec->stream = below(&g->r, 10) ? CAIRN__LOG_STREAM__LOG_STREAM_STDOUT
                                       : CAIRN__LOG_STREAM__LOG_STREAM_STDERR;
        rec->message.data = (uint8_t *)s->msg;
        rec->message.len = (size_t)len;
        rec->kube_namespace = (char *)namespaces[p % NNS];
        rec->pod = g->pods[p];
        rec->container = (char *)containers[p % N_(containers)];
        rec->container_id = g->uids[(p * 7) % NPODS];
        rec->pod_uid = g->uids[p];
        rec->path = "/var/log/containers/app.log";
        rec->file_stream = p + 1;
      } else if (mix < 97) {
        audit_rec(g, s, rec->time_ns);
        p = NPODS;
      } else {
        k8s_rec(g, s, rec->time_ns);
        p = NPODS + 1;
      }
      rec->node = g->nodes[p % NNODES];
      rec->fragments = 1;
      g->offs[p] += rec->message.len + 40;
      rec->end_offset = g->offs[p];
      rp[j] = rec;
      uint64_t d = (uint64_t)((rec->time_ns - t_begin) / (86400 * NS_PER_S));
      day_recs[d]++;
      day_bytes[d] += rec->message.len;
      if (tf[d]) {
        fwrite(rec->message.data, 1, rec->message.len, tf[d]);
        fputc('\n', tf[d]);
      }
    }
    cairn_err e;
    for (;;) { /* on a full map: grow it and store the same group again */
      sto_wtxn *t = NULL;
      uint32_t stored = 0, dups = 0;
      meta.ingest_ns = t_begin + span;
      e = sto_wtxn_begin(env, &t);
      if (e == CAIRN_OK) e = sto_wtxn_put_records(t, &meta, rp, k, &stored, &dups);
      if (e == CAIRN_OK)
        e = sto_wtxn_commit(t);
      else
        sto_wtxn_abort(t);
      if (e != CAIRN_E_MAPFULL || sto_grow(env) != CAIRN_OK) break;
    }
    if (e != CAIRN_OK) {
      fprintf(stderr, "query-gen: write failed: %s\n", cairn_err_name(e));
      return 2;
    }
    done += k;
  }
  double t1 = mono_s();
  for (uint64_t d = 0; d < days; d++)
    if (tf[d] && fclose(tf[d]) != 0) {
      fprintf(stderr, "query-gen: writing the text files failed\n");
      return 2;
    }
  if (sto_stats_get(env, &st) != CAIRN_OK) return 2;
  if (build)
    printf("BUILD records=%" PRIu64 " seconds=%.2f records_per_s=%.0f map_used=%" PRIu64 "\n", n,
           t1 - t0, (double)n / (t1 - t0), st.map_used);
  else
    printf("BUILD records=%" PRIu64 " reused=1 map_used=%" PRIu64 "\n", st.records, st.map_used);
  for (uint64_t d = 0; d < days; d++) {
    char a[64], b[64];
    fmt_time(a, sizeof(a), T0_S + (int64_t)d * 86400);
    fmt_time(b, sizeof(b), T0_S + (int64_t)(d + 1) * 86400);
    if (build)
      printf("DAY k=%" PRIu64 " since=%s until=%s records=%" PRIu64 " msg_bytes=%" PRIu64 "\n",
             d + 1, a, b, day_recs[d], day_bytes[d]);
    else
      printf("DAY k=%" PRIu64 " since=%s until=%s\n", d + 1, a, b);
  }
  {
    int64_t h = T0_S + (int64_t)(days * 24 / 2) * 3600;
    char a[64], b[64];
    fmt_time(a, sizeof(a), h);
    fmt_time(b, sizeof(b), h + 3600);
    printf("SAMPLE pod=%s since=%s until=%s key=%s auid=%u\n", g->pods[NPODS / 3], a, b,
           "module-load", 1000u + 4);
  }
  free(slots);
  free(rp);
  free(tf);
  free(day_recs);
  free(day_bytes);
  free(g);
  sto_close(env);
  return 0;
}
