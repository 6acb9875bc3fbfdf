/* bench/latency.c: end-to-end latency at a fixed line rate (scenario h).
 *
 *   latency write --file PATH --rate LINES_PER_S --seconds S
 *   latency report --data DIR [--skip-seconds K]
 *
 * write appends CRI lines to PATH (created, in a Kubernetes-style name the
 * caller chooses) at a steady rate: every millisecond the lines due by then
 * are written with one write(2), each stamped with the wall-clock time of
 * that write (RFC3339Nano, UTC) and carrying a ~200-byte message. Prints
 *   WRITE lines=N seconds=S rate=R
 * report opens a store read-only (it may be open for writing by a running
 * aggregator) and computes, for every stored record, ingest_ns (the time the
 * aggregator's writer put it into the LMDB txn that committed it) minus
 * time_ns (the line's stamp = its write time). Records of the first K seconds
 * (default 0) are left out as warm-up. Prints
 *   LATENCY records=N p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. min_ms=..
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/storage.h"

static int64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int do_write(const char *path, double rate, double seconds) {
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    fprintf(stderr, "latency: cannot open %s: %s\n", path, strerror(errno));
    return 2;
  }
  uint64_t total = (uint64_t)(rate * seconds), i = 0, x = 0x9E3779B97F4A7C15ULL;
  static const char *const lv[] = {"info", "info", "info", "warn", "debug", "error"};
  size_t cap = 1 << 20;
  char *buf = malloc(cap);
  if (!buf) return 2;
  int64_t m0 = clock_ns(CLOCK_MONOTONIC);
  while (i < total) {
    int64_t el = clock_ns(CLOCK_MONOTONIC) - m0;
    uint64_t due = (uint64_t)((double)el / 1e9 * rate) + 1;
    if (due > total) due = total;
    size_t len = 0;
    int64_t now = clock_ns(CLOCK_REALTIME);
    time_t sec = (time_t)(now / 1000000000LL);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char stamp[48];
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long long)(now % 1000000000LL));
    for (; i < due && len + 512 < cap; i++) {
      x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
      uint64_t r = x * 2685821657736338717ULL;
      int n = snprintf(buf + len, cap - len,
                       "%s stdout F {\"level\":\"%s\",\"msg\":\"request served\",\"method\":\"GET\","
                       "\"path\":\"/api/v1/orders/%05u\",\"status\":%d,\"latency_ms\":%u,"
                       "\"trace_id\":\"%016" PRIx64 "\",\"lat\":%08" PRIu64 "}\n",
                       stamp, lv[r % 6], (unsigned)((r >> 8) % 100000),
                       (r >> 24) % 7 == 0 ? 500 : 200, (unsigned)((r >> 32) % 2000), x, i);
      len += (size_t)n;
    }
    for (size_t off = 0; off < len;) {
      ssize_t w = write(fd, buf + off, len - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        fprintf(stderr, "latency: write %s: %s\n", path, strerror(errno));
        return 2;
      }
      off += (size_t)w;
    }
    if (i >= total) break;
    /* sleep to the next millisecond boundary of the schedule */
    int64_t next = ((clock_ns(CLOCK_MONOTONIC) - m0) / 1000000 + 1) * 1000000;
    struct timespec ts = {.tv_sec = (time_t)((m0 + next) / 1000000000LL),
                          .tv_nsec = (long)((m0 + next) % 1000000000LL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
  }
  double el = (double)(clock_ns(CLOCK_MONOTONIC) - m0) / 1e9;
  close(fd);
  free(buf);
  printf("WRITE lines=%" PRIu64 " seconds=%.3f rate=%.0f\n", total, el, (double)total / el);
  return 0;
}

typedef struct lat {
  int64_t *v;
  size_t n, cap;
  int64_t t_min; /* first line's time */
  int64_t skip_ns;
  bool oom;
} lat;

static bool lat_cb(const Cairn__Record *rec, void *ud) {
  lat *l = ud;
  if (l->t_min == INT64_MIN) l->t_min = rec->time_ns;
  if (rec->time_ns - l->t_min < l->skip_ns) return true;
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 1 << 16;
    int64_t *nv = realloc(l->v, nc * sizeof(*nv));
    if (!nv) {
      l->oom = true;
      return false;
    }
    l->v = nv;
    l->cap = nc;
  }
  l->v[l->n++] = rec->ingest_ns - rec->time_ns;
  return true;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int do_report(const char *dir, double skip) {
  char err[512];
  sto_options opt = {.read_only = true};
  sto_env *env = NULL;
  if (sto_open(dir, &opt, &env, err, sizeof(err)) != CAIRN_OK) {
    fprintf(stderr, "latency: %s\n", err);
    return 2;
  }
  lat l = {.t_min = INT64_MIN, .skip_ns = (int64_t)(skip * 1e9)};
  cairn_err e = sto_scan_after(env, 0, 0, lat_cb, &l);
  sto_close(env);
  if (e != CAIRN_OK || l.oom || l.n == 0) {
    fprintf(stderr, "latency: reading %s: %s\n", dir, l.n ? cairn_err_name(e) : "no records");
    return 2;
  }
  qsort(l.v, l.n, sizeof(*l.v), cmp_i64);
#define PCT(p) ((double)l.v[(size_t)((double)(l.n - 1) * (p))] / 1e6)
  printf("LATENCY records=%zu p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f min_ms=%.1f\n", l.n,
         PCT(0.5), PCT(0.9), PCT(0.99), (double)l.v[l.n - 1] / 1e6, (double)l.v[0] / 1e6);
  free(l.v);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "", *path = NULL, *dir = NULL;
  double rate = 0, seconds = 0, skip = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--file") && i + 1 < argc) path = argv[++i];
    else if (!strcmp(argv[i], "--data") && i + 1 < argc) dir = argv[++i];
    else if (!strcmp(argv[i], "--rate") && i + 1 < argc) rate = atof(argv[++i]);
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--skip-seconds") && i + 1 < argc) skip = atof(argv[++i]);
    else mode = "";
  }
  if (!strcmp(mode, "write") && path && rate > 0 && seconds > 0) return do_write(path, rate, seconds);
  if (!strcmp(mode, "report") && dir && skip >= 0) return do_report(dir, skip);
  fprintf(stderr, "usage: latency write --file PATH --rate LINES_PER_S --seconds S\n"
                  "       latency report --data DIR [--skip-seconds K]\n");
  return 2;
}
