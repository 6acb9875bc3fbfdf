/* bench/parse_bench.c: single-thread, in-memory throughput of the collector
 * parsers, optionally with the collector's batching and encoding (protobuf +
 * zstd, as collector/batch.c does it) but no network or files besides the
 * input. Used by bench/run.sh for the parser table (scenario a) and under
 * valgrind --tool=callgrind for instruction counts (scenario f).
 *
 *   parse-bench --format cri|docker|auditd|k8s-audit --file PATH
 *               [--repeat N] [--lines N] [--reference] [--encode]
 *
 * The file is read into memory once and split into lines; each repeat feeds
 * every line (the first --lines only, when given) to a fresh parser, as the
 * tailer does. --reference (docker only) runs the jansson path alone (the
 * parser before the fast scanner). --encode also builds batches of at most
 * 5000 records / 1 MiB (the collector defaults) and encodes them with zstd
 * level 1. Prints one line per repeat and a last line
 *   RESULT format=F lines=N records=R bytes=B lines_per_s=X mb_per_s=Y lines_per_cpu_s=C out_bytes=Z
 * with the medians of the repeats (wall clock and process CPU time; out_bytes
 * is the zstd output of the last repeat with --encode).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/internal.h"
#include "collector/internal_docker.h"
#include "collector/internal_parse.h"

typedef struct bench {
  Cairn__Format fmt;
  bool encode;
  col_rec_src src;
  col_meta meta;
  pb_codec *codec;
  col_batch *batch;
  uint64_t records;
  uint64_t out_bytes;
  int failed;
} bench;

static void flush_batch(bench *b) {
  if (!b->batch || b->batch->n == 0) return;
  if (col__batch_encode(b->batch, b->codec) != CAIRN_OK) b->failed = 1;
  b->out_bytes += b->batch->payload.len;
  col__batch_free(b->batch);
  b->batch = col__batch_new(1);
  if (!b->batch) b->failed = 1;
}

static void on_rec(const col_rec *r, void *ud) {
  bench *b = ud;
  b->records++;
  if (!b->encode || b->failed) return;
  if (col__batch_add(b->batch, &b->src, r) != CAIRN_OK) {
    b->failed = 1;
    return;
  }
  if (col__batch_full(b->batch, 5000, 1u << 20)) flush_batch(b);
}

static double now_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 20, n = 0;
  uint8_t *d = malloc(cap);
  while (d) {
    if (n == cap) {
      uint8_t *nd = realloc(d, cap *= 2);
      if (!nd) {
        free(d);
        d = NULL;
        break;
      }
      d = nd;
    }
    size_t got = fread(d + n, 1, cap - n, f);
    if (got == 0) break;
    n += got;
  }
  fclose(f);
  *len = n;
  return d;
}

int main(int argc, char **argv) {
  const char *fmt_s = NULL, *path = NULL;
  int repeat = 5;
  long max_lines = 0;
  bool reference = false;
  bench b = {0};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--format") && i + 1 < argc) fmt_s = argv[++i];
    else if (!strcmp(argv[i], "--file") && i + 1 < argc) path = argv[++i];
    else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--lines") && i + 1 < argc) max_lines = atol(argv[++i]);
    else if (!strcmp(argv[i], "--reference")) reference = true;
    else if (!strcmp(argv[i], "--encode")) b.encode = true;
    else path = NULL, i = argc;
  }
  if (!fmt_s || !path || repeat < 1 || repeat > 99 || pb_format_parse(fmt_s, &b.fmt) != CAIRN_OK ||
      (reference && b.fmt != CAIRN__FORMAT__FORMAT_DOCKER)) {
    fprintf(stderr, "usage: parse-bench --format cri|docker|auditd|k8s-audit --file PATH "
                    "[--repeat N] [--lines N] [--reference (docker)] [--encode]\n");
    return 2;
  }
  size_t len = 0;
  uint8_t *data = read_file(path, &len);
  if (!data) {
    fprintf(stderr, "parse-bench: cannot read %s: %s\n", path, strerror(errno));
    return 2;
  }
  /* line starts; a last line without '\n' is left out, as the tailer does */
  size_t nl = 0, cap = 1 << 16, bytes = 0;
  size_t *starts = malloc(cap * sizeof(*starts));
  for (size_t off = 0; starts && off < len;) {
    uint8_t *e = memchr(data + off, '\n', len - off);
    if (!e) break;
    if (nl == cap) starts = realloc(starts, (cap *= 2) * sizeof(*starts));
    if (!starts) break;
    starts[nl++] = off;
    off = bytes = (size_t)(e - data) + 1;
    if (max_lines && nl == (size_t)max_lines) break;
  }
  if (!starts) return 2;

  col_meta_from_path(path, &b.meta);
  b.src = (col_rec_src){.node = "node-1", .path = path, .meta = &b.meta, .format = b.fmt, .file_stream = 1};
  double *rates = calloc((size_t)repeat, sizeof(*rates));
  double *cpu_rates = calloc((size_t)repeat, sizeof(*cpu_rates));
  for (int rep = 0; rep < repeat; rep++) {
    col_parser *p = NULL;
    if (col_parser_new(b.fmt, 0, &p) != CAIRN_OK) return 2;
    b.records = 0;
    b.out_bytes = 0;
    if (b.encode) {
      b.codec = pb_codec_new(1);
      b.batch = col__batch_new(1);
      if (!b.codec || !b.batch) return 2;
    }
    double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    for (size_t i = 0; i < nl; i++) {
      size_t s = starts[i];
      size_t e = i + 1 < nl ? starts[i + 1] - 1 : bytes - 1;
      cairn_err err = reference
                          ? col__docker_line_json(p, data + s, e - s, s, i + 1, on_rec, &b)
                          : col_parser_line(p, data + s, e - s, s, i + 1, on_rec, &b);
      if (err != CAIRN_OK) b.failed = 1;
    }
    if (col_parser_flush(p, true, on_rec, &b) != CAIRN_OK) b.failed = 1;
    if (b.encode) flush_batch(&b);
    double t1 = now_s(CLOCK_MONOTONIC), c1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    col_parser_free(p);
    if (b.encode) {
      col__batch_free(b.batch);
      pb_codec_free(b.codec);
      b.batch = NULL;
      b.codec = NULL;
    }
    if (b.failed) {
      fprintf(stderr, "parse-bench: a parser or encoder call failed\n");
      return 1;
    }
    rates[rep] = (double)nl / (t1 - t0);
    cpu_rates[rep] = (double)nl / (c1 - c0);
    printf("run %d: %zu lines, %llu records in %.3f s (cpu %.3f s): %.0f lines/s, %.1f MB/s%s\n",
           rep + 1, nl, (unsigned long long)b.records, t1 - t0, c1 - c0, rates[rep],
           (double)bytes / (t1 - t0) / 1e6, b.encode ? " (with encode)" : "");
    fflush(stdout);
  }
  qsort(rates, (size_t)repeat, sizeof(*rates), cmp_double);
  qsort(cpu_rates, (size_t)repeat, sizeof(*cpu_rates), cmp_double);
  double med = rates[repeat / 2];
  printf("RESULT format=%s lines=%zu records=%llu bytes=%zu lines_per_s=%.0f mb_per_s=%.1f "
         "lines_per_cpu_s=%.0f out_bytes=%llu\n",
         fmt_s, nl, (unsigned long long)b.records, bytes, med, med * (double)bytes / (double)nl / 1e6,
         cpu_rates[repeat / 2],
         (unsigned long long)b.out_bytes);
  free(rates);
  free(cpu_rates);
  free(starts);
  free(data);
  return 0;
}
