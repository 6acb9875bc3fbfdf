/* tests/tools/gen_docker.c: writes realistic docker json-file container logs
 * for tests and benchmarks, as the docker daemon (Go's encoding/json) writes
 * them: {"log":"...\n","stream":"stdout","time":"<RFC3339Nano>"}, with '"',
 * '\\' and control characters escaped, <, > and & as \u003c \u003e \u0026,
 * non-ASCII text as raw UTF-8. ~200-byte varied messages (JSON and plain text,
 * so zstd ratios are realistic), seeded so runs are repeatable.
 *
 *   gen-docker --dir DIR [--files N] [--lines N] [--seed S] [--split-every K]
 *
 * Line i carries the unique marker "seq=%08d". With --split-every K, every
 * K-th message is written as two chunks (the first without a trailing \n), as
 * the daemon does for lines over 16 KiB. Files are named <64 hex>-json.log.
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

static const char *const paths[] = {"/api/v1/payments", "/api/v1/cart/items", "/healthz",
                                    "/api/v1/orders/search?q=a&page=2", "/metrics", "/login"};
static const char *const levels[] = {"info", "info", "info", "debug", "warn", "error"};
static const char *const users[] = {"alice", "bob", "Zo\xc3\xab", "m\xc3\xbcller", "\xe5\xb1\xb1\xe7\x94\xb0",
                                    "carol"};

/* Write s[0..n) as the body of a JSON string the way Go's encoder does. */
static void put_json_str(FILE *f, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
      case '"': fputs("\\\"", f); break;
      case '\\': fputs("\\\\", f); break;
      case '\n': fputs("\\n", f); break;
      case '\r': fputs("\\r", f); break;
      case '\t': fputs("\\t", f); break;
      case '<': fputs("\\u003c", f); break;
      case '>': fputs("\\u003e", f); break;
      case '&': fputs("\\u0026", f); break;
      default:
        if (c < 0x20)
          fprintf(f, "\\u%04x", c);
        else
          fputc(c, f);
    }
  }
}

int main(int argc, char **argv) {
  const char *dir = NULL;
  long files = 1, lines = 100000, split_every = 0;
  rng r = {0x9E3779B97F4A7C15ULL};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
    else if (!strcmp(argv[i], "--files") && i + 1 < argc) files = atol(argv[++i]);
    else if (!strcmp(argv[i], "--lines") && i + 1 < argc) lines = atol(argv[++i]);
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc) r.s ^= strtoull(argv[++i], NULL, 10) * 0x2545F4914F6CDD1DULL + 1;
    else if (!strcmp(argv[i], "--split-every") && i + 1 < argc) split_every = atol(argv[++i]);
    else dir = NULL, i = argc;
  }
  if (!dir || files < 1 || files > 1000 || lines < 0) {
    fprintf(stderr, "usage: gen-docker --dir DIR [--files N] [--lines N] [--seed S] [--split-every K]\n");
    return 2;
  }
  FILE **fp = calloc((size_t)files, sizeof(*fp));
  if (!fp) return 2;
  for (long f = 0; f < files; f++) {
    char id[65];
    for (int k = 0; k < 64; k++) id[k] = "0123456789abcdef"[rng_next(&r) & 15];
    id[64] = 0;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s-json.log", dir, id);
    fp[f] = fopen(path, "a");
    if (!fp[f]) {
      fprintf(stderr, "gen-docker: cannot open %s: %s\n", path, strerror(errno));
      return 2;
    }
    setvbuf(fp[f], NULL, _IOFBF, 1 << 16);
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t t0 = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
  for (long i = 0; i < lines; i++) {
    FILE *f = fp[(size_t)i % (size_t)files];
    int64_t t = t0 + i * 1000;
    time_t sec = (time_t)(t / 1000000000LL);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char stamp[64];
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long long)(t % 1000000000LL));
    const char *stream = (rng_next(&r) % 10) == 0 ? "stderr" : "stdout";
    char msg[512];
    uint64_t x = rng_next(&r);
    switch (x % 4) {
      case 0:
      case 1:
        snprintf(msg, sizeof(msg),
                 "{\"level\":\"%s\",\"ts\":\"%s\",\"msg\":\"request served\",\"method\":\"GET\","
                 "\"path\":\"%s\",\"status\":%d,\"latency_ms\":%u,\"trace_id\":\"%016" PRIx64
                 "\",\"seq=%08ld\":true}\n",
                 levels[(x >> 8) % 6], stamp, paths[(x >> 12) % 6], (x >> 16) % 7 == 0 ? 500 : 200,
                 (unsigned)((x >> 24) % 2000), rng_next(&r), i);
        break;
      case 2:
        snprintf(msg, sizeof(msg),
                 "%s GET %s took %ums user=%s session=%08" PRIx64 " seq=%08ld cache=%s\tregion=eu-west-%u\n",
                 levels[(x >> 8) % 6], paths[(x >> 12) % 6], (unsigned)((x >> 24) % 2000),
                 users[(x >> 32) % 6], rng_next(&r), i, (x >> 40) & 1 ? "hit" : "miss",
                 (unsigned)((x >> 44) % 3) + 1);
        break;
      default:
        snprintf(msg, sizeof(msg),
                 "\x1b[33mWARN\x1b[0m slow query \"SELECT * FROM orders WHERE id > %u\" on %s "
                 "(%u ms) seq=%08ld path=C:\\data\\%s\n",
                 (unsigned)((x >> 16) % 100000), paths[(x >> 12) % 6], (unsigned)((x >> 24) % 5000),
                 i, users[(x >> 32) % 6]);
    }
    size_t n = strlen(msg);
    if (split_every > 0 && i % split_every == split_every - 1) {
      size_t half = n / 2;
      while (half > 0 && ((unsigned char)msg[half] & 0xC0) == 0x80) half--; /* whole characters */
      fputs("{\"log\":\"", f);
      put_json_str(f, msg, half);
      fprintf(f, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", stream, stamp);
      fputs("{\"log\":\"", f);
      put_json_str(f, msg + half, n - half);
    } else {
      fputs("{\"log\":\"", f);
      put_json_str(f, msg, n);
    }
    fprintf(f, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", stream, stamp);
  }
  for (long f = 0; f < files; f++) {
    if (fclose(fp[f]) != 0) {
      fprintf(stderr, "gen-docker: write failed: %s\n", strerror(errno));
      return 2;
    }
  }
  free(fp);
  return 0;
}
