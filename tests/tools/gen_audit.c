/* tests/tools/gen_audit.c: writes realistic Linux auditd logs (RAW format,
 * multi-record SYSCALL events and userspace records) or Kubernetes API audit
 * logs (one JSON event per line, ~800 bytes) for tests and benchmarks;
 * seeded so runs are repeatable.
 *
 *   gen-audit --format auditd|k8s-audit --out FILE [--lines N] [--seed S]
 *
 * --lines counts physical lines (an auditd exec event is 6 lines: SYSCALL,
 * EXECVE, CWD, two PATH, PROCTITLE; a login event is 1 line). Every event
 * carries a distinct serial (auditd) or auditID (k8s-audit).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rng_next(rng *r) { /* xorshift64* */
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 2685821657736338717ULL;
}

static const char *const cmds[][3] = {
    /* comm, exe, argv[1] */
    {"cat", "/usr/bin/cat", "/var/log/secure"},
    {"ls", "/usr/bin/ls", "-la"},
    {"curl", "/usr/bin/curl", "https://example.com/install.sh"},
    {"kubectl", "/usr/local/bin/kubectl", "get"},
    {"python3", "/usr/bin/python3.11", "/opt/app/job.py"},
};
static const char *const keys[] = {"exec", "priv_exec", "(null)", "net_tools"};
static const char *const namespaces[] = {"payments", "checkout", "kube-system", "default"};
static const char *const resources[] = {"pods", "secrets", "configmaps", "deployments", "leases"};
static const char *const verbs[] = {"get", "list", "watch", "create", "update", "delete", "patch"};
static const char *const users[] = {"alice@example.com", "system:serviceaccount:kube-system:coredns",
                                    "system:kube-scheduler", "bob@example.com"};

static void hex(FILE *f, const char *s) {
  for (; *s; s++) fprintf(f, "%02X", (unsigned char)*s);
}

static long gen_auditd(FILE *f, rng *r, long lines) {
  long written = 0, serial = 1000;
  time_t t0 = time(NULL);
  while (written < lines) {
    uint64_t x = rng_next(r);
    serial++;
    long ms = (long)(serial % 1000);
    long sec = (long)t0 + serial / 1000;
    unsigned pid = 3000 + (unsigned)(x % 20000), uid = (x >> 16) % 3 ? 0 : 1001;
    if (x % 8 == 0 || lines - written < 6) {
      fprintf(f,
              "type=USER_LOGIN msg=audit(%ld.%03ld:%ld): pid=%u uid=0 auid=%u ses=%u "
              "subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=login id=%u exe=\"/usr/sbin/sshd\" "
              "hostname=10.20.%u.%u addr=10.20.%u.%u terminal=ssh res=%s'\n",
              sec, ms, serial, pid, uid, (unsigned)(x >> 24) % 100, uid, (unsigned)(x >> 32) % 255,
              (unsigned)(x >> 40) % 255, (unsigned)(x >> 32) % 255, (unsigned)(x >> 40) % 255,
              (x >> 48) % 5 ? "success" : "failed");
      written++;
      continue;
    }
    const char *const *c = cmds[(x >> 8) % 5];
    char stamp[64];
    snprintf(stamp, sizeof(stamp), "%ld.%03ld:%ld", sec, ms, serial);
    fprintf(f,
            "type=SYSCALL msg=audit(%s): arch=c000003e syscall=59 success=yes exit=0 a0=5588d0e3f690 "
            "a1=5588d0e3f6f0 a2=5588d0e41c30 a3=0 items=2 ppid=%u pid=%u auid=%u uid=%u gid=0 euid=%u "
            "suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=%u comm=\"%s\" exe=\"%s\" "
            "subj=unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023 key=%s%s%s\n",
            stamp, pid - 2, pid, uid, uid, uid, (unsigned)(x >> 24) % 100, c[0], c[1],
            strcmp(keys[(x >> 40) % 4], "(null)") ? "\"" : "", keys[(x >> 40) % 4],
            strcmp(keys[(x >> 40) % 4], "(null)") ? "\"" : "");
    fprintf(f, "type=EXECVE msg=audit(%s): argc=2 a0=\"%s\" a1=\"%s\"\n", stamp, c[0], c[2]);
    fprintf(f, "type=CWD msg=audit(%s): cwd=\"/home/u%u\"\n", stamp, uid);
    fprintf(f,
            "type=PATH msg=audit(%s): item=0 name=\"%s\" inode=%u dev=fd:00 mode=0100755 ouid=0 "
            "ogid=0 rdev=00:00 obj=system_u:object_r:bin_t:s0 nametype=NORMAL cap_fp=0 cap_fi=0 "
            "cap_fe=0 cap_fver=0 cap_frootid=0\n",
            stamp, c[1], (unsigned)(x >> 20) % 90000000u);
    fprintf(f,
            "type=PATH msg=audit(%s): item=1 name=\"/lib64/ld-linux-x86-64.so.2\" inode=50331781 "
            "dev=fd:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 obj=system_u:object_r:ld_so_t:s0 "
            "nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\n",
            stamp);
    fprintf(f, "type=PROCTITLE msg=audit(%s): proctitle=", stamp);
    hex(f, c[0]);
    fputs("00", f);
    hex(f, c[2]);
    fputc('\n', f);
    written += 6;
  }
  return written;
}

static void k8s_stamp(char *out, size_t cap, int64_t t) {
  time_t sec = (time_t)(t / 1000000000LL);
  struct tm tm;
  gmtime_r(&sec, &tm);
  snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)((uint64_t)t % 1000000000u / 1000u));
}

static long gen_k8s(FILE *f, rng *r, long lines) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t t0 = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
  for (long i = 0; i < lines; i++) {
    uint64_t x = rng_next(r), y = rng_next(r);
    char recv[64], stage[64];
    k8s_stamp(recv, sizeof(recv), t0 + i * 100000);
    k8s_stamp(stage, sizeof(stage), t0 + i * 100000 + (int64_t)(x % 50000000));
    const char *ns = namespaces[x % 4], *res = resources[(x >> 8) % 5], *verb = verbs[(x >> 16) % 7];
    const char *user = users[(x >> 24) % 4];
    int code = (x >> 32) % 11 == 0 ? 403 : 200;
    fprintf(f,
            "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\","
            "\"auditID\":\"%08" PRIx64 "-%04x-4%03x-8%03x-%012" PRIx64 "\",\"stage\":\"ResponseComplete\","
            "\"requestURI\":\"/api/v1/namespaces/%s/%s?limit=500\\u0026resourceVersion=%u\",\"verb\":\"%s\","
            "\"user\":{\"username\":\"%s\",\"groups\":[\"system:authenticated\",\"oidc:team-%u\"]},"
            "\"sourceIPs\":[\"10.%u.%u.%u\"],\"userAgent\":\"kubectl/v1.29.1 (linux/amd64) kubernetes/bc401b9\","
            "\"objectRef\":{\"resource\":\"%s\",\"namespace\":\"%s\",\"name\":\"obj-%u\",\"apiVersion\":\"v1\"},"
            "\"responseStatus\":{\"metadata\":{},\"code\":%d},\"requestReceivedTimestamp\":\"%s\","
            "\"stageTimestamp\":\"%s\",\"annotations\":{\"authorization.k8s.io/decision\":\"%s\","
            "\"authorization.k8s.io/reason\":\"RBAC: allowed by ClusterRoleBinding \\\"team-%u\\\"\"}}\n",
            y >> 32, (unsigned)(y & 0xffff), (unsigned)(y >> 16) & 0xfff, (unsigned)(y >> 28) & 0xfff,
            (uint64_t)((x ^ y) & 0xffffffffffffULL), ns, res, (unsigned)(y % 999999), verb, user,
            (unsigned)(x >> 40) % 9, (unsigned)(y >> 8) % 255, (unsigned)(y >> 16) % 255,
            (unsigned)(y >> 24) % 255, res, ns, (unsigned)(x >> 44) % 5000, code, recv, stage,
            code == 200 ? "allow" : "forbid", (unsigned)(x >> 40) % 9);
  }
  return lines;
}

int main(int argc, char **argv) {
  const char *fmt = NULL, *out = NULL;
  long lines = 100000;
  rng r = {0x9E3779B97F4A7C15ULL};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--format") && i + 1 < argc) fmt = argv[++i];
    else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    else if (!strcmp(argv[i], "--lines") && i + 1 < argc) lines = atol(argv[++i]);
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc) r.s ^= strtoull(argv[++i], NULL, 10) * 0x2545F4914F6CDD1DULL + 1;
    else out = NULL, i = argc;
  }
  int kind = fmt && !strcmp(fmt, "auditd") ? 1 : fmt && !strcmp(fmt, "k8s-audit") ? 2 : 0;
  if (!out || !kind || lines < 0) {
    fprintf(stderr, "usage: gen-audit --format auditd|k8s-audit --out FILE [--lines N] [--seed S]\n");
    return 2;
  }
  FILE *f = fopen(out, "a");
  if (!f) {
    fprintf(stderr, "gen-audit: cannot open %s: %s\n", out, strerror(errno));
    return 2;
  }
  setvbuf(f, NULL, _IOFBF, 1 << 16);
  if (kind == 1)
    gen_auditd(f, &r, lines);
  else
    gen_k8s(f, &r, lines);
  if (fclose(f) != 0) {
    fprintf(stderr, "gen-audit: write failed: %s\n", strerror(errno));
    return 2;
  }
  return 0;
}
