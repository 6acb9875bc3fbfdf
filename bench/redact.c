/* bench/redact.c: cost of secret redaction (collector/redact.c) on the
 * collector's hot path: ~200 B CRI lines, 1% of them holding a secret, parsed
 * and added to batches (col_parser_line + col__batch_add, as the loop does;
 * no files, network or encoding) with redaction off and with the default
 * rules on; plus col__redact_text alone on the messages.
 *
 *   bench-redact [--lines N] [--repeat R] [--secret-pct P]
 *
 * Prints one line per mode and repeat, then
 *   RESULT mode=M lines=N lines_per_s=X ns_per_line=Y
 * with the median of the repeats (single thread, wall clock).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/internal.h"
#include "collector/redact.h"

typedef struct bench {
  col_rec_src src;
  col_meta meta;
  col_batch *batch;
  col_redactor *rd;
  uint64_t records, masked;
} bench;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_rec(const col_rec *r, void *ud) {
  bench *b = ud;
  if (!b->batch || b->batch->n >= 5000) {
    col__batch_free(b->batch);
    b->batch = col__batch_new(1);
    if (!b->batch) abort();
    b->batch->redact = b->rd;
  }
  if (col__batch_add(b->batch, &b->src, r) != CAIRN_OK) abort();
  b->records++;
}

static const char *SECRETS[] = {
    "password=Tr0ub4dor&3",
    "Authorization: Bearer 8f14e45fceea167a5a36dedd4bea2543aa",
    "aws key AKIAIOSFODNN7EXAMPLE",
    "dsn=postgres://orders:S3cretPw@db.internal:5432/orders",
    "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    "api_key=3f2a9c81d7e64b0f",
};

/* lines[i] = one CRI line (no '\n'); about 200 bytes, 1 in 100/pct with a secret */
static char **make_lines(size_t n, double pct, size_t *bytes) {
  static const char *methods[] = {"GET", "POST", "PUT", "DELETE"};
  static const char *paths[] = {"/api/v1/orders", "/api/v1/users/me", "/healthz", "/api/v2/cart/items",
                                "/static/app.js"};
  char **lines = calloc(n, sizeof(*lines));
  if (!lines) abort();
  uint64_t x = 88172645463325252ull;
  size_t every = pct > 0 ? (size_t)(100.0 / pct) : 0;
  *bytes = 0;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    char msg[256];
    if (every && i % every == every / 2) {
      snprintf(msg, sizeof(msg), "level=info ts=2024-01-15T10:23:45Z caller=client.go:%u msg=\"connecting\" %s",
               (unsigned)(x % 400), SECRETS[(i / every) % (sizeof(SECRETS) / sizeof(SECRETS[0]))]);
    } else {
      snprintf(msg, sizeof(msg),
               "level=info ts=2024-01-15T10:23:45.%06uZ caller=server.go:%u msg=\"request served\" "
               "method=%s path=%s status=200 duration=%u.%ums request_id=%016llx",
               (unsigned)(x % 1000000), (unsigned)(x % 900), methods[x % 4], paths[(x >> 8) % 5],
               (unsigned)((x >> 16) % 90), (unsigned)((x >> 24) % 10), (unsigned long long)x);
    }
    char line[400];
    int len = snprintf(line, sizeof(line), "2024-01-15T10:23:45.%09uZ stdout F %s",
                       (unsigned)(x % 1000000000), msg);
    lines[i] = strdup(line);
    if (!lines[i]) abort();
    *bytes += (size_t)len + 1;
  }
  return lines;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  size_t n = 200000;
  int repeat = 5;
  double pct = 1.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--lines") == 0) n = strtoull(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--repeat") == 0) repeat = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--secret-pct") == 0) pct = atof(argv[i + 1]);
  }
  if (repeat < 1 || repeat > 64 || n == 0) {
    fprintf(stderr, "usage: bench-redact [--lines N] [--repeat 1..64] [--secret-pct P]\n");
    return 2;
  }
  size_t bytes;
  char **lines = make_lines(n, pct, &bytes);
  size_t *lens = calloc(n, sizeof(*lens));
  for (size_t i = 0; i < n; i++) lens[i] = strlen(lines[i]);
  printf("lines=%zu avg_bytes=%.0f secret_pct=%.2f\n", n, (double)bytes / (double)n, pct);

  col_redactor *rd;
  char err[256];
  if (col__redactor_new(true, NULL, 0, &rd, err, sizeof(err)) != CAIRN_OK) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  const char *modes[] = {"off", "on", "redact-only"};
  for (int m = 0; m < 3; m++) {
    double t[64];
    uint64_t masked = 0;
    for (int r = 0; r < repeat; r++) {
      bench b;
      memset(&b, 0, sizeof(b));
      b.src = (col_rec_src){"node-1", "/var/log/containers/api-5f9c_payments_api-0123.log", &b.meta,
                            CAIRN__FORMAT__FORMAT_CRI, 42};
      b.rd = m == 1 ? rd : NULL;
      uint64_t before = col__redactor_records(rd);
      double t0 = now_s();
      if (m < 2) {
        col_parser *p;
        if (col_parser_new(CAIRN__FORMAT__FORMAT_CRI, 0, &p) != CAIRN_OK) return 1;
        uint64_t off = 0;
        for (size_t i = 0; i < n; i++) {
          if (col_parser_line(p, (const uint8_t *)lines[i], lens[i], off, i + 1, on_rec, &b) !=
              CAIRN_OK)
            return 1;
          off += lens[i] + 1;
        }
        col_parser_free(p);
        col__batch_free(b.batch);
      } else {
        for (size_t i = 0; i < n; i++) {
          const uint8_t *res;
          size_t rl;
          uint32_t c;
          /* the message part of the CRI line (after "TIME stdout F ") */
          const char *msg = strstr(lines[i], " F ") + 3;
          if (col__redact_text(rd, (const uint8_t *)msg, lens[i] - (size_t)(msg - lines[i]), &res,
                               &rl, &c) != CAIRN_OK)
            return 1;
        }
      }
      t[r] = now_s() - t0;
      masked = col__redactor_records(rd) - before;
      printf("mode=%s repeat=%d s=%.4f lines_per_s=%.0f records_masked=%llu\n", modes[m], r, t[r],
             (double)n / t[r], (unsigned long long)masked);
    }
    qsort(t, (size_t)repeat, sizeof(t[0]), cmp_double);
    double med = t[repeat / 2];
    printf("RESULT mode=%s lines=%zu lines_per_s=%.0f ns_per_line=%.1f records_masked=%llu\n",
           modes[m], n, (double)n / med, med * 1e9 / (double)n, (unsigned long long)masked);
  }
  col__redactor_free(rd);
  for (size_t i = 0; i < n; i++) free(lines[i]);
  free(lines);
  free(lens);
  return 0;
}
