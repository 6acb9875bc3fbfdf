/* tests/tools/gen_cri.c: writes realistic CRI container log files for tests,
 * the demo and benchmarks: Kubernetes file names, RFC3339Nano timestamps,
 * ~200-byte varied messages (JSON and plain text, so zstd ratios are
 * realistic), seeded so runs are repeatable.
 *
 *   gen-cri --dir DIR [--files N] [--lines N] [--start I] [--seed S] [--partial-every K] [--rate LINES_PER_S]
 *
 * Line i (counted from --start, default 0, over all files) carries the unique marker "seq=%08d", so a
 * test can check that every line arrived exactly once. With --partial-every K,
 * every K-th line is written as a P fragment + F fragment (reassembled to one
 * record). Files are named <pod>_<namespace>_<container>-<64 hex>.log.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng_state;
static uint64_t rng(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

static const char *const namespaces[] = {"payments", "checkout", "ingress-nginx", "kube-system"};
static const char *const apps[] = {"payment-api", "cart", "ingress-nginx-controller", "coredns"};
static const char *const containers[] = {"api", "cart", "controller", "coredns"};
static const char *const paths[] = {"/api/v1/payments", "/api/v1/cart/items", "/healthz",
                                    "/api/v1/orders/search", "/metrics", "/login"};
static const char *const levels[] = {"info", "info", "info", "debug", "warn", "error"};

static void sleep_ns(int64_t ns) {
  struct timespec ts = {ns / 1000000000LL, ns % 1000000000LL};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

int main(int argc, char **argv) {
  const char *dir = NULL;
  long files = 4, lines = 100000, partial_every = 0, start = 0;
  double rate = 0;
  rng_state = 0x9E3779B97F4A7C15ULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
    else if (!strcmp(argv[i], "--files") && i + 1 < argc) files = atol(argv[++i]);
    else if (!strcmp(argv[i], "--lines") && i + 1 < argc) lines = atol(argv[++i]);
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc) rng_state ^= strtoull(argv[++i], NULL, 10) * 0x2545F4914F6CDD1DULL + 1;
    else if (!strcmp(argv[i], "--partial-every") && i + 1 < argc) partial_every = atol(argv[++i]);
    else if (!strcmp(argv[i], "--start") && i + 1 < argc) start = atol(argv[++i]);
    else if (!strcmp(argv[i], "--rate") && i + 1 < argc) rate = atof(argv[++i]);
    else dir = NULL, i = argc;
  }
  if (!dir || files < 1 || files > 1000 || lines < 0) {
    fprintf(stderr, "usage: gen-cri --dir DIR [--files N] [--lines N] [--start I] [--seed S] [--partial-every K] [--rate L/S]\n");
    return 2;
  }
  FILE **fp = calloc((size_t)files, sizeof(*fp));
  for (long f = 0; f < files; f++) {
    char id[65];
    for (int k = 0; k < 64; k++) id[k] = "0123456789abcdef"[rng() & 15];
    id[64] = 0;
    size_t a = (size_t)f % 4;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s-%05lx-%04lx_%s_%s-%s.log", dir, apps[a], (long)(rng() & 0xfffff),
             f, namespaces[a], containers[a], id);
    fp[f] = fopen(path, "a");
    if (!fp[f]) {
      fprintf(stderr, "gen-cri: cannot open %s: %s\n", path, strerror(errno));
      return 2;
    }
    setvbuf(fp[f], NULL, _IOFBF, 1 << 16);
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t t0 = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
  struct timespec m0;
  clock_gettime(CLOCK_MONOTONIC, &m0);
  for (long i = start; i < start + lines; i++) {
    FILE *f = fp[(size_t)i % (size_t)files];
    int64_t t = t0 + (i - start) * 1000;
    time_t sec = (time_t)(t / 1000000000LL);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char stamp[64];
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long long)(t % 1000000000LL));
    const char *stream = (rng() % 10) == 0 ? "stderr" : "stdout";
    char msg[512];
    uint64_t r = rng();
    if (r & 1) {
      snprintf(msg, sizeof(msg),
               "{\"level\":\"%s\",\"ts\":\"%s\",\"msg\":\"request served\",\"method\":\"GET\","
               "\"path\":\"%s\",\"status\":%d,\"latency_ms\":%u,\"trace_id\":\"%016" PRIx64
               "\",\"seq=%08ld\":true}",
               levels[r % 6], stamp, paths[(r >> 8) % 6], (r >> 16) % 7 == 0 ? 500 : 200,
               (unsigned)((r >> 24) % 2000), rng(), i);
    } else {
      snprintf(msg, sizeof(msg),
               "%s %s %s took %ums user=u%04u session=%08" PRIx64 " seq=%08ld cache=%s region=eu-west-%u",
               levels[r % 6], "GET", paths[(r >> 8) % 6], (unsigned)((r >> 24) % 2000),
               (unsigned)((r >> 32) % 5000), rng(), i, (r >> 40) & 1 ? "hit" : "miss",
               (unsigned)((r >> 44) % 3) + 1);
    }
    if (partial_every > 0 && i % partial_every == partial_every - 1) {
      size_t half = strlen(msg) / 2;
      fprintf(f, "%s %s P %.*s\n", stamp, stream, (int)half, msg);
      fprintf(f, "%s %s F %s\n", stamp, stream, msg + half);
    } else {
      fprintf(f, "%s %s F %s\n", stamp, stream, msg);
    }
    if (rate > 0 && i % 100 == 99) {
      for (long f2 = 0; f2 < files; f2++) fflush(fp[f2]);
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      int64_t el = (now.tv_sec - m0.tv_sec) * 1000000000LL + (now.tv_nsec - m0.tv_nsec);
      int64_t want = (int64_t)((double)(i - start + 1) / rate * 1e9);
      if (want > el) sleep_ns(want - el);
    }
  }
  for (long f = 0; f < files; f++) {
    if (fclose(fp[f]) != 0) {
      fprintf(stderr, "gen-cri: write failed: %s\n", strerror(errno));
      return 2;
    }
  }
  free(fp);
  return 0;
}
